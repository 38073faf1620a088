"""The TTS emulator driven by the real ``TextToSpeechAsyncClient`` over a plaintext grpc.aio channel.

Every call passes ``timeout=`` so nothing can hang. Observed with google-cloud-texttospeech 2.38: the
async client's methods have no default retry (``default_retry`` is unset), so UNAVAILABLE surfaces at
once as ``ServiceUnavailable`` after a single request.
"""

from __future__ import annotations

import asyncio
import io
import struct
import time
import wave
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
import pytest
from google.api_core import exceptions as api_exceptions
from google.cloud import texttospeech as tts
from google.cloud.texttospeech_v1.services.text_to_speech.transports import TextToSpeechGrpcAsyncIOTransport
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators.tts_quota import TtsQuota
from emulators.tts_server import TtsEmulator, TtsFault, encode_g711, synthetic_speech_pcm16
from tests.support.clocks import FakeClock

VOICE = tts.VoiceSelectionParams(language_code="en-US", name="en-US-Chirp3-HD-Aoede")
CALL_TIMEOUT = 10.0
Encoding = tts.AudioEncoding


@pytest.fixture
async def emulator() -> AsyncIterator[TtsEmulator]:
    async with TtsEmulator(ms_per_char=20.0) as emu:
        yield emu


@pytest.fixture
async def client(emulator: TtsEmulator) -> AsyncIterator[Any]:
    channel = grpc.aio.insecure_channel(emulator.address)
    yield tts.TextToSpeechAsyncClient(transport=TextToSpeechGrpcAsyncIOTransport(channel=channel))
    await channel.close()


async def synthesize(
    client: Any, text: str, encoding: int, rate: int = 0, deadline_s: float = CALL_TIMEOUT, **options: Any
) -> bytes:
    response = await client.synthesize_speech(
        input=tts.SynthesisInput(text=text),
        voice=VOICE,
        audio_config=tts.AudioConfig(audio_encoding=encoding, sample_rate_hertz=rate, **options),
        timeout=deadline_s,
    )
    audio: bytes = response.audio_content
    return audio


