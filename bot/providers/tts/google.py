"""Text-to-speech through Google Cloud Text-to-Speech (``TextToSpeechAsyncClient``).

Rules:
- Output is always headerless 8 kHz mu-law, what Twilio plays. We ask Google for 8 kHz ``MULAW``
  (its reply carries a WAV header, stripped by walking the RIFF chunks) or ``PCM`` (headerless;
  encoded to mu-law here).
- ``streaming=True`` with a Chirp 3 HD voice: ``open_session`` gives one ``streaming_synthesize`` call
  per answer (``google_stream.GoogleSession``: PCM at 24 kHz, phrases pushed as they come), and
  ``synthesize`` (fixed lines) is a session of one phrase. Other voices cannot stream: ``open_session``
  returns None and ``synthesize`` makes unary requests.
- The bytes-per-character rate that places phrase boundaries in a session's audio is learned per voice
  from the sessions that finished, fixed lines included (``PRIOR_MS_PER_CHAR`` until the first one,
  then a moving average; an outlier, e.g. a cut stream, is ignored).
- The endpoint ``host:port`` on a loopback host gets a plaintext ``grpc.aio`` channel (local
  emulators); anything else uses Google's default credentials over TLS.
- The generated client sets no retry and no timeout; we set them: a per-phrase deadline, because a caller
  is waiting, a short retry on UNAVAILABLE (1 s in all), and a shorter one on RESOURCE_EXHAUSTED, Google's
  answer beyond a quota (Chirp 3 HD: 200 requests per minute per project, 100 concurrent streams;
  https://docs.cloud.google.com/text-to-speech/quotas). A per-minute quota seldom frees within a second
  and the caller hears every moment of waiting, so that retry lasts ``QUOTA_RETRY_S``: what still fails
  is kind ``quota``, the cue for a fallback voice (``bot.providers.tts.fallback``). A per-answer stream that
  is refused before any audio is retried the same way (``bot.providers.tts.google_stream``).
- A unary request carries at most 5,000 bytes of text (Google's limit): a longer phrase goes in pieces cut
  at spaces, its audio joined.
- SDK and gRPC errors become ``ProviderError`` (``quota``, ``unavailable``, ``timeout``, ``bad_request``,
  ``error``); nothing here logs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import grpc
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as gauth_exceptions
from google.cloud import texttospeech_v1 as tts
from google.cloud.texttospeech_v1.services.text_to_speech.transports import TextToSpeechGrpcAsyncIOTransport

from bot.providers.tts.google_stream import QUOTA_RETRY_S, STREAM_RATE, GoogleSession, is_streaming_voice
from bot.providers.tts.protocol import TextToSpeech, VoiceOptions
from media.codec import SAMPLE_RATE, pcm16_to_ulaw
from media.errors import ProviderError
from media.splitter import PhraseSplitter
from media.wav import WavError, strip_wav_header

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_INPUT_BYTES = 5000  # per request: cloud_tts.proto SynthesisInput, and the quotas page's content limit
PRIOR_MS_PER_CHAR = 65.0  # about 15 characters a second at speaking rate 1, until sessions have finished
RATE_WEIGHT = 0.3  # of a finished session in the learned rate
PLAUSIBLE_MS_PER_CHAR = (20.0, 250.0)  # the first rate learned; later ones within 2x of the learned one


@dataclass(frozen=True)
class GoogleVoice:
    language_code: str = "en-US"
    name: str = "en-US-Chirp3-HD-Aoede"
    speaking_rate: float = 1.0
    encoding: Literal["mulaw", "pcm"] = "mulaw"
    streaming: bool = False
    telephony_profile: bool = True


def is_loopback_endpoint(endpoint: str) -> bool:
    """True for ``127.0.0.1:50051``, ``localhost:50051`` or ``[::1]:50051``."""
    return urlsplit("//" + endpoint).hostname in LOOPBACK_HOSTS


def make_client(endpoint: str | None) -> Any:
    """A ``TextToSpeechAsyncClient`` for ``endpoint`` (``host:port``) or Google's default endpoint.

    Raises ``ProviderError(kind="no_credentials")`` when a real endpoint has no Google credentials.
    """
    if endpoint and is_loopback_endpoint(endpoint):
        channel = grpc.aio.insecure_channel(endpoint)
        return tts.TextToSpeechAsyncClient(transport=TextToSpeechGrpcAsyncIOTransport(channel=channel))
    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    try:
        return tts.TextToSpeechAsyncClient(client_options=options)
    except gauth_exceptions.DefaultCredentialsError as exc:
        raise ProviderError(
            "google-tts", "no_credentials", "no Google default credentials (GOOGLE_APPLICATION_CREDENTIALS)"
        ) from exc


def split_input(text: str, limit: int = MAX_INPUT_BYTES) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes, cut at spaces where there are any."""
    pieces: list[str] = []
    while len(text.encode()) > limit:
        cut = len(text.encode()[:limit].decode(errors="ignore"))  # the most whole characters that fit
        space = text.rfind(" ", 0, cut + 1)
        end = space if space > 0 else cut
        pieces.append(text[:end])
        text = text[end:].lstrip(" ")
    return [*pieces, text]


def _error(exc: BaseException) -> ProviderError:
    if isinstance(exc, gexc.RetryError) and exc.cause is not None:
        exc = exc.cause  # the retry budget ran out: report what kept failing
    if isinstance(exc, gexc.ResourceExhausted):
        return ProviderError("google-tts", "quota")
    if isinstance(exc, gexc.ServiceUnavailable):
        return ProviderError("google-tts", "unavailable")
    if isinstance(exc, gexc.InvalidArgument):  # a rate or voice the service refuses (its message may
        return ProviderError("google-tts", "bad_request")  # quote the input, so it is not kept)
    if isinstance(exc, gexc.DeadlineExceeded):
        return ProviderError("google-tts", "timeout")
    if isinstance(exc, gexc.GoogleAPICallError):
        return ProviderError("google-tts", "error", type(exc).__name__)
    if isinstance(exc, grpc.aio.AioRpcError):
        if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return ProviderError("google-tts", "quota")
        return ProviderError("google-tts", "error", str(exc.code()))
    return ProviderError("google-tts", "error", type(exc).__name__)


