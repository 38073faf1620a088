"""What a recording holds for a replay: the caller's side to play again, and the bot's side to compare with
or to serve again (the model's answers, the phrases' audio).

Rules:
- A turn is read from its ``turn`` event: ``heard`` is what the model was given (its transcript: the
  words heard, or the keypad text), ``answer`` the text handed to the speaker for the turn's responses,
  in response order (fillers are not part of it), ``tools`` each call as ``name(arguments)`` with the
  arguments' JSON normalised (key order and spacing do not count).
- Keys are the ``dtmf`` events in order, with their recording time. A key recorded as ``[redacted]``
  (the default: ``RECORDING_KEEP_CALLER_NUMBER_AND_KEYS`` unset) is not a key: it is counted by
  ``redacted_keys`` so a replay can say it cannot press them. So is a redacted caller number.
- A phrase's audio is the ``bot_audio`` of its response sent since that response's previous ``mark_sent``;
  the ``mark_sent`` event carries the phrase's text. A phrase cut by a ``clear`` has no mark: not kept.
  The same text said twice keeps its first audio.
- A model answer is found by what the model was asked: the last user message's text, which occurrence of
  that text among the request's user messages it is (the same "yes" twice is two answers), and the round
  within the turn (how many tool rounds follow that user message). Speculative requests the bot repeats
  ask the same thing and get the same answer.
- A tool call's recorded result is the ``tool_results`` entry of its model round (the result the model
  read, masked as the registry and the recorder masked it), paired with the call at the same position;
  a round without results (its tools were cut short, or not offered) gives none. Its duration is the
  turn's ``tools`` figure at the same position among the turn's run calls (0 when the figures do not
  line up).
- Pure: works on a loaded ``Recording``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.redact import REDACTED
from bot.recording.playback import place_bot_audio
from bot.recording.reader import Recording


@dataclass(frozen=True)
class RecordedTurn:
    number: int
    heard: str
    typed: bool
    answer: str
    tools: tuple[str, ...]
    voice_to_voice_ms: int | None
    barge_in: bool
    error: str | None


@dataclass(frozen=True)
class ModelRound:
    text: str
    tool_calls: tuple[tuple[str, str, str], ...]  # (id, name, arguments JSON as the model sent it)
    first_chunk_ms: int | None = None  # how long the model took to start answering, when recorded


@dataclass(frozen=True)
class RoundKey:
    heard: str
    occurrence: int  # 1 = the first user message with this text in the conversation
    round: int  # 0 = the request right after the user message, 1 = after its first tool round...


@dataclass(frozen=True)
class RecordedToolCall:
    turn: int
    call: str  # name(arguments), the arguments' JSON normalised (``normalise_arguments``)
    result: str  # what the model read
    ms: int = 0  # how long it ran


@dataclass
class RecordedAnswers:
    """The model's recorded answers, keyed by what it was asked."""

    rounds: dict[RoundKey, ModelRound] = field(default_factory=dict)


def normalise_arguments(arguments: str) -> str:
    """Compact JSON with sorted keys, or the text itself when it is not JSON."""
    try:
        return json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return arguments


def turns(recording: Recording) -> list[RecordedTurn]:
    found: list[RecordedTurn] = []
    for event in recording.events_of("turn"):
        # The reader checked the types; a field an operator had redacted reads as missing here.
        said = event["said"] if isinstance(event.get("said"), dict) else {}
        answer = " ".join(
            str(said[rid]) for rid in sorted(said, key=lambda r: int(r) if str(r).isdigit() else 0)
        )
        tools = tuple(
            f"{t.get('name')}({normalise_arguments(str(t.get('args', '')))})"
            for t in (event["tools"] if isinstance(event.get("tools"), list) else [])
            if isinstance(t, dict)
        )
        typed = bool(event.get("typed"))
        heard = str(event.get("transcript", ""))  # the user message: words heard, or the keypad text
        v2v, number = event.get("voice_to_voice_ms"), event.get("turn")
        found.append(
            RecordedTurn(
                number=number if isinstance(number, int) else len(found) + 1,
                heard=heard,
                typed=typed,
                answer=answer.strip(),
                tools=tools,
                voice_to_voice_ms=v2v if isinstance(v2v, int) else None,
                barge_in=bool(event.get("barge_in")),
                error=event.get("error"),
            )
        )
    return found


