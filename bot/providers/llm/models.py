"""What we know about the OpenAI models we name or accept: shutdown dates and chat request rules.

Rules:
- Pure data and functions (no I/O, no clock: callers pass ``today``). Re-read the sources below when
  the ``openai`` SDK is upgraded; the SDK's model lists are generated from OpenAI's API spec.
- ``SHUTDOWNS``: every announced shutdown date in the installed SDK (openai 3.60.0):
  ``openai/types/shared/chat_model.py`` and ``openai/types/audio_model.py`` ("Deprecated values"),
  see also https://developers.openai.com/api/docs/deprecations. A dated snapshot without its own
  entry inherits its alias's date.
- A model is *near* its shutdown from ``WARN_DAYS`` days before it (a warning) and *gone* from that
  day on (an error: every request to it fails, so every turn of every call would be the apology).
- ``chat_family`` knows, per model family, the ``reasoning_effort`` values ``/v1/chat/completions``
  accepts (lowest first), whether ``temperature`` is accepted, and whether function tools need the
  effort ``none``. Unknown models (a local server's, a future one) have no family: nothing is checked
  and nothing beyond what was configured is sent.
- ``lowest_effort`` is the voice default: a caller waits in silence for the first token, and a model
  that reasons does so before its first content delta.
- ``chat_problems`` lists what the real API rejects with 400 for a request shape, worded for the
  flow author; every rule names its source. Sources are third-party reports of live requests where
  OpenAI's own pages were not found in the stored docs; a rule marked "on paper" was not seen
  confirmed for that exact model and follows its family.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

WARN_DAYS = 60
# The server's models unless LLM_MODEL / STT_MODEL say otherwise (README: Why these models); read by the
# settings and by ``bot flows check``.
DEFAULT_CHAT_MODEL = "gpt-6-luna"
DEFAULT_TRANSCRIBE_MODEL = "gpt-transcribe"
DEPRECATIONS_URL = "https://developers.openai.com/api/docs/deprecations"

# openai/types/shared/chat_model.py and openai/types/audio_model.py (openai 3.60.0), "Deprecated values".
_SHUTDOWN_LISTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("2027-04-01", ("gpt-5.4-nano", "gpt-5.4-nano-2026-03-17", "gpt-5.1", "gpt-5.1-2025-11-13")),
    ("2026-08-10", ("gpt-5.3-chat-latest", "gpt-5.2-chat-latest")),
    ("2026-07-23", ("gpt-5.1-codex", "gpt-5.1-chat-latest", "gpt-5-chat-latest", "gpt-4o-search-preview",
                    "gpt-4o-mini-search-preview", "gpt-4o-search-preview-2025-03-11",
                    "gpt-4o-mini-search-preview-2025-03-11")),
    ("2026-12-11", ("gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5-2025-08-07", "gpt-5-mini-2025-08-07",
                    "gpt-5-nano-2025-08-07", "o3", "o3-2025-04-16")),
    ("2027-01-14", ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "gpt-4o",
                    "gpt-4o-2024-11-20", "gpt-4o-2024-08-06", "gpt-4o-mini", "gpt-4o-mini-2024-07-18")),
    ("2026-10-23", ("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14", "o4-mini", "o4-mini-2025-04-16", "o3-mini",
                    "o3-mini-2025-01-31", "o1", "o1-2024-12-17", "gpt-4o-2024-05-13", "gpt-4-turbo",
                    "gpt-4-turbo-2024-04-09", "gpt-4-1106-preview", "gpt-4", "gpt-4-0613", "gpt-3.5-turbo",
                    "gpt-3.5-turbo-0125")),
    ("2025-07-28", ("o1-preview", "o1-preview-2024-09-12")),
    ("2025-10-27", ("o1-mini", "o1-mini-2024-09-12")),
    ("2027-01-20", ("gpt-audio-mini", "gpt-audio-mini-2025-12-15")),
    ("2026-05-07", ("gpt-4o-audio-preview", "gpt-4o-audio-preview-2024-12-17",
                    "gpt-4o-audio-preview-2025-06-03", "gpt-4o-mini-audio-preview",
                    "gpt-4o-mini-audio-preview-2024-12-17")),
    ("2025-10-10", ("gpt-4o-audio-preview-2024-10-01",)),
    ("2026-02-17", ("chatgpt-4o-latest",)),
    ("2026-02-12", ("codex-mini-latest",)),
    ("2026-03-26", ("gpt-4-0125-preview", "gpt-4-turbo-preview", "gpt-4-0314")),
    ("2024-12-06", ("gpt-4-vision-preview",)),
    ("2025-06-06", ("gpt-4-32k", "gpt-4-32k-0314", "gpt-4-32k-0613")),
    ("2024-09-13", ("gpt-3.5-turbo-16k", "gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613",
                    "gpt-3.5-turbo-16k-0613")),
    ("2026-09-28", ("gpt-3.5-turbo-1106",)),
    # audio_model.py: the transcription models (gpt-transcribe has no date).
    ("2027-02-26", ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe",
                    "gpt-4o-mini-transcribe-2025-12-15", "gpt-4o-transcribe-diarize")),
)  # fmt: skip
SHUTDOWNS: dict[str, date] = {
    name: date.fromisoformat(day) for day, names in _SHUTDOWN_LISTS for name in names
}
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def _alias(model: str) -> str:
    return _SNAPSHOT.sub("", model.strip())


def shutdown_date(model: str) -> date | None:
    """The announced shutdown date of ``model`` (a dated snapshot inherits its alias's), or None."""
    return SHUTDOWNS.get(model.strip()) or SHUTDOWNS.get(_alias(model))


Level = Literal["warning", "error"]


@dataclass(frozen=True)
class Notice:
    level: Level
    reason: str


def shutdown_notice(model: str, today: date, *, warn_days: int = WARN_DAYS) -> Notice | None:
    """A warning from ``warn_days`` before the shutdown, an error from that day on; None otherwise."""
    day = shutdown_date(model)
    if day is None:
        return None
    left = (day - today).days
    if left <= 0:
        return Notice(
            "error",
            f"{model} was shut down by OpenAI on {day.isoformat()}: every request to it fails, so every "
            f"turn would be the apology; pick a current model ({DEPRECATIONS_URL})",
        )
    if left <= warn_days:
        return Notice(
            "warning",
            f"{model} shuts down on {day.isoformat()} (in {left} day{'s' if left != 1 else ''}): from then "
            f"every turn would be the apology; pick a current model ({DEPRECATIONS_URL})",
        )
    return None


Temperature = Literal["always", "effort_none", "never"]


@dataclass(frozen=True)
class ChatFamily:
    """What ``/v1/chat/completions`` accepts from one family of models."""

    name: str
    efforts: tuple[str, ...]  # accepted reasoning_effort values, lowest first; () = not a reasoning model
    temperature: Temperature  # "effort_none": only with reasoning_effort "none"
    tools_need_effort_none: bool  # function tools are rejected unless the effort is "none"
    tools: bool = True  # False: function tools are rejected on chat completions whatever the effort
    source: str = ""


# Each family with its sources. "On paper" where no report for that exact model was found.
_NON_REASONING = ChatFamily(
    "gpt-4o / gpt-4.1 (no reasoning)",
    (),
    "always",
    False,
    source="no reasoning_effort: the SDK's reasoning_effort doc (completion_create_params.py) names "
    "reasoning models only; the 400 for sending it to these models is checked only on paper",
)
_O_SERIES = ChatFamily(
    "o-series",
    ("low", "medium", "high"),
    "never",
    False,
    source="https://learn.microsoft.com/en-us/javascript/api/@azure/ai-projects/reasoningeffort (OpenAI's "
    "ReasoningEffort doc: models before gpt-5.1 lack none); temperature: "
    "https://portkey.ai/error-library/unsupported-parameter-error-10525",
)
_GPT5 = ChatFamily(
    "gpt-5 (2025)",
    ("minimal", "low", "medium", "high"),
    "never",
    False,
    source="https://learn.microsoft.com/en-us/javascript/api/@azure/ai-projects/reasoningeffort; "
    "temperature only the default 1: https://github.com/guardrails-ai/guardrails/issues/1353",
)
_GPT51 = ChatFamily(
    "gpt-5.1",
    ("none", "low", "medium", "high"),
    "effort_none",
    False,
    source="https://github.com/openai/openai-agents-python/issues/2089 (the API's own 400 lists none, low, "
    "medium, high); temperature at none: https://github.com/vercel/ai/issues/10932",
)
_GPT54 = ChatFamily(
    "gpt-5.2 / gpt-5.4 / gpt-5.5",
    ("none", "low", "medium", "high", "xhigh"),
    "effort_none",
    True,
    source="efforts: https://github.com/JetBrains/koog/issues/1831 (5.4 mini/nano, tested); temperature at "
    "none: https://developers.openai.com/api/docs/guides/latest-model#gpt-54-parameter-compatibility (cited "
    "in https://github.com/tmc/langchaingo/issues/1497); tools: https://github.com/pipecat-ai/pipecat/issues/"
    "4043, https://github.com/dotnet/extensions/issues/7407; 5.2 and 5.5 on paper",
)
_GPT56 = ChatFamily(
    "gpt-5.6 / gpt-6 sol, terra, luna",
    ("none", "low", "medium", "high", "xhigh"),
    "effort_none",
    True,
    source="the API's 400 wording for gpt-5.6 (efforts; tools need an explicit none, default is medium): "
    "https://github.com/livekit/agents/pull/7169; gpt-6-sol tools: https://github.com/onyx-dot-app/onyx/"
    "issues/15008; gpt-6-luna rejects minimal, temperature only at none: https://github.com/dust-tt/dust/"
    "pull/33031; gpt-6.1 and gpt-6.2 on paper; max is Responses-only (not sent here)",
)
_ASTRA = ChatFamily(
    "gpt-6 astra",
    ("low", "medium", "high", "xhigh"),
    "never",
    False,
    tools=False,
    source="https://github.com/BerriAI/litellm-docs/pull/1173 (chat completions: low..xhigh; none and "
    "minimal rejected), https://github.com/bolna-ai/bolna/pull/1019 (temperature other than 1 and function "
    "tools on chat completions rejected at every effort); gpt-6.2-astra on paper",
)
_FAMILIES: dict[str, ChatFamily] = {
    **dict.fromkeys(("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4-turbo",
                     "gpt-4", "gpt-3.5-turbo", "chatgpt-4o-latest"), _NON_REASONING),
    **dict.fromkeys(("o1", "o3", "o3-mini", "o4-mini"), _O_SERIES),
    **dict.fromkeys(("gpt-5", "gpt-5-mini", "gpt-5-nano"), _GPT5),
    "gpt-5.1": _GPT51,
    **dict.fromkeys(("gpt-5.2", "gpt-5.4", "gpt-5.4-mini", "gpt-5.4-nano", "gpt-5.5"), _GPT54),
    **dict.fromkeys(("gpt-5.6-sol", "gpt-5.6-terra", "gpt-5.6-luna", "gpt-6-sol", "gpt-6-luna", "gpt-6.1-sol",
                     "gpt-6.1-terra", "gpt-6.2-sol"), _GPT56),
    **dict.fromkeys(("gpt-6-astra", "gpt-6.2-astra"), _ASTRA),
}  # fmt: skip


def chat_family(model: str) -> ChatFamily | None:
    """The family of ``model`` (a dated snapshot is its alias), or None for a model we do not know."""
    return _FAMILIES.get(model.strip()) or _FAMILIES.get(_alias(model))


def lowest_effort(model: str) -> str | None:
    """The lowest ``reasoning_effort`` the model accepts; None for non-reasoning or unknown models."""
    family = chat_family(model)
    return family.efforts[0] if family is not None and family.efforts else None


@dataclass(frozen=True)
class ChatProblem:
    field: Literal["reasoning_effort", "temperature", "tools"]
    reason: str


def chat_problems(
    model: str, *, reasoning_effort: str | None, temperature: float | None, has_tools: bool
) -> list[ChatProblem]:
    """What OpenAI would reject (400) in a streamed chat request with these settings.

    ``reasoning_effort`` None means the bot's default (``lowest_effort``). Unknown models: [].
    """
    family = chat_family(model)
    if family is None:
        return []
    problems: list[ChatProblem] = []
    effort = reasoning_effort or lowest_effort(model)
    if reasoning_effort is not None and not family.efforts:
        reason = f"{model} does not reason: it accepts no reasoning_effort"
        problems.append(ChatProblem("reasoning_effort", reason))
    elif effort is not None and effort not in family.efforts:
        accepted = ", ".join(family.efforts)
        problems.append(ChatProblem("reasoning_effort", f"{model} accepts {accepted}, not {effort!r}"))
    # temperature 1 is every model's default, which the reasoning models accept as such.
    if temperature is not None and temperature != 1:
        if family.temperature == "never":
            problems.append(ChatProblem("temperature", f"{model} accepts only the default temperature (1)"))
        elif family.temperature == "effort_none" and effort != "none":
            problems.append(
                ChatProblem("temperature", f"{model} accepts a temperature only with reasoning_effort none")
            )
    if has_tools and not family.tools:
        problems.append(
            ChatProblem("tools", f"{model} rejects function tools on /v1/chat/completions (the bot's API)")
        )
    elif has_tools and family.tools_need_effort_none and effort != "none":
        problems.append(
            ChatProblem(
                "reasoning_effort",
                f"{model} rejects function tools with reasoning on /v1/chat/completions: use none",
            )
        )
    return problems
