"""Replays one recorded call through today's bot: a simulated phone plays the recorded caller to a bot
started for the replay, on 127.0.0.1, and the replay's own recording is compared with the old one.

Rules:
- The phone dials the recorded ``to``/``from`` numbers (so the flow is routed as before) and plays the
  caller's recorded utterances and keys, each at its anchor in this call (``bot.sim.replay.schedule``: a
  barge-in the same time after the bot's first audio of that answer, other speech the same silence after
  the bot's answer or the caller's previous words), so a slow machine moves the caller with the bot. A bot
  that never does what an anchor waits for gets the cue after ``WAIT_FOR_ANSWER_S``. Once every cue has
  been played, the phone waits for the bot's answer to start (at most ``WAIT_FOR_ANSWER_S``) and finish
  (or the bot to hang up), then hangs up.
- Keys and a caller number redacted in the recording (the default) cannot be replayed: the keys are
  not pressed, a test number dials instead, and the result's notes say so.
- Model (``llm``): ``recorded`` serves the recorded answers (``bot.sim.replay.model``); ``emulated`` the
  scripted store model of the demo; ``live`` the OpenAI-compatible server of the environment
  (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``LLM_MODEL``).
- Voice (``tts``): ``recorded`` plays recorded phrases again and synthesizes new ones with the Google TTS
  emulator; ``emulated`` that emulator for everything; ``live`` the server's own choice from the
  environment (Google, or embedded piper).
- Hearing (``stt``): ``emulated`` the transcription emulator with the energy detector, for recordings of
  tone-coded test callers (their tone codes are numbered in the order the recording first heard each
  sentence, as the caller's codebook numbered them); ``embedded`` Whisper with silero; ``live`` the
  environment's choice.
- Tools (``tools``): ``recorded`` (the default) answers every call of the flow's own http and python
  tools from the recording (``bot.sim.replay.tools``): nothing reaches their services, so no side effect
  (a refund, a cancellation) repeats; a call the recording does not have gets an error result and is
  named in the result's notes. ``live`` runs them as today's flow defines them, side effects included.
  Twilio REST (hang-up, transfer) always goes to the local emulator, never to Twilio.
- ``speed`` > 1 runs the whole replay on a scaled clock (``bot.sim.replay.clock``): call from a plain thread
  or ``asyncio.Runner`` with ``ScaledClockLoop``; this module only reads ``loop.time()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from bot.call.deps import CallDeps
from bot.recording.reader import Recording
from bot.sim.replay import recorded, schedule
from bot.sim.replay.diff import CallDiff, compare
from bot.sim.replay.model import RecordedModel
from bot.sim.replay.speech import RecordedSpeech
from bot.sim.replay.tools import RecordedTools
from bot.sim.rig import Bench, bench
from emulators.openai_script import Responder
from emulators.phone_call import PhoneCall
from emulators.store_script import StoreScript
from emulators.voice import ToneCodebook

Source = Literal["recorded", "emulated", "live"]
Hearing = Literal["emulated", "embedded", "live"]
Tools = Literal["recorded", "live"]

WAIT_FOR_ANSWER_S = 30.0  # after the recorded audio: the bot's last answer, at most this long
QUIET_S = 1.0  # the bot counts as done after this much silence with every turn finished
CALLER = "+15550199"  # the caller's number when the recording has none (redacted)


class ReplayError(Exception):
    """A replay that cannot run (bad options, a flow that does not load); the message says why."""


@dataclass(frozen=True)
class ReplayOptions:
    flow: Path | None = None  # a flow file or folder; None: FLOWS_PATH, else the shipped flows
    llm: Source = "recorded"
    tts: Source = "recorded"
    stt: Hearing = "embedded"
    tools: Tools = "recorded"  # live: the flow's tools run again, repeating their side effects
    keep: Path | None = None  # where the replay's own recording goes (None: a temporary folder)


@dataclass
class ReplayResult:
    old: Recording
    new: Recording
    diff: CallDiff
    model_misses: int = 0  # requests the recording had no answer for (llm=recorded)
    phrases_served: int = 0  # phrases played from the recording (tts=recorded)
    phrases_synthesized: list[str] = field(default_factory=list)
    tools_served: int = 0  # tool calls answered from the recording (tools=recorded)
    tools_not_recorded: list[str] = field(default_factory=list)  # calls the recording has not: not run
    notes: list[str] = field(default_factory=list)


def _flow_path(option: Path | None) -> str:
    if option is not None:
        return str(option)
    from bot.sim.store_line import SHIPPED_FLOWS

    return os.environ.get("FLOWS_PATH") or str(SHIPPED_FLOWS)


def _settings(options: ReplayOptions, recordings: Path) -> dict[str, Any]:
    # No retention: --keep may name a folder of real recordings (even the one replayed): not ours to prune.
    config: dict[str, Any] = {
        "recordings_dir": str(recordings),
        "recording_max_age_days": 0,
        "recording_max_bytes": 0,
    }
    if options.llm == "live":
        if options.stt == "emulated":
            raise ReplayError(
                "--stt emulated needs the local model emulator: use it with --llm recorded/emulated"
            )
        key = os.environ.get("OPENAI_API_KEY")
        base_url = os.environ.get("OPENAI_BASE_URL")
        if not key and not base_url:
            raise ReplayError("--llm live needs OPENAI_API_KEY or OPENAI_BASE_URL in the environment")
        config["openai_api_key"] = SecretStr(key) if key else None
        config["openai_base_url"] = base_url
        if os.environ.get("LLM_MODEL"):
            config["llm_model"] = os.environ["LLM_MODEL"]
    if options.stt == "emulated":
        config.update(stt_provider="openai", vad="energy")
    elif options.stt == "embedded":
        config.update(stt_provider="whisper", vad="auto")
    else:
        config.update(stt_provider="auto", vad="auto")
    if options.tts == "live":
        config.update(tts_provider="auto", google_tts_endpoint=os.environ.get("GOOGLE_TTS_ENDPOINT"))
    else:
        config["tts_provider"] = "google"  # the local Google TTS emulator
    return config


def _responder(options: ReplayOptions, old: Recording) -> tuple[Responder, RecordedModel | None]:
    if options.llm == "recorded":
        model = RecordedModel(recorded.answers(old))
        return model, model
    return StoreScript(first_token_delay_s=0.3, chunk_delay_s=0.02), None


async def replay(old: Recording, options: ReplayOptions) -> ReplayResult:
    """Replay ``old`` through today's bot (see the module rules) and compare the two calls."""
    with contextlib.ExitStack() as stack:
        if options.keep is not None:
            options.keep.mkdir(parents=True, exist_ok=True)
            recordings = options.keep
        else:
            recordings = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="replay-")))
        responder, model = _responder(options, old)
        codebook = ToneCodebook()
        for turn in recorded.turns(old):  # a tone-coded caller: codes in the order its sentences came
            if not turn.typed and turn.heard:
                codebook.code(turn.heard)
        voices: list[RecordedSpeech] = []
        on_voices = _recorded_voices(old, voices) if options.tts == "recorded" else _scaled_clock
        tools = RecordedTools(recorded.tool_calls(old)) if options.tools == "recorded" else None

        def on_deps(deps: CallDeps) -> None:
            on_voices(deps)
            if tools is not None:
                deps.flow_tools = tools.tools

        try:
            async with bench(
                responder=responder,
                flows=_flow_path(options.flow),
                settings=_settings(options, recordings),
                stt_delay_s=0.15,
                tts_first_byte_s=0.15,
                tts_ms_per_char=55.0,
                on_deps=on_deps,
                codebook=codebook,
            ) as b:
                await b.server.warming
                for voice in voices:  # the flows' clips made at start-up are not the call's phrases
                    voice.synthesized.clear()
                new_path = await _call(b, old, recordings)
        except ReplayError:
            raise
        except Exception as exc:
            from bot.flows.loader import FlowError

            if isinstance(exc, FlowError):
                raise ReplayError(f"the flow does not load:\n{exc}") from exc
            raise
        new = Recording.load(new_path)
    notes = []
    if old.meta.get("flow_version") != new.meta.get("flow_version"):
        notes.append(
            f"flow {new.meta.get('flow')!r}: recorded with version {old.meta.get('flow_version')}, "
            f"replayed with {new.meta.get('flow_version')}"
        )
    redacted = recorded.redacted_keys(old)
    if redacted:
        notes.append(
            f"{redacted} keypad key(s) are redacted in the recording: the replay could not press them "
            "(record with RECORDING_KEEP_CALLER_NUMBER_AND_KEYS=true to replay keys)"
        )
    if "from" not in recorded.parameters(old):
        notes.append(f"the caller's number is not in the recording: the replay dialled from {CALLER}")
    for call in tools.misses if tools is not None else ():
        notes.append(f"tool call {call} is not in the recording: it was not run, the model got an error")
    if not old.complete:  # killed mid-call: how it would have ended is unknown, so it is not compared
        notes.append(
            "the recording is incomplete (its process was stopped mid-call): its ending is not compared"
        )
    diff = compare(
        recorded.turns(old),
        recorded.turns(new),
        old_outcome=str(old.meta.get("ended_by", "")) if old.complete else "",
        new_outcome=str(new.meta.get("ended_by", "")) if old.complete else "",
    )
    return ReplayResult(
        old=old,
        new=new,
        diff=diff,
        model_misses=len(model.misses) if model else 0,
        phrases_served=sum(v.served for v in voices),
        phrases_synthesized=[text for v in voices for text in v.synthesized],
        tools_served=tools.served if tools is not None else 0,
        tools_not_recorded=list(tools.misses) if tools is not None else [],
        notes=notes,
    )


