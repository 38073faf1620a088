"""A local grpc.aio server for ``google.cloud.texttospeech.v1.TextToSpeech`` (plaintext, 127.0.0.1 only).

Rules:
- Method names and (de)serializers are those the real stubs use (google-cloud-texttospeech
  ``texttospeech_v1/services/text_to_speech/transports/grpc_asyncio.py``); ListVoices is not served, so it
  answers UNIMPLEMENTED.
- Requests are checked against the service's documented rules (``emulators/tts_rules.py``, each with its
  source) and refused with INVALID_ARGUMENT as the service does; speaking_rate is [0.25, 2.0].
- ``quota``: Google's per-project quotas (``emulators/tts_quota.py``: requests per minute by voice family,
  concurrent streaming sessions), answered with RESOURCE_EXHAUSTED. By default the emulator enforces
  Google's default limits (a fresh ``TtsQuota()`` per emulator), as a new project has them; ``None``
  serves without limits (a project whose quota was raised: the load benchmark). The quota is
  checked before the request's rules (an assumption: Google does not say whether a malformed request
  counts), after a scripted fault.
- Audio is a synthetic, speech-like placeholder lasting ``len(text) * ms_per_char / speaking_rate``; its
  sample count is always even so a one-byte-per-sample WAV never needs a RIFF pad byte.
- SynthesizeSpeech answers like the real service: LINEAR16 is WAV + PCM16; MULAW (tag 7) and ALAW
  (tag 6) are WAV with an 18-byte ``fmt `` chunk, a ``fact`` chunk, then the G.711 bytes; PCM is headerless
  PCM16. Other encodings are INVALID_ARGUMENT. Sample rate 0 means 24000.
- StreamingSynthesize: the first request must carry only ``streaming_config``, every later one only
  ``input``; a ``streaming_audio_config`` needs its encoding, none at all means PCM. Each text yields
  ~100 ms responses, the first after ``first_byte_delay_s``. Encodings PCM (24000 by default), MULAW and
  ALAW, all sent **headerless** here: whether the real service puts a RIFF header on streamed MULAW/ALAW
  is unverified, so clients should check for ``b"RIFF"`` anyway.
- A stream that gets no input (text or the client's half-close) for ``stream_idle_s`` (5 s) is ABORTED,
  as the real service does: "Stream aborted due to long duration elapsed without input sent. Input
  must be sent continuously, at least every 5s seconds." (observed, not documented: livekit/agents
  issue 2406, voipbin/monorepo PR 551). Inputs are read as they arrive, while earlier audio is sent.
- ``faults`` is a queue: each RPC (unary or streaming) pops one; a streaming fault fires after
  ``after_chunks`` responses (a fault with ``after_chunks=0`` fires once the config is read). Every
  request is recorded in ``synth_requests`` (one record per text); ``rpcs`` counts the calls per kind
  (``unary``, ``streaming``): what the service's requests-per-minute quotas count.
- A fault with ``code=OK`` truncates instead of failing: a stream sends ``after_chunks`` responses in all
  and ends with OK once the client has finished writing (reading its requests avoids the race below);
  a unary answer carries only the first ``after_chunks`` ~100 ms pieces of the audio.
- Beware a grpc.aio client race that a real server triggers too: if the client is still writing when the
  server aborts, the client sees INTERNAL ("Internal error from Core") instead of the server's code.
- Written with ``struct`` and the emulator's own rule modules: nothing from ``bot/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import math
import re
import struct
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import grpc
from google.cloud.texttospeech_v1.types import cloud_tts

from emulators import tts_rules as rules
from emulators.local_http import LocalServer
from emulators.tts_quota import QuotaExceeded, TtsQuota
from media.codec import pcm16_to_ulaw

_SERVICE = "google.cloud.texttospeech.v1.TextToSpeech"
_Encoding = cloud_tts.AudioEncoding
_WAV_TAGS = {_Encoding.LINEAR16: 1, _Encoding.ALAW: 6, _Encoding.MULAW: 7}
_STREAMING_ENCODINGS = {_Encoding.PCM, _Encoding.MULAW, _Encoding.ALAW}


@dataclass
class TtsFault:
    code: grpc.StatusCode
    message: str = "emulated fault"
    after_chunks: int = 0  # for streaming: fail after N responses (OK: truncate there, see the rules)

    @property
    def truncates(self) -> bool:
        return bool(self.code == grpc.StatusCode.OK)  # grpc ships no type hints


def synthetic_speech_pcm16(text: str, sample_rate: int, ms_per_char: float) -> bytes:
    """Audible, speech-like placeholder audio (PCM16 mono) lasting ``len(text) * ms_per_char`` ms.

    A 140 Hz voice with two harmonics under a 4 Hz syllable envelope that never drops to silence.
    """
    n = round(len(text) * ms_per_char * sample_rate / 1000)
    return _speech(n + n % 2, sample_rate)


@functools.lru_cache(maxsize=64)
def _speech(n_samples: int, sample_rate: int) -> bytes:
    # The audio depends only on its length, so it is cached: long replies are synthesized repeatedly.
    table_size = 1024
    wave_table = [
        math.sin(2 * math.pi * i / table_size) + 0.5 * math.sin(4 * math.pi * i / table_size)
        + 0.25 * math.sin(6 * math.pi * i / table_size)
        for i in range(table_size)
    ]  # fmt: skip
    syllable = max(1, sample_rate // 4)
    envelope = [0.3 + 0.7 * math.sin(math.pi * i / syllable) ** 2 for i in range(syllable)]
    step = 140.0 * table_size / sample_rate
    peak = 9000 / 1.75  # the wave table peaks below 1.75
    # A 250 ms syllable holds a whole number of 140 Hz cycles, so one syllable tiles seamlessly: build it
    # once and repeat it (the emulator's CPU time would otherwise show up as the bot's latency).
    samples = [int(peak * envelope[i] * wave_table[int(i * step) % table_size]) for i in range(syllable)]
    one = struct.pack(f"<{syllable}h", *samples)
    return (one * (n_samples // syllable + 1))[: 2 * n_samples]


def _ulaw_byte(sample: int) -> int:
    value = sample >> 2  # 14-bit, rounding like audioop so both encoders agree byte for byte
    mask = 0xFF if value >= 0 else 0x7F
    magnitude = min(abs(value), 8159) + 0x21
    segment = magnitude.bit_length() - 6  # 0..7, or 8 when clipping
    if segment > 7:
        return 0x7F ^ mask
    return (segment << 4 | (magnitude >> (segment + 1)) & 0x0F) ^ mask


def _alaw_byte(sample: int) -> int:
    value = sample >> 3  # 13-bit
    mask = 0xD5 if value >= 0 else 0x55
    if value < 0:
        value = -value - 1
    segment = max(0, value.bit_length() - 5)  # 0..7 for 0..4095; 8 means clipping
    if segment > 7:
        return 0x7F ^ mask
    mantissa = (value >> 1 if segment < 2 else value >> segment) & 0x0F
    return (segment << 4 | mantissa) ^ mask


@functools.cache
def _g711_table(encoding: int) -> bytes:
    convert = _ulaw_byte if encoding == _Encoding.MULAW else _alaw_byte
    return bytes(convert(s - 65536 if s >= 32768 else s) for s in range(65536))  # indexed by uint16


def encode_g711(pcm16: bytes, encoding: int) -> bytes:
    """PCM16 little-endian -> μ-law (MULAW) or A-law (ALAW) bytes."""
    if encoding == _Encoding.MULAW:
        return pcm16_to_ulaw(pcm16)  # C speed; the table below matches it byte for byte
    table = _g711_table(encoding)
    return bytes(map(table.__getitem__, struct.unpack(f"<{len(pcm16) // 2}H", pcm16)))


def wav_file(payload: bytes, sample_rate: int, encoding: int) -> bytes:
    """A RIFF/WAVE file around ``payload``, with the chunk layout the real service uses per encoding."""
    tag = _WAV_TAGS[encoding]
    if tag == 1:
        fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
        chunks = [(b"fmt ", fmt)]
    else:  # G.711: non-PCM formats carry cbSize (18-byte fmt) and a fact chunk with the sample count
        fmt = struct.pack("<HHIIHHH", tag, 1, sample_rate, sample_rate, 1, 8, 0)
        chunks = [(b"fmt ", fmt), (b"fact", struct.pack("<I", len(payload)))]
    chunks.append((b"data", payload))
    body = b"".join(
        cid + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2) for cid, data in chunks
    )
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def _plain_text(text: str, ssml: str) -> str:
    return text or html.unescape(re.sub(r"<[^>]*>", " ", ssml)).strip()


def _project(context: Any) -> str:
    metadata = dict(context.invocation_metadata() or ())
    return str(metadata.get("x-goog-user-project") or "default")


class TtsEmulator(LocalServer):
    """See the module docstring. Use ``async with TtsEmulator() as tts: tts.address``."""

    def __init__(
        self,
        *,
        first_byte_delay_s: float = 0.0,
        ms_per_char: float = 55.0,
        quota: TtsQuota | Literal["google"] | None = "google",
        stream_idle_s: float = 5.0,
    ) -> None:
        self.first_byte_delay_s = first_byte_delay_s
        self.ms_per_char = ms_per_char
        # "google": Google's default quotas, this emulator's own count; None serves without limits.
        self.quota = TtsQuota() if quota == "google" else quota
        self.stream_idle_s = stream_idle_s
        self.synth_requests: list[dict[str, Any]] = []
        self.rpcs: Counter[str] = Counter()
        self.faults: list[TtsFault] = []
        self.address = ""
        self._server: Any = None  # grpc.aio.Server (grpc ships no type hints)

    async def start(self) -> str:
        if self._server is not None:
            raise RuntimeError("TtsEmulator is already running")
        handler = grpc.method_handlers_generic_handler(
            _SERVICE,
            {
                "SynthesizeSpeech": grpc.unary_unary_rpc_method_handler(
                    self._synthesize,
                    request_deserializer=cloud_tts.SynthesizeSpeechRequest.deserialize,
                    response_serializer=cloud_tts.SynthesizeSpeechResponse.serialize,
                ),
                "StreamingSynthesize": grpc.stream_stream_rpc_method_handler(
                    self._streaming_synthesize,
                    request_deserializer=cloud_tts.StreamingSynthesizeRequest.deserialize,
                    response_serializer=cloud_tts.StreamingSynthesizeResponse.serialize,
                ),
            },
        )
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server
        self.address = f"127.0.0.1:{port}"
        return self.address

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace=0.2)  # then in-flight RPCs (a scripted delay) are cancelled

    def _record(self, kind: str, text: str, voice: Any, encoding: int, rate: int, speed: float) -> None:
        self.synth_requests.append({
            "kind": kind, "text": text, "voice_name": voice.name, "language_code": voice.language_code,
            "encoding": getattr(encoding, "name", str(encoding)), "sample_rate": rate, "speaking_rate": speed,
            "received_at": time.monotonic(),
        })  # fmt: skip

    def _pcm(self, text: str, rate: int, speed: float) -> bytes:
        return synthetic_speech_pcm16(text, rate, self.ms_per_char / speed)

    async def _synthesize(self, request: Any, context: Any) -> Any:
        self.rpcs["unary"] += 1
        config, source = request.audio_config, request.input
        text = _plain_text(source.text or source.markup, source.ssml)
        self._record("unary", text, request.voice, config.audio_encoding, config.sample_rate_hertz,
                     config.speaking_rate)  # fmt: skip
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None and not fault.truncates:
            await context.abort(fault.code, fault.message)
        try:
            if self.quota is not None:
                self.quota.request(_project(context), request.voice.name)
        except QuotaExceeded as exceeded:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exceeded))
        try:  # each rule's source is in emulators/tts_rules.py
            rules.input_text(
                text=source.text, ssml=source.ssml, markup=source.markup, voice_name=request.voice.name
            )
            rules.voice(request.voice.language_code, request.voice.name)
            rate, speed = (
                rules.sample_rate(config.sample_rate_hertz),
                rules.speaking_rate(config.speaking_rate),
            )
            rules.pitch(config.pitch)
            rules.volume_gain_db(config.volume_gain_db)
            rules.effects_profiles(list(config.effects_profile_id))
            encoding = config.audio_encoding
            if encoding not in (*_WAV_TAGS, _Encoding.PCM):
                raise rules.Invalid(f"audio_encoding {encoding} is not supported by this emulator")
        except rules.Invalid as invalid:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(invalid))
        await asyncio.sleep(self.first_byte_delay_s)
        pcm = self._pcm(text, rate, speed)
        if fault is not None:  # truncated to whole ~100 ms pieces, still an even sample count
            samples = fault.after_chunks * (rate // 10)
            pcm = pcm[: 2 * (samples - samples % 2)]
        if encoding == _Encoding.PCM:
            audio = pcm
        elif encoding == _Encoding.LINEAR16:
            audio = wav_file(pcm, rate, encoding)
        else:
            audio = wav_file(encode_g711(pcm, encoding), rate, encoding)
        return cloud_tts.SynthesizeSpeechResponse(audio_content=audio)

    async def _streaming_synthesize(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        self.rpcs["streaming"] += 1
        fault = self.faults.pop(0) if self.faults else None
        first = await anext(requests, None)
        if fault is not None and not fault.truncates and fault.after_chunks <= 0:
            # After reading the config: aborting while the client still writes it makes grpc.aio report
            # INTERNAL ("Internal error from Core") instead of the fault's code.
            await context.abort(fault.code, fault.message)
        if first is None:
            return
        if (
            cloud_tts.StreamingSynthesizeRequest.pb(first).WhichOneof("streaming_request")
            != "streaming_config"
        ):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "The first request must carry streaming_config."
            )
        project, quota = _project(context), self.quota
        if quota is None:
            async for response in self._stream_texts(first.streaming_config, requests, context, fault):
                yield response
            return
        try:  # the session counts once against the per-minute requests, and while open against streams
            quota.open_stream(project)
        except QuotaExceeded as exceeded:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exceeded))
        try:
            try:
                quota.request(project, first.streaming_config.voice.name)
            except QuotaExceeded as exceeded:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exceeded))
            async for response in self._stream_texts(first.streaming_config, requests, context, fault):
                yield response
        finally:
            quota.close_stream(project)

    async def _stream_texts(
        self, config: Any, requests: AsyncIterator[Any], context: Any, fault: TtsFault | None
    ) -> AsyncIterator[Any]:
        voice = config.voice
        audio_config = config.streaming_audio_config
        try:  # each rule's source is in emulators/tts_rules.py
            rules.voice(voice.language_code, voice.name, streaming=True)
            rate = rules.sample_rate(audio_config.sample_rate_hertz)
            speed = rules.speaking_rate(audio_config.speaking_rate)
            if "streaming_audio_config" in config and not audio_config.audio_encoding:
                raise rules.Invalid("streaming_audio_config.audio_encoding is required.")
            encoding = audio_config.audio_encoding or _Encoding.PCM  # no audio config: PCM at 24 kHz
            if encoding not in _STREAMING_ENCODINGS:
                raise rules.Invalid(f"audio_encoding {encoding} is not supported for streaming here")
        except rules.Invalid as invalid:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(invalid))
        bytes_per_sample = 2 if encoding == _Encoding.PCM else 1
        piece = rate // 10 * bytes_per_sample  # ~100 ms
        sent = 0
        inputs: asyncio.Queue[tuple[float, Any]] = asyncio.Queue()  # (arrival, request or None: half-close)

        async def read() -> None:
            with contextlib.suppress(Exception):  # the call ended (cancelled): the handler sees it itself
                async for request in requests:
                    inputs.put_nowait((time.monotonic(), request))
            inputs.put_nowait((time.monotonic(), None))

        reader = asyncio.create_task(read())
        last_input = time.monotonic()
        while True:
            try:
                arrived, request = await asyncio.wait_for(
                    inputs.get(), max(0.0, last_input + self.stream_idle_s - time.monotonic())
                )
            except TimeoutError:
                arrived, request = math.inf, None
            if arrived - last_input > self.stream_idle_s:
                reader.cancel()
                await context.abort(
                    grpc.StatusCode.ABORTED,
                    "Stream aborted due to long duration elapsed without input sent. "
                    f"Input must be sent continuously, at least every {self.stream_idle_s:g}s seconds.",
                )
            last_input = arrived
            if request is None:
                break
            if cloud_tts.StreamingSynthesizeRequest.pb(request).WhichOneof("streaming_request") != "input":
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "Only the first request may carry config."
                )
            text = request.input.text or request.input.markup
            self._record("streaming", text, voice, encoding, rate, speed)
            if not text:
                continue
            try:
                rules.input_text(text=request.input.text, markup=request.input.markup, voice_name=voice.name)
            except rules.Invalid as invalid:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(invalid))
            pcm = self._pcm(text, rate, speed)
            audio = pcm if encoding == _Encoding.PCM else encode_g711(pcm, encoding)
            await asyncio.sleep(self.first_byte_delay_s)
            for offset in range(0, len(audio), piece):
                if fault is not None and sent >= fault.after_chunks:
                    if fault.truncates:
                        break  # no more audio, for this text or any later one
                    await context.abort(fault.code, fault.message)
                yield cloud_tts.StreamingSynthesizeResponse(audio_content=audio[offset : offset + piece])
                sent += 1
        if fault is not None and not fault.truncates:
            # Fewer responses than after_chunks: a queued fault still fails the RPC.
            await context.abort(fault.code, fault.message)
