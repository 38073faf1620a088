"""A whole test bench on 127.0.0.1: both provider emulators, the bot server and a phone.

Used by the end-to-end tests, the latency benchmark and the demo, so they all run the same real
stack: the bot's real ``openai`` / ``google-cloud-texttospeech`` / ``twilio`` / ``aiohttp`` code over
real sockets against the emulators.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import SecretStr

from bot.call.call import Call
from bot.call.deps import CallDeps
from bot.flows.line import LineConfig
from bot.server.serve import RunningServer, start_server
from bot.server.settings import Settings
from bot.server.state import CALL_OBSERVERS
from bot.sim.store_line import store_line
from emulators.latency import Delay
from emulators.openai_script import Responder
from emulators.openai_server import OpenAIEmulator
from emulators.phone import SimulatedPhone
from emulators.store_script import StoreScript
from emulators.tts_quota import TtsQuota
from emulators.tts_server import TtsEmulator
from emulators.twilio_rest import TwilioRestEmulator
from emulators.voice import ToneCodebook

AUTH_TOKEN = "test-twilio-auth-token"
# REST goes through an API key with its own secret, as Twilio recommends for production
# (https://www.twilio.com/docs/usage/requests-to-twilio); the REST emulator refuses the auth token with it.
API_KEY_SID = "SK" + "0123456789abcdef" * 2
API_KEY_SECRET = "test-twilio-api-key-secret"
OPENAI_KEY = "sk-test-emulator-key"
PUBLIC_BASE_URL = "https://bot.example.com"


@dataclass
class Bench:
    openai: OpenAIEmulator
    tts: TtsEmulator
    server: RunningServer
    phone: SimulatedPhone
    codebook: ToneCodebook
    settings: Settings
    rest: TwilioRestEmulator
    finished_calls: list[Call] = field(default_factory=list)
    call_ended: asyncio.Event = field(default_factory=asyncio.Event)

    def _on_call_end(self, call: Call) -> None:
        self.finished_calls.append(call)
        self.call_ended.set()

    @property
    def active_calls(self) -> set[Call]:
        from bot.server.state import CALLS

        return self.server.app[CALLS]


@asynccontextmanager
async def bench(
    *,
    responder: Responder | None = None,
    line: LineConfig | None = None,
    stt_delay_s: float = 0.0,
    llm_first_token_s: Delay = 0.0,  # seconds, or a distribution (emulators.latency)
    llm_seed: int = 0,  # draws the emulator's latency distributions
    tts_first_byte_s: float = 0.0,
    tts_ms_per_char: float = 30.0,
    offline: bool = False,
    settings: dict[str, Any] | None = None,
    flows: str | None = None,
    on_deps: Callable[[CallDeps], None] | None = None,
    codebook: ToneCodebook | None = None,
    tts_quota: TtsQuota | Literal["google"] | None = "google",
    **line_overrides: Any,
) -> AsyncIterator[Bench]:
    """Start everything; ``line_overrides`` replace fields of the line (e.g. ``filler_delay_s=0.2``).

    ``flows`` (a flow file or folder) serves the flow files instead of ``line``, as ``bot serve`` does.
    ``on_deps`` may adjust the bot's providers before use (see ``start_server``); ``codebook`` is the tone
    voice shared by the phone and the transcription emulator (a replay brings one with its sentences).
    ``tts_quota``: Google's quotas at the TTS emulator from its first request: its defaults unless given
    (``TtsQuota(...)`` other limits, None none).

    With ``offline`` the bot uses its embedded engines (Whisper, piper, silero); the OpenAI emulator
    still serves the chat model.
    """
    codebook = codebook or ToneCodebook()
    script = responder or StoreScript(first_token_delay_s=llm_first_token_s, chunk_delay_s=0.0)
    base_line = line or store_line()
    if line_overrides:
        base_line = dataclasses.replace(base_line, **line_overrides)
    async with (
        OpenAIEmulator(
            script, codebook=codebook, transcription_delay_s=stt_delay_s, seed=llm_seed
        ) as openai_emu,
        TtsEmulator(
            first_byte_delay_s=tts_first_byte_s, ms_per_char=tts_ms_per_char, quota=tts_quota
        ) as tts_emu,
        TwilioRestEmulator(AUTH_TOKEN, api_keys={API_KEY_SID: API_KEY_SECRET}) as rest_emu,
    ):
        config: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "public_base_url": PUBLIC_BASE_URL,
            "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "openai_api_key": SecretStr(OPENAI_KEY),
            "openai_base_url": openai_emu.base_url,
            "google_tts_endpoint": tts_emu.address,
            "twilio_api_base_url": rest_emu.base_url,
            "twilio_api_key_sid": API_KEY_SID,
            "twilio_api_key_secret": SecretStr(API_KEY_SECRET),
            # offline: the embedded engines hear and speak (the caller needs a real synthetic voice).
            # Otherwise the provider emulators do, and the tone-coded caller is not speech: the
            # energy detector, not silero, hears it.
            "stt_provider": "whisper" if offline else "openai",
            "tts_provider": "piper" if offline else "google",
            "vad": "silero" if offline else "energy",
            **(settings or {}),
        }
        if flows is not None:
            config["flows_path"] = flows
        recordings = tempfile.TemporaryDirectory(prefix="bench-recordings-")
        config.setdefault("recordings_dir", recordings.name)
        bot_settings = Settings(**config)
        server = await start_server(bot_settings, None if flows is not None else base_line, on_deps=on_deps)
        try:
            phone = SimulatedPhone(
                bot_url=server.url, auth_token=AUTH_TOKEN, public_base_url=PUBLIC_BASE_URL, codebook=codebook
            )
            b = Bench(openai_emu, tts_emu, server, phone, codebook, bot_settings, rest_emu)
            server.app[CALL_OBSERVERS].append(b._on_call_end)
            yield b
        finally:
            await server.stop()
            recordings.cleanup()
