"""End to end: ``bot serve`` drains on SIGTERM, as Kubernetes stops a pod.

Rules:
- A real ``bot serve`` subprocess on 127.0.0.1 with the OpenAI and TTS emulators; a ``SimulatedPhone``
  holds a live call when SIGTERM arrives. Logs go to a file (a pipe nobody reads could fill up).
- Every wait is bounded and generous; the subprocess is killed in a ``finally``. Assertions are about
  what happens (refusals, answers, who closed the call, exit code, log events), not about speed.
- Draining refuses new calls (``/voice``) but serves streams: a stream belongs to a call some replica
  already answered. At the drain deadline the streams end, and Twilio's ``<Connect action>`` request
  (the phone follows it, ``follow_actions``) moves each call to another replica (``reconnect_to``).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.recording import Recording
from bot.sim.rig import PUBLIC_BASE_URL
from emulators.openai_server import OpenAIEmulator
from emulators.phone import PhoneCall, PhoneRejected, SimulatedPhone
from emulators.tts_server import TtsEmulator
from emulators.voice import ToneCodebook
from tests.support.phone import QUIET_S, greeted
from tests.support.ports import free_port
from tests.support.served import TWILIO_SECRET, ServedBot, serve_env, serving
from tests.support.webhooks import STREAM_URL, sign

EXIT_TIMEOUT_S = 15.0


class Served(ServedBot):
    """A running ``bot serve`` and a phone that dials it with the transcription emulator's voice."""

    def __init__(self, bot: ServedBot, openai: OpenAIEmulator) -> None:
        super().__init__(bot.url, bot.process, bot.log_path)
        self.openai = openai
        self.phone = SimulatedPhone(
            bot_url=bot.url,
            auth_token=TWILIO_SECRET,
            public_base_url=PUBLIC_BASE_URL,
            codebook=openai.codebook,
        )

    async def until_draining(self) -> dict[str, Any]:
        """/healthz once it answers 503 (the signal is handled asynchronously)."""
        async with asyncio.timeout(10):
            while True:
                status, body = await self.health()
                if status == 503:
                    return body
                await asyncio.sleep(0.05)

    async def exit_code(self) -> int:
        try:
            return await asyncio.wait_for(self.process.wait(), EXIT_TIMEOUT_S)
        except TimeoutError:
            pytest.fail(f"bot serve still running {EXIT_TIMEOUT_S} s after its calls ended")


@asynccontextmanager
async def served(tmp_path: Path, **env_overrides: str) -> AsyncIterator[Served]:
    async with OpenAIEmulator(codebook=ToneCodebook()) as openai_emu, TtsEmulator(ms_per_char=30) as tts_emu:
        env = serve_env(
            OPENAI_BASE_URL=openai_emu.base_url,
            GOOGLE_TTS_ENDPOINT=tts_emu.address,
            # The emulators hear and speak: the tone-coded caller is not speech for Whisper or silero.
            STT_PROVIDER="openai",
            TTS_PROVIDER="google",
            VAD="energy",
            **env_overrides,
        )
        async with serving(env, tmp_path, tmp_path / "bot.log") as bot:
            yield Served(bot, openai_emu)


async def test_draining_refuses_new_calls_serves_streams_and_exits_once_the_live_call_ends(
    tmp_path: Path,
) -> None:
    async with served(tmp_path) as bot:  # DRAIN_TIMEOUT_S: the default 60 s, far beyond this test
        async with await bot.phone.dial() as call:
            await greeted(call)
            bot.process.send_signal(signal.SIGTERM)

            health = await bot.until_draining()
            assert health["status"] == "draining" and health["active_calls"] == 1
            assert list(health["flows"]) == ["store"]  # the other fields are kept
            with pytest.raises(PhoneRejected) as refused:
                await bot.phone.dial()  # the webhook: Twilio would now use the number's fallback
            assert refused.value.status == 503
            async with aiohttp.ClientSession() as http:
                # A stream of a call that was answered (by this replica or another) is still taken: no
                # Twilio page says a refused upgrade falls back anywhere, the call would just drop (31920).
                socket = await http.ws_connect(
                    bot.url + "/media",
                    headers={"X-Twilio-Signature": sign(STREAM_URL, {}, token=TWILIO_SECRET)},
                )
                await socket.close()

            # The live call goes on: one more turn, answered in speech.
            await call.say("What are your opening hours on Saturday?")
            await call.wait_for_bot_audio(timeout=10)
            await call.wait_for_bot_silence(quiet=QUIET_S, timeout=15)
            assert bot.process.returncode is None and not call.closed_by_bot
            heard = [request.last_user_text for request in bot.openai.chat_requests]
            assert "What are your opening hours on Saturday?" in heard
            await call.hang_up()

        assert await bot.exit_code() == 0
        [draining] = bot.events("draining")
        assert draining["active_calls"] == 1 and draining["timeout_s"] == 60
        [drained] = bot.events("drained")
        assert drained["calls_hung_up"] == 0 and not drained["cut_short"]


async def test_a_call_still_live_after_the_drain_timeout_is_hung_up_and_the_bot_exits(
    tmp_path: Path,
) -> None:
    async with served(tmp_path, DRAIN_TIMEOUT_S="2") as bot:
        async with await bot.phone.dial() as call:
            await greeted(call)
            bot.process.send_signal(signal.SIGTERM)
            await bot.until_draining()
            await call.wait_closed(timeout=EXIT_TIMEOUT_S)  # the caller never hangs up: the bot does
        assert await bot.exit_code() == 0
        [drained] = bot.events("drained")
        assert drained["calls_hung_up"] == 1 and not drained["cut_short"]
        assert drained["seconds"] >= 2


