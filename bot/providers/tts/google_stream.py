"""One Google ``StreamingSynthesize`` call per answer: phrases pushed as they come, audio back per phrase.

Rules:
- The first request carries only ``streaming_config``, every later one only ``input`` with one phrase's
  text (``StreamingSynthesizeRequest`` docstring, google-cloud-texttospeech 2.38.0
  ``texttospeech_v1/types/cloud_tts.py``). Streaming works with Chirp 3 HD voices only
  (https://cloud.google.com/text-to-speech/docs/create-audio-text-streaming); ``is_streaming_voice``.
- Audio is asked as ``PCM`` at 24000 Hz: PCM is documented headerless (``AudioEncoding.PCM``), and
  "headerless LINEAR16 audio with a sample rate of 24000" is what ``StreamingSynthesizeResponse``
  documents. Whether streamed MULAW carries a WAV header, and whether Chirp 3 HD streams at 8 kHz, are
  both undocumented, so neither is relied on: one ``Resampler`` per call brings the stream to 8 kHz
  (no clicks between phrases) and it is encoded to mu-law here, as the pipecat and livekit Google
  plugins also stream PCM.
- The responses carry no boundary between inputs, so ``PhraseSplitter`` estimates where each phrase's
  audio ends (its rules give the error bound). The bytes-per-character rate comes from the caller and is
  learned from finished calls (``on_finished``).
- The real service aborts a call that gets no input for 5 s ("Stream aborted due to long duration
  elapsed without input sent. Input must be sent continuously, at least every 5s seconds.",
  ABORTED: livekit/agents issue 2406; voipbin/monorepo PR 551). So the input ends (half-close) after
  ``idle_s`` (4 s) without a phrase; the service then finishes the audio and ends the call with OK.
  ``accepting`` turns false and the owner opens a new session for any later phrase.
- A call that fails UNAVAILABLE or INTERNAL before any audio arrived is made again with every phrase
  pushed so far, within ``RETRY_BUDGET_S`` (the unary path's ``AsyncRetry`` budget; the SDK sets no
  retry for either). INTERNAL too: a server abort that races the client's writes reaches grpc.aio as
  INTERNAL ("Internal error from Core") whatever the server's code; with no audio out, it is safe.
  RESOURCE_EXHAUSTED (a quota: Chirp 3 HD 200 requests per minute and 100 concurrent streams per
  project, https://docs.cloud.google.com/text-to-speech/quotas) likewise, but only for
  ``QUOTA_RETRY_S``: a per-minute quota seldom frees within a second, and what still fails is kind
  ``quota``, the cue for a fallback voice. Once the service has refused for quota, a retry failing with
  that client-side INTERNAL is taken for the same refusal (grpc.aio overwrites the server's status when
  a write fails after it: grpc/grpc issue 36066, PR 43486), so the fallback still gets its cue. Any
  other try that ends so is taken for the service's last code (UNAVAILABLE, say); when every try ends
  so, the service refused the session for a reason we cannot know: kind ``refused`` (no audio went
  out, so another voice may speak the phrases whole).
- A call that makes no progress for ``timeout_s`` (no response since the last phrase, response or end
  of input) fails with ``ProviderError(kind="timeout")``; any other failure becomes a ``ProviderError``
  for every phrase not yet complete. ``cancel()`` (barge-in, hang-up) cancels the gRPC call at once.
- Nothing here logs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.api_core import exceptions as gexc
from google.cloud import texttospeech_v1 as tts

from media.codec import SAMPLE_RATE, Resampler, pcm16_to_ulaw
from media.errors import ProviderError
from media.splitter import PhraseSplitter

STREAM_RATE = 24000  # what StreamingSynthesizeResponse documents (headerless LINEAR16 at 24000)
IDLE_S = 4.0  # under the service's 5 s without input
SESSION_MAX_S = 300.0  # the gRPC deadline of one call: no answer's text takes minutes to arrive
RETRY_BUDGET_S = 1.0  # failed before any audio: tried again (back-off 0.05 s doubling to 0.2 s)
# How long RESOURCE_EXHAUSTED is retried, here and for unary requests (google.py): a next phrase is
# synthesized while the one before plays, so this much seldom reaches the caller's ear.
QUOTA_RETRY_S = 0.3
_CHIRP3_HD = re.compile(r"-Chirp3-HD-", re.IGNORECASE)

_Item = bytes | BaseException | None


def is_streaming_voice(name: str) -> bool:
    """Chirp 3 HD voice names (``en-US-Chirp3-HD-Aoede``): the only voices ``StreamingSynthesize`` serves."""
    return bool(_CHIRP3_HD.search(name))


class GoogleSession:
    """See the module docstring. Built by ``GoogleTextToSpeech.open_session``; starts at once."""

    def __init__(
        self,
        client: Any,
        config: Any,  # tts.StreamingSynthesizeConfig
        splitter: PhraseSplitter,
        error: Callable[[BaseException], ProviderError],
        *,
        timeout_s: float,
        idle_s: float = IDLE_S,
        on_finished: Callable[[int, int], None] | None = None,
    ) -> None:
        self._client = client
        self._config = config
        self._splitter = splitter
        self._error = error
        self._timeout_s = timeout_s
        self._idle_s = idle_s
        self._on_finished = on_finished  # (mu-law bytes, characters) of a call that ended OK
        self._pushed: list[str] = []  # every phrase, so a retried call can send them all again
        self._input_ended = False
        self._more = asyncio.Event()  # a phrase was pushed or the input ended
        self._outputs: list[asyncio.Queue[_Item]] = []
        self._closed = 0  # outputs before this index have been ended
        self._loop = asyncio.get_running_loop()
        self._idle: asyncio.TimerHandle | None = self._loop.call_later(idle_s, self.end)
        self._deadline: asyncio.Timeout | None = None
        self.accepting = True
        self._stream: Any = None  # the gRPC call in progress
        self._task = asyncio.create_task(self._run(), name="tts-session")

    def push(self, text: str) -> AsyncIterator[bytes]:
        """Sends ``text`` after the phrases pushed before; iterate the result for its audio."""
        if not self.accepting:
            raise RuntimeError("this session takes no more text")
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._outputs.append(queue)
        self._splitter.push(text)
        self._pushed.append(text)
        self._more.set()
        if self._idle is not None:
            self._idle.cancel()
        self._idle = self._loop.call_later(self._idle_s, self.end)
        self._touch()
        self._close_complete()
        return _drain(queue)

    def end(self) -> None:
        """No more text: the audio of what was pushed still comes, then the call ends."""
        if self.accepting:
            self.accepting = False
            if self._idle is not None:
                self._idle.cancel()
            self._input_ended = True
            self._more.set()
            self._touch()

    def cancel(self) -> None:
        """Barge-in or hang-up: the gRPC call is cancelled now; unfinished phrases end without error."""
        self.accepting = False
        if self._idle is not None:
            self._idle.cancel()
        self._task.cancel()
        self._end_outputs(None)

    async def _requests(self) -> AsyncIterator[Any]:
        yield tts.StreamingSynthesizeRequest(streaming_config=self._config)
        sent = 0
        while True:
            self._more.clear()  # before looking: a push while a request is being sent sets it again
            while sent < len(self._pushed):
                yield tts.StreamingSynthesizeRequest(
                    input=tts.StreamingSynthesisInput(text=self._pushed[sent])
                )
                sent += 1
            if self._input_ended:
                return
            await self._more.wait()

    def _touch(self) -> None:
        if self._deadline is not None:
            self._deadline.reschedule(self._loop.time() + self._timeout_s)

    async def _run(self) -> None:
        try:
            async with asyncio.timeout(self._timeout_s) as deadline:
                self._deadline = deadline
                started = self._loop.time()
                give_up_at, quota_give_up_at = started + RETRY_BUDGET_S, started + QUOTA_RETRY_S
                pause = 0.05
                refused: gexc.ResourceExhausted | None = None  # the service's last quota refusal
                said: gexc.GoogleAPICallError | None = None  # the service's last other refusal
                while True:
                    try:
                        await self._call(Resampler(STREAM_RATE, SAMPLE_RATE))
                        break
                    except (gexc.ServiceUnavailable, gexc.InternalServerError) as exc:
                        if refused is not None and _masked(exc):  # the refusal again, its code lost
                            if self._splitter.received or self._loop.time() + pause > quota_give_up_at:
                                raise refused from exc
                        elif self._splitter.received or self._loop.time() + pause > give_up_at:
                            if _masked(exc) and not self._splitter.received:
                                raise (said or _ReasonLost()) from exc  # its code lost: the last known
                            raise
                        elif not _masked(exc):
                            said = exc
                    except gexc.ResourceExhausted as exc:
                        refused = exc
                        if self._splitter.received or self._loop.time() + pause > quota_give_up_at:
                            raise
                    await asyncio.sleep(pause)
                    pause = min(2 * pause, 0.2)
        except TimeoutError:
            self._end_outputs(ProviderError("google-tts", "timeout"))
        except _ReasonLost:
            self._end_outputs(ProviderError("google-tts", "refused"))
        except (gexc.GoogleAPICallError, grpc.RpcError, gexc.RetryError) as exc:
            self._end_outputs(self._error(exc))
        except asyncio.CancelledError:
            if self._stream is not None:
                self._stream.cancel()
            raise
        except Exception as exc:  # a provider bug must not leave a phrase waiting forever
            self._end_outputs(ProviderError("google-tts", "error", type(exc).__name__))
        else:
            self.accepting = False
            self._end_outputs(None)
            if self._on_finished is not None and self._splitter.received:
                self._on_finished(self._splitter.received, self._splitter.chars)
        finally:
            self._deadline = None  # exited: it can no longer be moved
            if self._idle is not None:
                self._idle.cancel()

    async def _call(self, resampler: Resampler) -> None:
        """One gRPC call: every phrase pushed so far, then the rest as they come."""
        self._stream = await self._client.streaming_synthesize(
            requests=self._requests(), timeout=SESSION_MAX_S
        )
        async for response in self._stream:
            self._touch()
            audio = pcm16_to_ulaw(resampler.convert(response.audio_content))
            if audio and self._outputs:
                for index, piece in self._splitter.feed(audio):
                    self._outputs[index].put_nowait(piece)
                self._close_complete()

    def _close_complete(self) -> None:
        """Phrases the splitter has moved past are complete: their iterators end."""
        while self._closed < min(self._splitter.current, len(self._outputs)):
            self._outputs[self._closed].put_nowait(None)
            self._closed += 1

    def _end_outputs(self, item: ProviderError | None) -> None:
        self.accepting = False
        for queue in self._outputs[self._closed :]:
            queue.put_nowait(item)
        self._closed = len(self._outputs)


class _ReasonLost(Exception):
    """Every try refused before any audio, each time as grpc.aio's own INTERNAL: the reason is lost."""


def _masked(exc: BaseException) -> bool:
    """grpc.aio's own INTERNAL for a write that failed after the call ended: the server's code is lost."""
    return isinstance(exc, gexc.InternalServerError) and "Internal error from Core" in str(exc)


async def _drain(queue: asyncio.Queue[_Item]) -> AsyncIterator[bytes]:
    while (item := await queue.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item
