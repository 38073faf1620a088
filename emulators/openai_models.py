"""The emulated OpenAI API's models: which exist, until when, and what each accepts.

An independent second implementation (the bot's own view is ``bot.providers.llm.models``; this module must not
import it): when the two agree, the emulator proves the bot sends what OpenAI accepts only as far as this
table is true, so every rule cites its source. "On paper" marks a rule not seen confirmed for that exact
model, or a message whose wording was not seen.

Rules:
- A model that is not in ``LIVE`` or ``TRANSCRIPTION`` (or a dated snapshot of one), or whose shutdown
  day has come, does not exist: 404 ``model_not_found``, worded like the real API.
- Chat (``/v1/chat/completions``), per family: ``reasoning_effort`` only for reasoning models and only
  the values the family accepts there; ``temperature`` other than the default 1 only where the family
  allows it at the request's effort; ``max_tokens`` refused by reasoning models; function tools
  refused where the family needs the effort ``none`` for them (gpt-5.6 and later default to ``medium``
  when the field is absent; gpt-5.4 defaults to ``none``).
- Transcription (``/v1/audio/transcriptions``): ``gpt-transcribe`` takes ``languages[]`` and refuses the
  singular ``language``; the other models refuse ``languages``.
- Pure: ``today`` is the caller's; each check returns ``(status, message, param, code)`` or None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

Problem = tuple[int, str, str | None, str | None]  # status, message, param, code
ALL_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")  # shared/reasoning_effort.py


@dataclass(frozen=True)
class Family:
    efforts: tuple[str, ...]  # accepted on chat completions; () = not a reasoning model
    default_effort: str | None  # what an absent reasoning_effort means
    temperature: Literal["any", "at_none", "default_only"]
    tools: Literal["any", "at_none", "never"]


# Non-reasoning: temperature 0..2 as documented in the SDK (completion_create_params.py), no effort.
CLASSIC = Family((), None, "any", "any")
# https://learn.microsoft.com/en-us/javascript/api/@azure/ai-projects/reasoningeffort ("All models before
# gpt-5.1 default to medium ... and do not support none"); temperature: only the default (portkey 10525).
O_SERIES = Family(("low", "medium", "high"), "medium", "default_only", "any")
GPT5 = Family(("minimal", "low", "medium", "high"), "medium", "default_only", "any")
# gpt-5.1: the API's own 400 lists none, low, medium, high (openai/openai-agents-python#2089); default none.
GPT51 = Family(("none", "low", "medium", "high"), "none", "at_none", "any")
# gpt-5.4 family: none..xhigh, default none (replicate.com/openai/gpt-5.4 API schema, JetBrains/koog#1831);
# "Function tools with reasoning_effort are not supported for gpt-5.4 in /v1/chat/completions"
# (pipecat-ai/pipecat#4043); temperature only at none (developers.openai.com/api/docs/guides/latest-model
# #gpt-54-parameter-compatibility, cited in tmc/langchaingo#1497).
GPT54 = Family(("none", "low", "medium", "high", "xhigh"), "none", "at_none", "at_none")
# gpt-5.6 and gpt-6 sol/terra/luna: none..xhigh on chat completions, default medium; tools need an explicit
# none (livekit/agents#7169 quotes both 400s); gpt-6-luna: temperature only at none (dust-tt/dust#33031).
GPT56 = Family(("none", "low", "medium", "high", "xhigh"), "medium", "at_none", "at_none")
# gpt-6 astra: low..xhigh on chat completions (BerriAI/litellm-docs#1173), no function tools there at any
# effort and no temperature but 1 (bolna-ai/bolna#1019); default medium (UKGovernmentBEIS/inspect_ai#5254).
ASTRA = Family(("low", "medium", "high", "xhigh"), "medium", "default_only", "never")

LIVE: dict[str, Family] = {
    **dict.fromkeys(("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"), CLASSIC),
    "gpt-5.1": GPT51,
    **dict.fromkeys(("gpt-5.2", "gpt-5.4", "gpt-5.4-mini", "gpt-5.4-nano", "gpt-5.5"), GPT54),
    **dict.fromkeys(("gpt-5.6-sol", "gpt-5.6-terra", "gpt-5.6-luna", "gpt-6-sol", "gpt-6-luna",
                     "gpt-6.1-sol", "gpt-6.1-terra", "gpt-6.2-sol"), GPT56),
    **dict.fromkeys(("gpt-6-astra", "gpt-6.2-astra"), ASTRA),
    # Shut down before this emulator's era, kept so that a request after the date gets the real 404.
    **dict.fromkeys(("gpt-5", "gpt-5-mini", "gpt-5-nano"), GPT5),
    **dict.fromkeys(("o3", "o4-mini"), O_SERIES),
}  # fmt: skip
TRANSCRIPTION = ("gpt-transcribe", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "whisper-1")
LANGUAGES_MODELS = ("gpt-transcribe",)  # SDK: languages "Supported by `gpt-transcribe`"

# Announced shutdowns, from the SDK's "Deprecated values" (openai 3.60.0 types/shared/chat_model.py,
# types/audio_model.py): from that day the model is gone.
SHUTDOWN: dict[str, date] = {
    **dict.fromkeys(("gpt-5", "gpt-5-mini", "gpt-5-nano", "o3"), date(2026, 12, 11)),
    "o4-mini": date(2026, 10, 23),
    **dict.fromkeys(("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"), date(2027, 1, 14)),
    "gpt-5.4-nano": date(2027, 4, 1),
    "gpt-5.1": date(2027, 4, 1),
    **dict.fromkeys(("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"), date(2027, 2, 26)),
}
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def _alias(model: str) -> str:
    return _SNAPSHOT.sub("", model)


def exists(model: str, today: date) -> bool:
    alias = _alias(model)
    known = alias in LIVE or alias in TRANSCRIPTION
    gone = SHUTDOWN.get(alias)
    return known and (gone is None or today < gone)


def live_models(today: date) -> list[str]:
    """What ``GET /v1/models`` lists on ``today``."""
    return [m for m in (*LIVE, *TRANSCRIPTION) if exists(m, today)]


def not_found(model: str) -> Problem:
    # The real 404 (e.g. quoted in BerriAI/litellm#39607): type invalid_request_error, code model_not_found.
    message = f"The model `{model}` does not exist or you do not have access to it."
    return 404, message, None, "model_not_found"


def _quoted(values: tuple[str, ...]) -> str:
    items = [f"'{v}'" for v in values]
    return ", ".join(items[:-1]) + f", and {items[-1]}" if len(items) > 1 else items[0]


def chat_problem(body: Mapping[str, Any], today: date) -> Problem | None:
    """The first rule a chat request with a model name breaks, as the real API answers it; None if fine."""
    model = str(body["model"])
    if not exists(model, today) or _alias(model) not in LIVE:
        return not_found(model)
    family = LIVE[_alias(model)]
    effort = body.get("reasoning_effort")
    if effort is not None and not family.efforts:
        message = "Unsupported parameter: 'reasoning_effort' is not supported with this model."
        return 400, message, "reasoning_effort", "unsupported_parameter"  # on paper: like max_tokens's
    if effort is not None and effort not in ALL_EFFORTS:
        message = f"Invalid value: '{effort}'. Supported values are: {_quoted(ALL_EFFORTS)}."
        return 400, message, "reasoning_effort", "invalid_value"  # on paper
    if effort is not None and effort not in family.efforts:
        # Wording from the API's 400 quoted in livekit/agents#7169.
        message = (
            f"Unsupported value: 'reasoning_effort' does not support '{effort}' with this model. "
            f"Supported values are: {_quoted(family.efforts)}."
        )
        return 400, message, "reasoning_effort", "unsupported_value"
    if family.efforts and body.get("max_tokens") is not None:
        # openai/openai-python#2046: the API's own 400.
        message = (
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead."
        )
        return 400, message, "max_tokens", "unsupported_parameter"
    effective = effort if effort is not None else family.default_effort
    temperature = body.get("temperature")
    rejects_temperature = family.temperature == "default_only" or (
        family.temperature == "at_none" and effective != "none"
    )
    if temperature is not None and temperature != 1 and rejects_temperature:
        # The API's 400 as quoted in https://v0.app/chat/image-analysis-qjuhd3YXzoO.
        message = (
            f"Unsupported value: 'temperature' does not support {temperature} with this model. "
            "Only the default (1) value is supported."
        )
        return 400, message, "temperature", "unsupported_value"
    tools_refused = family.tools == "never" or (family.tools == "at_none" and effective != "none")
    if body.get("tools") and tools_refused:
        head = f"Function tools with reasoning_effort are not supported for {model} in /v1/chat/completions."
        if family.tools == "never":  # on paper: the wording of gpt-5.4's 400 (pipecat-ai/pipecat#4043)
            return 400, f"{head} Please use /v1/responses instead.", "reasoning_effort", None
        # Wording from ItzCrazyKns/Vane#1173 and onyx-dot-app/onyx#15008 (code null).
        tail = "To use function tools, use /v1/responses or set reasoning_effort to 'none'."
        return 400, f"{head} {tail}", "reasoning_effort", None
    return None


def transcription_problem(model: str, fields: Mapping[str, Any], today: date) -> Problem | None:
    """The rule a transcription request breaks (``fields``: the form's field names); None if fine."""
    if not exists(model, today) or _alias(model) not in TRANSCRIPTION:
        return not_found(model)
    takes_list = _alias(model) in LANGUAGES_MODELS
    if takes_list and "language" in fields:
        # hermes-agent#73853: "the API rejects the legacy singular `language` field for this model";
        # the message is on paper.
        message = (
            "Unsupported parameter: 'language' is not supported with this model. Use 'languages' instead."
        )
        return 400, message, "language", "unsupported_parameter"
    if not takes_list and ("languages[]" in fields or "languages" in fields):
        # SDK: languages is "Supported by `gpt-transcribe`"; the message is on paper.
        message = "Unsupported parameter: 'languages' is not supported with this model."
        return 400, message, "languages", "unsupported_parameter"
    return None