async def test_a_second_sigterm_cuts_the_drain_short(tmp_path: Path) -> None:
    async with served(tmp_path) as bot:  # a 60 s drain that the second signal ends
        async with await bot.phone.dial() as call:
            await greeted(call)
            bot.process.send_signal(signal.SIGTERM)
            await bot.until_draining()
            bot.process.send_signal(signal.SIGTERM)
            await call.wait_closed(timeout=EXIT_TIMEOUT_S)
        assert await bot.exit_code() == 0
        [drained] = bot.events("drained")
        assert drained["calls_hung_up"] == 1 and drained["cut_short"]


@asynccontextmanager
async def two_replicas(tmp_path: Path, **env_a: str) -> AsyncIterator[tuple[ServedBot, ServedBot, Served]]:
    """Replicas A and B of one deployment (B records its calls), sharing the provider emulators; the third
    item is A with a phone that follows ``<Connect action>``s as Twilio does."""
    voice = ToneCodebook()
    async with OpenAIEmulator(codebook=voice) as openai_emu, TtsEmulator(ms_per_char=30) as tts_emu:
        shared = {
            "OPENAI_BASE_URL": openai_emu.base_url, "GOOGLE_TTS_ENDPOINT": tts_emu.address,
            "STT_PROVIDER": "openai", "TTS_PROVIDER": "google", "VAD": "energy",
        }  # fmt: skip
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        env_b = serve_env(**shared, PORT=str(free_port()), RECORDINGS_DIR=str(tmp_path / "b" / "recordings"))
        async with (
            serving(
                serve_env(**shared, PORT=str(free_port()), **env_a),
                tmp_path / "a",
                tmp_path / "a" / "bot.log",
            ) as a,
            serving(env_b, tmp_path / "b", tmp_path / "b" / "bot.log") as b,
        ):
            served_a = Served(a, openai_emu)
            served_a.phone.follow_actions = True
            yield a, b, served_a


async def goes_on_at(b: ServedBot, first: PhoneCall, second: PhoneCall, tmp_path: Path) -> None:
    """``second`` (the stream the action opened) opened with the resume line on B and a turn was answered."""
    await greeted(second)
    await second.say("What are your opening hours on Saturday?")
    await second.wait_for_bot_audio(timeout=10)
    await second.wait_for_bot_silence(quiet=QUIET_S, timeout=15)
    assert not second.closed_by_bot and second.protocol_errors == []
    assert second.call_sid == first.call_sid and second.parameters["resumed"] == "1"
    await second.hang_up()
    await asyncio.sleep(0.5)  # B logs the call's end
    [moved] = b.events("connect_action")
    assert moved["call_sid"] == first.call_sid and moved["outcome"] == "resumed"
    [resumed] = [e for e in b.events("call_started") if e["call_sid"] == first.call_sid]
    assert "resumed" in resumed["parameters"]
    assert len([e for e in b.events("turn") if e["call_sid"] == first.call_sid]) == 1
    [folder] = [meta.parent for meta in (tmp_path / "b" / "recordings").glob("*/*/meta.json")]
    said = [e["text"] for e in Recording.load(folder).events_of("mark_sent")]
    assert said[0] == "Sorry, the line dropped. Where were we?"  # the store flow's resume line, first


async def test_at_the_drain_deadline_the_action_moves_the_call_to_another_replica(tmp_path: Path) -> None:
    async with two_replicas(tmp_path, DRAIN_TIMEOUT_S="5") as (a, b, served_a):
        phone = served_a.phone
        async with await phone.dial() as first:
            await greeted(first)
            a.process.send_signal(signal.SIGTERM)
            await served_a.until_draining()
            phone.reconnect_to = b.url  # the load balancer: A failed its health check

            # While draining, A still takes the stream of a call B answered.
            via_b = SimulatedPhone(
                bot_url=b.url,
                auth_token=TWILIO_SECRET,
                public_base_url=PUBLIC_BASE_URL,
                codebook=phone.codebook,
            )
            async with await via_b.dial(stream_to=a.url) as other:
                await other.wait_for_bot_audio(after=0.0, timeout=10)
                await other.hang_up()

            await first.wait_closed(timeout=EXIT_TIMEOUT_S)  # the deadline: A ends the stream
            async with await phone.wait_resumed(first) as second:  # ... and the action moves the call
                await goes_on_at(b, first, second, tmp_path)
        assert await asyncio.wait_for(a.process.wait(), EXIT_TIMEOUT_S) == 0
        assert await b.stop() == 0

    [drained] = a.events("drained")
    assert drained["calls_hung_up"] == 1 and drained["seconds"] >= 5
    assert [e["call_sid"] for e in a.events("call_started")] == [first.call_sid, other.call_sid]
    [action] = [p for p in phone.posted if p.kind == "action"]
    assert action.status == 200 and action.form["CallSid"] == first.call_sid


async def test_a_replica_killed_mid_call_loses_the_stream_and_the_action_moves_the_call(
    tmp_path: Path,
) -> None:
    async with two_replicas(tmp_path) as (a, b, served_a):
        phone = served_a.phone
        async with await phone.dial() as first:
            await greeted(first)
            phone.reconnect_to = b.url
            a.process.kill()  # SIGKILL: no drain; the kernel closes A's sockets
            await first.wait_closed(timeout=EXIT_TIMEOUT_S)
            async with await phone.wait_resumed(first) as second:
                await goes_on_at(b, first, second, tmp_path)
        assert await b.stop() == 0
