"""End to end: replicas behind a load balancer need no sticky sessions and share no call state.

Rules:
- Two ``bot serve`` subprocesses with the same settings and flows (each with its own port and recordings
  folder, as two pods would have), the same provider emulators, on 127.0.0.1.
- The phone posts the webhook to A and opens the stream on B (``dial(stream_to=...)``). The number called
  has a flow of its own (not the default), so B answering with that flow proves the choice travelled in
  the stream's ``start.customParameters`` and not in any memory of A's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.recording import Recording
from bot.sim.rig import PUBLIC_BASE_URL
from emulators.openai_server import OpenAIEmulator
from emulators.phone import SimulatedPhone
from emulators.store_script import StoreScript
from emulators.tts_server import TtsEmulator
from emulators.voice import ToneCodebook
from tests.support.flows import STORE_YAML, store_flow, write_flow
from tests.support.ports import free_port
from tests.support.served import TWILIO_SECRET, ServedBot, active_calls, serve_env, serving

GARDEN_NUMBER = "+15550111"
CALLER = "+15550177"
GARDEN_GREETING = "Garden centre, good day to you."
QUESTION = "What are your opening hours on Saturday?"
QUIET_S = 0.6


def write_flows(folder: Path) -> Path:
    """The shipped store flow (the default line), and a garden flow on its own number."""
    folder.mkdir()
    write_flow(folder, "store.yaml", STORE_YAML)
    write_flow(folder, "garden.yaml", store_flow("garden", GARDEN_GREETING, numbers=(GARDEN_NUMBER,)))
    return folder


def recordings(root: Path) -> list[Path]:
    return [meta.parent for meta in root.glob("*/*/meta.json")]


async def until_idle(bot: ServedBot) -> None:
    async with asyncio.timeout(15):
        while True:
            if await active_calls(bot) == 0:
                return
            await asyncio.sleep(0.05)


async def test_the_webhook_answered_by_one_replica_and_the_stream_taken_by_another(tmp_path: Path) -> None:
    flows = write_flows(tmp_path / "flows")
    voice = ToneCodebook()  # the phone's sentences, as the transcription emulator hears them
    async with (
        OpenAIEmulator(StoreScript(first_token_delay_s=0.0, chunk_delay_s=0.0), codebook=voice) as openai_emu,
        TtsEmulator(ms_per_char=30) as tts_emu,
    ):
        shared: dict[str, str] = {
            "OPENAI_BASE_URL": openai_emu.base_url, "GOOGLE_TTS_ENDPOINT": tts_emu.address,
            "STT_PROVIDER": "openai", "TTS_PROVIDER": "google", "VAD": "energy", "FLOWS_PATH": str(flows),
        }  # fmt: skip
        env_a = serve_env(**shared, PORT=str(free_port()), RECORDINGS_DIR=str(tmp_path / "a" / "recordings"))
        env_b = serve_env(**shared, PORT=str(free_port()), RECORDINGS_DIR=str(tmp_path / "b" / "recordings"))
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        async with (
            serving(env_a, tmp_path / "a", tmp_path / "a" / "bot.log") as a,
            serving(env_b, tmp_path / "b", tmp_path / "b" / "bot.log") as b,
        ):
            phone = SimulatedPhone(
                bot_url=a.url, auth_token=TWILIO_SECRET, public_base_url=PUBLIC_BASE_URL, codebook=voice
            )
            async with await phone.dial(to=GARDEN_NUMBER, from_=CALLER, stream_to=b.url) as call:
                await call.wait_for_bot_audio(after=0.0, timeout=10)  # the greeting
                assert (await active_calls(a), await active_calls(b)) == (0, 1)
                await call.wait_for_bot_silence(quiet=QUIET_S, timeout=15)
                await call.say(QUESTION)
                await call.wait_for_bot_audio(timeout=10)
                await call.wait_for_bot_silence(quiet=QUIET_S, timeout=15)
                assert (await active_calls(a), await active_calls(b)) == (0, 1)
                await call.hang_up()
            assert call.protocol_errors == [] and not call.closed_by_bot
            await until_idle(b)
            assert await b.stop() == 0 and await a.stop() == 0

    # A answered the webhook and nothing else; B ran the call on the flow of the number called.
    [answered] = a.events("call_answered")
    assert answered["call_sid"] == call.call_sid and answered["line"] == "garden"
    assert not a.events("call_started") and not b.events("call_answered")
    [started] = b.events("call_started")
    assert started["call_sid"] == call.call_sid and started["line"] == "garden"
    assert len(b.events("turn")) == 1

    assert recordings(tmp_path / "a" / "recordings") == []
    [folder] = recordings(tmp_path / "b" / "recordings")
    rec = Recording.load(folder)
    assert rec.complete and rec.meta["call_sid"] == call.call_sid and rec.meta["flow"] == "garden"
    # The caller's number reached B too; the recording redacts it (RECORDING_KEEP_CALLER_NUMBER_AND_KEYS).
    assert rec.meta["parameters"] == {"to": GARDEN_NUMBER, "from": "[redacted]", "line": "garden"}
    said = [e["text"] for e in rec.events_of("mark_sent")]
    assert said[0] == GARDEN_GREETING  # the greeting heard is the garden flow's
    [turn] = rec.events_of("turn")
    assert turn["transcript"] == QUESTION
    assert "open from" in " ".join(turn["said"].values())  # answered, through the flow's hours tool
    assert rec.caller_ulaw() and rec.bot_played_ulaw()