def keys(recording: Recording) -> list[tuple[float, str]]:
    return [
        (float(e["t"]), str(e["digit"]))
        for e in recording.events_of("dtmf")
        if e.get("digit") and e["digit"] != REDACTED
    ]


def redacted_keys(recording: Recording) -> int:
    return sum(1 for e in recording.events_of("dtmf") if e.get("digit") == REDACTED)


def parameters(recording: Recording) -> dict[str, str]:
    """The stream's recorded parameters (``to``, ``from``...), without redacted ones."""
    raw = recording.meta.get("parameters")
    found = raw if isinstance(raw, dict) else {}
    return {str(k): str(v) for k, v in found.items() if v and v != REDACTED}


def phrase_audio(recording: Recording) -> dict[str, bytes]:
    """Phrase text -> the audio sent for it (phrases as ``bot.recording.playback`` groups them)."""
    sent = recording.bot_sent_ulaw()
    phrases: dict[str, bytes] = {}
    for phrase in place_bot_audio(recording.events, len(sent)).phrases:
        if phrase.text:  # only a mark_sent gives one: a phrase cut by a clear (or left open) has none
            phrases.setdefault(phrase.text, b"".join(c.sent_audio(sent) for c in phrase.chunks))
    return phrases


def _user_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return ""


def request_key(messages: Sequence[Mapping[str, Any]]) -> RoundKey | None:
    """The key of a chat request (see the module rules); None without a user message."""
    last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    if last is None:
        return None
    heard = _user_text(messages[last])
    occurrence = sum(1 for m in messages[: last + 1] if m.get("role") == "user" and _user_text(m) == heard)
    rounds = sum(1 for m in messages[last + 1 :] if m.get("role") == "assistant" and m.get("tool_calls"))
    return RoundKey(heard, occurrence, rounds)


def answers(recording: Recording) -> RecordedAnswers:
    found = RecordedAnswers()
    seen: dict[str, int] = {}
    for event in recording.events_of("turn"):
        heard = str(event.get("transcript", ""))
        seen[heard] = seen.get(heard, 0) + 1
        for number, request in enumerate(_rounds(event.get("llm"))):
            found.rounds[RoundKey(heard, seen[heard], number)] = request
    return found


def _rounds(raw: object) -> Iterable[ModelRound]:
    if not isinstance(raw, list):
        return
    for request in raw:
        if not isinstance(request, dict):
            continue
        calls = tuple(
            (str(c.get("id", "")), str(c.get("name", "")), str(c.get("arguments", "")))
            for c in request.get("tool_calls") or []
            if isinstance(c, dict)
        )
        first = request.get("first_chunk_ms")
        yield ModelRound(str(request.get("text") or ""), calls, first if isinstance(first, int) else None)


def tool_calls(recording: Recording) -> list[RecordedToolCall]:
    """Every tool call that ran, with its result, in the order of the call (see the module rules)."""
    found: list[RecordedToolCall] = []
    for event in recording.events_of("turn"):
        number = event.get("turn")
        ran: list[tuple[str, str]] = []
        for request in event.get("llm") or []:
            if not isinstance(request, dict) or not isinstance(request.get("tool_results"), list):
                continue
            calls = [c for c in request.get("tool_calls") or [] if isinstance(c, dict)]
            for made, result in zip(calls, request["tool_results"], strict=False):
                arguments = normalise_arguments(str(made.get("arguments", "")))
                ran.append((f"{made.get('name')}({arguments})", str(result)))
        raw = event.get("tools")
        figures: list[Any] = raw if isinstance(raw, list) and len(raw) == len(ran) else [None] * len(ran)
        for (key, result), figure in zip(ran, figures, strict=True):
            ms = figure.get("ms") if isinstance(figure, dict) else None
            found.append(
                RecordedToolCall(
                    turn=number if isinstance(number, int) else 0,
                    call=key,
                    result=result,
                    ms=ms if isinstance(ms, int) and ms >= 0 else 0,
                )
            )
    return found