def _scaled_clock(deps: CallDeps) -> None:
    deps.clock = asyncio.get_running_loop().time


def _recorded_voices(old: Recording, made: list[RecordedSpeech]) -> Callable[[CallDeps], None]:
    phrases = recorded.phrase_audio(old)

    def use(deps: CallDeps) -> None:
        _scaled_clock(deps)
        for engine, provider in list(deps.voices.providers.items()):
            speech = RecordedSpeech(phrases, provider)
            made.append(speech)
            deps.voices.providers[engine] = speech

    return use


async def _call(b: Bench, old: Recording, recordings: Path) -> Path:
    parameters = recorded.parameters(old)
    dialled = b.phone.dial(to=parameters.get("to", "+15550100"), from_=parameters.get("from", CALLER))
    async with await dialled as phone:
        try:
            await _play_caller(b, phone, schedule.cues(old, recorded.keys(old)))
            with contextlib.suppress(TimeoutError):
                await _answered(b, phone)
        except TimeoutError:  # the call ended under the caller (the bot hung up)
            pass
        await phone.hang_up()
    await asyncio.wait_for(b.call_ended.wait(), 30.0)
    call = b.finished_calls[0]
    recorder = call.journal.recorder
    if recorder is None or recorder.failed:
        raise ReplayError(f"the replay's own recording failed (under {recordings})")
    return recordings / recorder.recording_id