def riff_chunks(data: bytes) -> dict[bytes, bytes]:
    """Chunk id -> payload, walking the RIFF file the way the bot must (no fixed 44-byte header)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    chunks, offset = {}, 12
    while offset < len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        chunks[chunk_id] = data[offset + 8 : offset + 8 + size]
        offset += 8 + size + size % 2
    return chunks


def expected_samples(text: str, rate: int, ms_per_char: float) -> int:
    return len(synthetic_speech_pcm16(text, rate, ms_per_char)) // 2


@pytest.mark.parametrize(("encoding", "tag"), [(Encoding.MULAW, 7), (Encoding.ALAW, 6)])
async def test_g711_wav_has_fmt_fact_and_data(
    client: Any, emulator: TtsEmulator, encoding: int, tag: int
) -> None:
    text = "Hello, thanks for calling."
    audio = await synthesize(client, text, encoding, 8000)
    chunks = riff_chunks(audio)
    assert list(chunks) == [b"fmt ", b"fact", b"data"]
    fmt_tag, channels, rate, byte_rate, block, bits, cb_size = struct.unpack("<HHIIHHH", chunks[b"fmt "])
    assert (fmt_tag, channels, rate, byte_rate, block, bits, cb_size) == (tag, 1, 8000, 8000, 1, 8, 0)
    n = expected_samples(text, 8000, emulator.ms_per_char)
    assert abs(n - len(text) * emulator.ms_per_char * 8) <= 2
    assert struct.unpack("<I", chunks[b"fact"])[0] == n
    pcm = synthetic_speech_pcm16(text, 8000, emulator.ms_per_char)
    assert chunks[b"data"] == encode_g711(pcm, encoding)
    record = emulator.synth_requests[-1]
    assert (record["text"], record["voice_name"], record["sample_rate"]) == (text, VOICE.name, 8000)
    assert record["encoding"] == Encoding(encoding).name


async def test_linear16_is_a_standard_wav_at_24000_by_default(client: Any) -> None:
    audio = await synthesize(client, "One two three", Encoding.LINEAR16)
    with wave.open(io.BytesIO(audio)) as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (24000, 2, 1)
        frames = wav.readframes(wav.getnframes())
    assert frames == synthetic_speech_pcm16("One two three", 24000, 20.0)


async def test_pcm_is_headerless_and_speaking_rate_shortens_it(client: Any) -> None:
    normal = await synthesize(client, "Your order has shipped.", Encoding.PCM, 16000)
    fast = await synthesize(client, "Your order has shipped.", Encoding.PCM, 16000, speaking_rate=2.0)
    assert not normal.startswith(b"RIFF")
    assert normal == synthetic_speech_pcm16("Your order has shipped.", 16000, 20.0)
    assert abs(len(fast) - len(normal) // 2) <= 4


async def test_ssml_tags_are_stripped(client: Any, emulator: TtsEmulator) -> None:
    await client.synthesize_speech(
        input=tts.SynthesisInput(ssml="<speak>Hi <break time='1s'/>there &amp; bye</speak>"),
        voice=VOICE,
        audio_config=tts.AudioConfig(audio_encoding=Encoding.PCM),
        timeout=CALL_TIMEOUT,
    )
    assert " ".join(emulator.synth_requests[-1]["text"].split()) == "Hi there & bye"


@pytest.mark.parametrize(
    ("text", "encoding", "rate"),
    [("hi", Encoding.MP3, 0), ("", Encoding.PCM, 0), ("hi", Encoding.PCM, 1000), ("hi", 0, 0)],
    ids=["mp3", "empty-text", "bad-rate", "unspecified-encoding"],
)
async def test_invalid_requests_are_invalid_argument(
    client: Any, text: str, encoding: int, rate: int
) -> None:
    with pytest.raises(api_exceptions.InvalidArgument):
        await synthesize(client, text, encoding, rate)


@pytest.mark.parametrize("rate", [0.2, 2.01, 4.0])
async def test_speaking_rate_outside_the_protos_range_is_invalid_argument(client: Any, rate: float) -> None:
    # cloud_tts.proto AudioConfig.speaking_rate: [0.25, 2.0] since 2025-03-31 (it was 4.0 before).
    with pytest.raises(api_exceptions.InvalidArgument, match="speaking_rate"):
        await synthesize(client, "hi", Encoding.PCM, speaking_rate=rate)


@pytest.mark.parametrize("rate", [0.25, 2.0])
async def test_speaking_rate_bounds_are_accepted(client: Any, rate: float) -> None:
    assert await synthesize(client, "hi", Encoding.PCM, speaking_rate=rate)


async def test_streaming_speaking_rate_outside_the_protos_range_is_invalid_argument(client: Any) -> None:
    # cloud_tts.proto StreamingAudioConfig.speaking_rate: the same [0.25, 2.0].
    # Refused at the config: a text written after it would race the abort (refused_stream).
    with pytest.raises(api_exceptions.InvalidArgument, match="speaking_rate"):
        await refused_stream(client, config_request(Encoding.PCM, 8000, speaking_rate=2.5))


# Each rule of emulators/tts_rules.py (sources there): a request the service refuses is INVALID_ARGUMENT.
BAD_UNARY = {
    "pitch": ({"pitch": 20.5}, {}, "pitch"),
    "volume_gain_db": ({"volume_gain_db": 16.5}, {}, "volume_gain_db"),
    "effects-profile": ({"effects_profile_id": ["telephone"]}, {}, "effects_profile_id"),
    "no-language": ({}, {"language_code": ""}, "language_code is required"),
    "language-mismatch": ({}, {"language_code": "en-GB"}, "doesn't match the voice"),
}


@pytest.mark.parametrize(("audio", "voice", "match"), BAD_UNARY.values(), ids=BAD_UNARY.keys())
async def test_what_the_service_refuses_is_invalid_argument(
    client: Any, audio: dict[str, Any], voice: dict[str, str], match: str
) -> None:
    with pytest.raises(api_exceptions.InvalidArgument, match=match):
        await client.synthesize_speech(
            input=tts.SynthesisInput(text="hi"),
            voice=tts.VoiceSelectionParams(
                **{"language_code": VOICE.language_code, "name": VOICE.name, **voice}
            ),
            audio_config=tts.AudioConfig(audio_encoding=Encoding.PCM, **audio),
            timeout=CALL_TIMEOUT,
        )


async def test_what_the_bot_sends_is_accepted(client: Any) -> None:
    # Bounds included; the telephony profile at 8 kHz with Chirp 3 HD is accepted on paper only
    # (unverified: settle it with one real request).
    await client.synthesize_speech(
        input=tts.SynthesisInput(text="x" * 5000),
        voice=tts.VoiceSelectionParams(language_code="en-us", name=VOICE.name),  # case does not matter
        audio_config=tts.AudioConfig(
            audio_encoding=Encoding.MULAW,
            sample_rate_hertz=8000,
            speaking_rate=2.0,
            pitch=-20,
            volume_gain_db=-96,
            effects_profile_id=["telephony-class-application"],
        ),
        timeout=CALL_TIMEOUT,
    )


async def test_input_over_5000_bytes_is_invalid_argument(client: Any) -> None:
    # 2,500 two-byte characters are 5,000 bytes; one more is over the limit, counted in bytes.
    assert await synthesize(client, "é" * 2500, Encoding.PCM)
    with pytest.raises(api_exceptions.InvalidArgument, match="5001 bytes"):
        await synthesize(client, "é" * 2500 + "x", Encoding.PCM)


async def test_markup_is_for_chirp3_hd_voices_only(client: Any) -> None:
    async def markup(voice_name: str) -> Any:
        return await client.synthesize_speech(
            input=tts.SynthesisInput(markup="Hello [pause] there"),
            voice=tts.VoiceSelectionParams(language_code="en-US", name=voice_name),
            audio_config=tts.AudioConfig(audio_encoding=Encoding.PCM),
            timeout=CALL_TIMEOUT,
        )

    assert (await markup(VOICE.name)).audio_content
    with pytest.raises(api_exceptions.InvalidArgument, match="markup"):
        await markup("en-US-Neural2-C")


async def refused_stream(client: Any, first: Any, texts: Iterable[str] = ()) -> None:
    """A stream the emulator refuses once it has read what it needs (``first``, then ``texts``); the client
    then writes nothing more. A text written after what the server refuses races its abort: grpc.aio
    reports INTERNAL instead of the server's code (the emulator's rules), seen once on a busy machine."""
    hold = asyncio.Event()
    try:
        await stream_audio(client, first, texts, hold)
    finally:
        hold.set()


async def test_streaming_is_for_chirp3_hd_voices_only(client: Any) -> None:
    neural = tts.VoiceSelectionParams(language_code="en-US", name="en-US-Neural2-C")
    first = tts.StreamingSynthesizeRequest(
        streaming_config=tts.StreamingSynthesizeConfig(
            voice=neural, streaming_audio_config=tts.StreamingAudioConfig(audio_encoding=Encoding.PCM)
        )
    )
    with pytest.raises(api_exceptions.InvalidArgument, match="Chirp 3"):
        await refused_stream(client, first)


async def test_streaming_audio_config_needs_its_encoding(client: Any) -> None:
    with pytest.raises(api_exceptions.InvalidArgument, match="audio_encoding"):
        await refused_stream(client, config_request(0))
    with pytest.raises(api_exceptions.InvalidArgument, match="audio_encoding"):
        await refused_stream(client, config_request(Encoding.MP3))
    no_audio_config = tts.StreamingSynthesizeRequest(
        streaming_config=tts.StreamingSynthesizeConfig(voice=VOICE)
    )
    assert b"".join(await stream_audio(client, no_audio_config, ["Hi."])) == synthetic_speech_pcm16(
        "Hi.", 24000, 20.0
    )  # no audio config at all: PCM at 24 kHz


async def test_streamed_text_over_5000_bytes_is_invalid_argument(client: Any) -> None:
    with pytest.raises(api_exceptions.InvalidArgument, match="5001 bytes"):
        await refused_stream(client, config_request(), ["x" * 5001])


def config_request(encoding: int = Encoding.PCM, rate: int = 0, **options: Any) -> Any:
    audio = tts.StreamingAudioConfig(audio_encoding=encoding, sample_rate_hertz=rate, **options)
    return tts.StreamingSynthesizeRequest(
        streaming_config=tts.StreamingSynthesizeConfig(voice=VOICE, streaming_audio_config=audio)
    )


async def requests_of(
    first: Any, texts: Iterable[str], hold: asyncio.Event | None = None
) -> AsyncIterator[Any]:
    yield first
    for text in texts:
        yield tts.StreamingSynthesizeRequest(input=tts.StreamingSynthesisInput(text=text))
    if hold is not None:
        # grpc.aio race: a write or half-close still in flight when the server aborts turns the status
        # into INTERNAL ("Internal error from Core"). Tests that expect an abort keep the stream open.
        await hold.wait()


async def stream_audio(
    client: Any, first: Any, texts: Iterable[str], hold: asyncio.Event | None = None
) -> list[bytes]:
    stream = await client.streaming_synthesize(requests=requests_of(first, texts, hold), timeout=CALL_TIMEOUT)
    return [response.audio_content async for response in stream]


async def test_streaming_synthesizes_texts_in_order(client: Any, emulator: TtsEmulator) -> None:
    texts = ["Hello there.", "How can I help you today?", "Please hold."]
    pieces = await stream_audio(client, config_request(), texts)
    expected = b"".join(synthetic_speech_pcm16(t, 24000, 20.0) for t in texts)
    assert b"".join(pieces) == expected  # distinct lengths: any reordering would change the bytes
    assert all(0 < len(p) <= 4800 for p in pieces)  # ~100 ms of 24 kHz PCM16
    assert [r["text"] for r in emulator.synth_requests] == texts
    assert {r["kind"] for r in emulator.synth_requests} == {"streaming"}


async def paced_requests(
    first: Any, texts: Iterable[str], gap_s: float, hold: asyncio.Event
) -> AsyncIterator[Any]:
    yield first
    for text in texts:
        await asyncio.sleep(gap_s)
        yield tts.StreamingSynthesizeRequest(input=tts.StreamingSynthesisInput(text=text))
    await hold.wait()


async def test_inputs_sent_within_the_idle_limit_keep_one_stream_going(
    client: Any, emulator: TtsEmulator
) -> None:
    emulator.stream_idle_s = 0.5
    texts = ["One.", "Two, a little longer.", "Three."]
    hold = asyncio.Event()
    hold.set()  # half-close right after the last text
    stream = await client.streaming_synthesize(
        requests=paced_requests(config_request(), texts, 0.25, hold), timeout=CALL_TIMEOUT
    )
    pieces = [response.audio_content async for response in stream]
    assert b"".join(pieces) == b"".join(synthetic_speech_pcm16(t, 24000, 20.0) for t in texts)
    assert emulator.rpcs == {"streaming": 1}


async def test_a_stream_without_input_for_the_idle_limit_is_aborted(
    client: Any, emulator: TtsEmulator
) -> None:
    """The real service: ABORTED "Stream aborted due to long duration elapsed without input sent"."""
    emulator.stream_idle_s = 0.3
    hold = asyncio.Event()
    stream = await client.streaming_synthesize(
        requests=paced_requests(config_request(), ["Hello."], 0.0, hold), timeout=CALL_TIMEOUT
    )
    started = time.monotonic()
    received: list[bytes] = []
    try:
        with pytest.raises(api_exceptions.Aborted, match="without input sent"):
            async for response in stream:
                received.append(response.audio_content)
    finally:
        hold.set()
    assert b"".join(received) == synthetic_speech_pcm16("Hello.", 24000, 20.0)  # its audio came first
    assert time.monotonic() - started >= 0.25


async def test_streaming_mulaw_is_headerless(client: Any) -> None:
    pieces = await stream_audio(client, config_request(Encoding.MULAW, 8000), ["Transferring you now."])
    assert not pieces[0].startswith(b"RIFF")
    assert b"".join(pieces) == encode_g711(
        synthetic_speech_pcm16("Transferring you now.", 8000, 20.0), Encoding.MULAW
    )
    assert all(len(p) <= 800 for p in pieces)


async def test_streaming_first_request_must_be_config(client: Any) -> None:
    first = tts.StreamingSynthesizeRequest(input=tts.StreamingSynthesisInput(text="too early"))
    hold = asyncio.Event()
    try:
        with pytest.raises(api_exceptions.InvalidArgument):
            await stream_audio(client, first, [], hold)
    finally:
        hold.set()


async def test_unavailable_is_not_retried_by_default(client: Any, emulator: TtsEmulator) -> None:
    emulator.faults.append(TtsFault(grpc.StatusCode.UNAVAILABLE))
    with pytest.raises(api_exceptions.ServiceUnavailable):
        await synthesize(client, "Hello", Encoding.PCM)  # default retry
    assert len(emulator.synth_requests) == 1
    assert await synthesize(client, "Hello", Encoding.PCM)  # the fault queue is empty again


async def test_streaming_fault_after_two_responses(client: Any, emulator: TtsEmulator) -> None:
    emulator.faults.append(TtsFault(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota", after_chunks=2))
    received: list[bytes] = []
    hold = asyncio.Event()
    stream = await client.streaming_synthesize(
        requests=requests_of(config_request(), ["A long enough sentence to need several chunks."], hold),
        timeout=CALL_TIMEOUT,
    )
    try:
        with pytest.raises(api_exceptions.ResourceExhausted):
            async for response in stream:
                received.append(response.audio_content)
    finally:
        hold.set()
    assert len(received) == 2


async def test_streaming_truncation_ends_with_ok_after_fewer_responses(
    client: Any, emulator: TtsEmulator
) -> None:
    emulator.faults.append(TtsFault(grpc.StatusCode.OK, after_chunks=2))
    text = "A long enough sentence to need several chunks."
    pieces = await stream_audio(client, config_request(), [text, "And a second one."])
    assert len(pieces) == 2  # no error: the stream simply ended early
    assert b"".join(pieces) == synthetic_speech_pcm16(text, 24000, 20.0)[: 2 * 4800]
    assert [r["text"] for r in emulator.synth_requests] == [text, "And a second one."]
    assert len(await stream_audio(client, config_request(), [text])) > 2  # the fault was used up


async def test_unary_truncation_returns_a_shorter_valid_answer(client: Any, emulator: TtsEmulator) -> None:
    emulator.faults.append(TtsFault(grpc.StatusCode.OK, after_chunks=3))
    text = "A long enough sentence to need several chunks."
    chunks = riff_chunks(await synthesize(client, text, Encoding.MULAW, 8000))
    whole = synthetic_speech_pcm16(text, 8000, 20.0)
    assert chunks[b"data"] == encode_g711(whole[: 2 * 2400], Encoding.MULAW)  # 3 x 100 ms at 8 kHz
    assert struct.unpack("<I", chunks[b"fact"])[0] == 2400


async def test_deadline_is_exceeded_quickly(client: Any, emulator: TtsEmulator) -> None:
    emulator.first_byte_delay_s = 2.0
    started = time.monotonic()
    with pytest.raises(api_exceptions.DeadlineExceeded):
        await synthesize(client, "Hello", Encoding.MULAW, 8000, deadline_s=0.2)
    assert time.monotonic() - started < 1.9  # did not wait for the 2 s delay


async def test_list_voices_is_unimplemented(client: Any) -> None:
    with pytest.raises(api_exceptions.MethodNotImplemented):
        await client.list_voices(timeout=CALL_TIMEOUT)


async def test_restarts_in_one_process() -> None:
    emulator = TtsEmulator(first_byte_delay_s=5.0)  # stop() must not wait for an in-flight delay
    for _ in range(3):
        address = await emulator.start()
        async with grpc.aio.insecure_channel(address) as channel:
            client = tts.TextToSpeechAsyncClient(transport=TextToSpeechGrpcAsyncIOTransport(channel=channel))
            with pytest.raises(api_exceptions.DeadlineExceeded):
                await synthesize(client, "Hi", Encoding.PCM, deadline_s=0.1)
        await emulator.stop()
    assert len(emulator.synth_requests) == 3


def ulaw_to_linear(byte: int) -> int:
    byte = ~byte & 0xFF
    magnitude = (((byte & 0x0F) << 3) + 0x84 << ((byte >> 4) & 7)) - 0x84
    return -magnitude if byte & 0x80 else magnitude


def alaw_to_linear(byte: int) -> int:
    byte ^= 0x55
    segment, mantissa = (byte >> 4) & 7, (byte & 0x0F) << 4
    magnitude = mantissa + 8 if segment == 0 else (mantissa + 0x108) << (segment - 1)
    return magnitude if byte & 0x80 else -magnitude


@given(st.integers(-32768, 32767))
def test_g711_round_trip_is_within_one_step(sample: int) -> None:
    pcm = struct.pack("<h", sample)
    for encoding, decode in ((Encoding.MULAW, ulaw_to_linear), (Encoding.ALAW, alaw_to_linear)):
        decoded = decode(encode_g711(pcm, encoding)[0])
        assert abs(decoded - sample) <= max(16, abs(sample) // 16 + 8) + (1100 if abs(sample) > 32000 else 0)


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=200), st.sampled_from([8000, 16000, 24000]), st.floats(5.0, 120.0))
def test_synthetic_speech_has_the_length_of_the_text_and_is_never_silent(
    text: str, rate: int, ms_per_char: float
) -> None:
    pcm = synthetic_speech_pcm16(text, rate, ms_per_char)
    n = len(pcm) // 2
    assert n % 2 == 0 and abs(n - len(text) * ms_per_char * rate / 1000) <= 1.5
    samples = struct.unpack(f"<{n}h", pcm)
    window = rate // 50  # 20 ms: longer than one period of the 140 Hz voice
    for start in range(0, n - window + 1, window):
        assert max(abs(s) for s in samples[start : start + window]) > 1000


# ---- quotas (emulators/tts_quota.py; https://docs.cloud.google.com/text-to-speech/quotas) -------------


def test_the_default_quota_is_googles() -> None:
    quota = TtsQuota()
    assert (quota.chirp3_per_minute, quota.other_per_minute, quota.concurrent_streams) == (200, 1000, 100)
    # A new emulator enforces them, with its own count (a new project); None serves without limits.
    first, second = TtsEmulator(), TtsEmulator()
    assert first.quota == TtsQuota() and first.quota is not second.quota
    assert TtsEmulator(quota=None).quota is None


async def test_requests_per_minute_per_project_and_voice_family(client: Any, emulator: TtsEmulator) -> None:
    clock = FakeClock()
    emulator.quota = TtsQuota(chirp3_per_minute=3, other_per_minute=2, clock=clock)
    for _ in range(3):
        await synthesize(client, "hi", Encoding.PCM)
    with pytest.raises(api_exceptions.ResourceExhausted) as refused:
        await synthesize(client, "hi", Encoding.PCM)
    assert "Quota exceeded" in str(refused.value) and "Chirp3RequestsPerMinutePerProject" in str(
        refused.value
    )
    # Another voice family has its own limit; another project (the quota project header) its own count.
    neural = tts.VoiceSelectionParams(language_code="en-US", name="en-US-Neural2-C")
    config = tts.AudioConfig(audio_encoding=Encoding.PCM)
    for _ in range(2):
        await client.synthesize_speech(input=tts.SynthesisInput(text="hi"), voice=neural, audio_config=config)
    with pytest.raises(api_exceptions.ResourceExhausted, match="RequestsPerMinutePerProject"):
        await client.synthesize_speech(input=tts.SynthesisInput(text="hi"), voice=neural, audio_config=config)
    other_project = [("x-goog-user-project", "second-project")]
    await client.synthesize_speech(
        input=tts.SynthesisInput(text="hi"), voice=VOICE, audio_config=config, metadata=other_project
    )
    # The window slides: 60 s after the first three, the project may ask again; refusals were not counted.
    clock.now += 59.9
    with pytest.raises(api_exceptions.ResourceExhausted):
        await synthesize(client, "hi", Encoding.PCM)
    clock.now += 0.1
    for _ in range(3):
        await synthesize(client, "hi", Encoding.PCM)
    assert emulator.quota.refused == 3
    assert emulator.quota.accepted == {"chirp3": 7, "other": 2}


async def test_a_streaming_session_is_one_request_whatever_it_says(
    client: Any, emulator: TtsEmulator
) -> None:
    emulator.quota = TtsQuota(chirp3_per_minute=2, clock=FakeClock())
    await stream_audio(client, config_request(), ["One.", "Two.", "Three."])
    await stream_audio(client, config_request(), ["Four."])
    with pytest.raises(api_exceptions.ResourceExhausted, match="Chirp3RequestsPerMinutePerProject"):
        await refused_stream(client, config_request())
    assert emulator.quota.open_streams() == 0


async def test_concurrent_streaming_sessions_per_project(client: Any, emulator: TtsEmulator) -> None:
    emulator.quota = TtsQuota(concurrent_streams=2, clock=FakeClock())
    holds = [asyncio.Event(), asyncio.Event()]
    streams = [
        await client.streaming_synthesize(
            requests=requests_of(config_request(), ["Hi."], hold), timeout=CALL_TIMEOUT
        )
        for hold in holds
    ]
    for stream in streams:  # both sessions are open: each has answered its first text
        assert (await anext(aiter(stream))).audio_content
    assert emulator.quota.open_streams() == 2
    with pytest.raises(api_exceptions.ResourceExhausted, match="ConcurrentStreamingSessionsPerProject"):
        await refused_stream(client, config_request())
    holds[0].set()
    async for _ in streams[0]:  # the first session ends
        pass
    await asyncio.wait_for(_until_open_streams(emulator, 1), CALL_TIMEOUT)
    assert await stream_audio(client, config_request(), ["Again."])  # a session is free again
    holds[1].set()
    await asyncio.wait_for(_until_open_streams(emulator, 0), CALL_TIMEOUT)


async def _until_open_streams(emulator: TtsEmulator, count: int) -> None:
    assert emulator.quota is not None
    while emulator.quota.open_streams() != count:  # noqa: ASYNC110 (no event to wait on)
        await asyncio.sleep(0.01)