class GoogleTextToSpeech(TextToSpeech):
    def __init__(self, client: Any, voice: GoogleVoice = GoogleVoice(), *, timeout_s: float = 5.0) -> None:
        self._client = client
        self.voice = voice
        self._timeout_s = timeout_s
        self._retry = gretry.AsyncRetry(
            predicate=gretry.if_exception_type(gexc.ServiceUnavailable),
            initial=0.05,
            maximum=0.2,
            timeout=1.0,
        )
        # Around the call (each attempt gets its own deadline and UNAVAILABLE retry): the SDK takes one.
        self._quota_retry = gretry.AsyncRetry(
            predicate=gretry.if_exception_type(gexc.ResourceExhausted),
            initial=0.05,
            maximum=0.2,
            multiplier=2.0,
            timeout=QUOTA_RETRY_S,
        )
        self._ms_per_char: dict[tuple[str, str], float] = {}  # learned, per (language, voice name)

    @classmethod
    def for_endpoint(cls, endpoint: str | None, voice: GoogleVoice = GoogleVoice()) -> GoogleTextToSpeech:
        return cls(make_client(endpoint), voice)

    def _encoding(self) -> Any:
        return tts.AudioEncoding.MULAW if self.voice.encoding == "mulaw" else tts.AudioEncoding.PCM

    def _voice_params(self, voice: VoiceOptions) -> Any:
        return tts.VoiceSelectionParams(
            language_code=voice.language or self.voice.language_code, name=voice.name or self.voice.name
        )

    def _rate(self, voice: VoiceOptions) -> float:
        return self.voice.speaking_rate * voice.speaking_rate

    async def synthesize(self, text: str, voice: VoiceOptions | None = None) -> AsyncIterator[bytes]:
        voice = voice or VoiceOptions()
        try:
            session = self.open_session(voice)
            if session is not None:
                audio = session.push(text)
                session.end()
                try:
                    async for chunk in audio:
                        yield chunk
                finally:
                    session.cancel()  # closed early (barge-in): the call is released now
            else:
                yield await self._unary(text, voice)
        except (gexc.GoogleAPICallError, grpc.RpcError, gexc.RetryError) as exc:
            raise _error(exc) from exc

    async def _unary(self, text: str, voice: VoiceOptions) -> bytes:
        # Google refuses more than 5,000 bytes of input per request (cloud_tts.proto SynthesisInput); a
        # longer phrase (an answer with no punctuation) is asked for in pieces rather than not said.
        pieces = split_input(text)
        if len(pieces) == 1:
            return await self._unary_one(text, voice)
        return b"".join([await self._unary_one(piece, voice) for piece in pieces])

    async def _unary_one(self, text: str, voice: VoiceOptions) -> bytes:
        config = tts.AudioConfig(
            audio_encoding=self._encoding(),
            sample_rate_hertz=SAMPLE_RATE,
            speaking_rate=self._rate(voice),
            effects_profile_id=["telephony-class-application"] if self.voice.telephony_profile else [],
        )
        resp = await self._quota_retry(self._client.synthesize_speech)(
            input=tts.SynthesisInput(text=text),
            voice=self._voice_params(voice),
            audio_config=config,
            retry=self._retry,
            timeout=self._timeout_s,
        )
        audio: bytes = resp.audio_content
        if self.voice.encoding == "pcm":
            return pcm16_to_ulaw(audio)
        try:
            return strip_wav_header(audio)
        except WavError as exc:
            raise ProviderError("google-tts", "bad_audio", str(exc)) from exc

    def open_session(self, voice: VoiceOptions | None = None) -> GoogleSession | None:
        """One streaming call for an answer's phrases, or None if streaming is off or the voice cannot."""
        voice = voice or VoiceOptions()
        params = self._voice_params(voice)
        if not self.voice.streaming or not is_streaming_voice(params.name):
            return None
        rate = self._rate(voice)
        config = tts.StreamingSynthesizeConfig(
            voice=params,
            streaming_audio_config=tts.StreamingAudioConfig(
                audio_encoding=tts.AudioEncoding.PCM, sample_rate_hertz=STREAM_RATE, speaking_rate=rate
            ),
        )
        key = (params.language_code, params.name)
        ms_per_char = self._ms_per_char.get(key, PRIOR_MS_PER_CHAR)

        def learn(ulaw_bytes: int, chars: int) -> None:
            observed = ulaw_bytes * 1000 / SAMPLE_RATE * rate / chars  # at speaking rate 1
            known = self._ms_per_char.get(key)
            if known is None and PLAUSIBLE_MS_PER_CHAR[0] < observed < PLAUSIBLE_MS_PER_CHAR[1]:
                self._ms_per_char[key] = observed
            elif known is not None and 0.5 < observed / known < 2.0:
                self._ms_per_char[key] = known + RATE_WEIGHT * (observed - known)

        splitter = PhraseSplitter(ms_per_char / 1000 * SAMPLE_RATE / rate)
        return GoogleSession(
            self._client, config, splitter, _error, timeout_s=self._timeout_s, on_finished=learn
        )

    async def aclose(self) -> None:
        transport = getattr(self._client, "transport", None)
        if transport is not None:
            await transport.close()