async def _play_caller(b: Bench, phone: PhoneCall, cues: list[schedule.Cue]) -> None:
    """Each cue at its anchor in this call (``bot.sim.replay.schedule``); a bot that never does what the
    anchor waits for (it changed) gets the cue after ``WAIT_FOR_ANSWER_S``."""
    previous_end = phone.stream_start
    turns = 0  # the bot's turns when the previous cue ended
    for cue in cues:
        if b.call_ended.is_set():
            return
        try:
            at = await _anchor(b, phone, cue, previous_end, turns)
        except TimeoutError:
            if b.call_ended.is_set():
                return
            at = phone.now()
        if cue.digit:
            await asyncio.sleep(max(0.0, at - phone.now()))
            with contextlib.suppress(ValueError):  # a key Twilio would not send
                await phone.send_dtmf(cue.digit)
            previous_end = max(at, phone.now())
        else:
            await phone.play_ulaw(cue.audio, at=at)
            previous_end = max(at + cue.duration, phone.now())
        turns = max((len(c.turns) for c in b.active_calls), default=turns)
    if cues and not b.call_ended.is_set():  # the last words' answer starts (or never will) before the end
        with contextlib.suppress(TimeoutError):
            await phone.wait_for_bot_audio(after=previous_end, timeout=WAIT_FOR_ANSWER_S)


async def _anchor(b: Bench, phone: PhoneCall, cue: schedule.Cue, previous_end: float, turns: int) -> float:
    """Phone time at which ``cue`` starts (the schedule's rule, on this call's events); a barge-in into
    an answer also waits for a turn after ``turns`` to have handed its answer's first phrase over."""
    if cue.anchor == "after_caller":
        return previous_end + cue.offset
    since = previous_end
    started = since
    for _ in range(max(1, cue.burst)):
        started = await phone.wait_for_bot_audio(after=since, timeout=WAIT_FOR_ANSWER_S)
        since = started + 0.001
    if cue.anchor == "barge_in":
        if cue.into_answer:
            started = max(started, await _answer_started(b, phone, turns))
        return started + cue.offset
    return await _bot_done(b, phone, quiet=min(QUIET_S, max(0.1, cue.offset))) + cue.offset


async def _answer_started(b: Bench, phone: PhoneCall, turns: int) -> float:
    """Phone time at which a turn after the first ``turns`` had its answer's first phrase handed over."""
    async with asyncio.timeout(WAIT_FOR_ANSWER_S):
        while not b.call_ended.is_set():
            if any(len(c.turns) > turns and any(c.turns[-1].said.values()) for c in b.active_calls):
                break
            await asyncio.sleep(0.02)
    return phone.now()


async def _bot_done(b: Bench, phone: PhoneCall, *, quiet: float) -> float:
    """When the bot's audio ended, once it has been quiet ``quiet`` s with every turn finished."""
    async with asyncio.timeout(WAIT_FOR_ANSWER_S):
        while True:
            end = await phone.wait_for_bot_silence(quiet=quiet, timeout=WAIT_FOR_ANSWER_S)
            calls = b.active_calls
            if b.call_ended.is_set() or not calls or all(not c.turns or c.turns[-1].finished for c in calls):
                return end
            await asyncio.sleep(0.05)


async def _answered(b: Bench, phone: PhoneCall) -> None:
    """Until the bot has answered the caller's last turn (or hung up)."""
    async with asyncio.timeout(WAIT_FOR_ANSWER_S):
        while not b.call_ended.is_set():
            await phone.wait_for_bot_silence(quiet=QUIET_S, timeout=WAIT_FOR_ANSWER_S)
            calls = b.active_calls
            if not calls or all(not c.turns or c.turns[-1].finished for c in calls):
                return
            await asyncio.sleep(0.1)
