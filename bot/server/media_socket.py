"""``MediaSocket``: one Media Streams WebSocket's input and output, each bounded in time.

Rules:
- ``frames()`` yields the text and binary frames until the socket closes. A close frame from the peer,
  or our own close, ends it normally. Anything else is a failure: an aiohttp ``ERROR`` (a frame past
  the size limit, a protocol violation, a reset connection), the connection ending without a close
  frame (Twilio always sends one), or no frame for ``receive_timeout_s`` (``MEDIA_RECEIVE_TIMEOUT_S``:
  Twilio sends a media frame every 20 ms for the whole call, so a silent socket has lost its peer).
- Failures are reported once, through ``on_failure(reason, close_code)``: ``message_too_big``,
  ``protocol_error``, ``connection_lost``, ``receive_timeout`` or ``send_timeout``.
- Cheap per frame (hundreds of calls x 50 frames/s): the receive limit is one watchdog timer per socket
  that checks the time of the last frame, not a timer per receive; a send goes straight to aiohttp while
  the transport is far below its high-water mark (it cannot pause, so nothing waits), and only a send
  into a filling buffer takes the guarded path below.
- The guarded ``send()`` is shielded: cancelling a sender (a barge-in, the call's teardown) must not
  cancel aiohttp's drain waiter, which every send and ``close()`` of the socket share (aiohttp issue
  #2934): ``close()`` would then raise CancelledError at once. A send still waiting after
  ``send_timeout_s`` aborts the connection and raises ``ConnectionResetError``, as a dead socket does.
- ``close()`` never hangs and never raises a cancellation its task was not asked for: past
  ``CLOSE_TIMEOUT_S``, or on such a stray CancelledError, the connection is aborted instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

log = structlog.get_logger("bot.server.app")

# The TCP buffers between us and Twilio hold minutes of 8 kHz audio, and Twilio reads frames as they
# come: a send still waiting after 10 s means the peer stopped reading. Its caller would hear nothing
# for that long anyway, so the call is over; waiting longer only keeps a dead call alive.
SEND_TIMEOUT_S = 10.0
# A message is at most a few KiB (100 ms of audio is ~1.1 KiB of base64 in JSON): with this much room
# below the high-water mark, a send cannot make the transport pause.
FAST_SEND_MARGIN = 16 * 1024
# Closing is a courtesy once the call is over: a peer that has not taken our close frame and answered
# it by then is gone.
CLOSE_TIMEOUT_S = 5.0


def _stray_cancellation() -> bool:
    """Inside ``except CancelledError``: True if nobody cancelled this task (a shared future was)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() == 0


def _failure_of(error: object) -> tuple[str, int | None]:
    """The reason and close code of an aiohttp ``ERROR`` message's exception."""
    code = getattr(error, "code", None)  # aiohttp's WebSocketError carries the close code it sent
    if not isinstance(code, int):
        return "connection_lost", WSCloseCode.ABNORMAL_CLOSURE
    if code == WSCloseCode.MESSAGE_TOO_BIG:
        return "message_too_big", code
    return "protocol_error", code


class MediaSocket:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        *,
        receive_timeout_s: float,
        send_timeout_s: float = SEND_TIMEOUT_S,
    ) -> None:
        self.ws = ws
        self._transport = transport
        self._receive_timeout_s = receive_timeout_s
        self._send_timeout_s = send_timeout_s
        self.on_failure: Callable[[str, int | None], None] | None = None
        self.failure: str | None = None
        limits = transport.get_write_buffer_limits() if transport is not None else (0, 0)
        # Room left for one more message before the transport could pause writing.
        self._fast_send_below = max(0, limits[1] - FAST_SEND_MARGIN)
        self._last_frame_at = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._timed_out = False

    def _fail(self, reason: str, close_code: int | None) -> None:
        if self.failure is not None:
            return
        self.failure = reason
        if self.on_failure is not None:
            self.on_failure(reason, close_code)
        else:
            log.warning("socket_error", reason=reason, close_code=close_code)

    def abort(self) -> None:
        """Drop the connection now (no close handshake); waiting sends and receives then end."""
        if self._transport is not None:
            self._transport.abort()

    def _check_silence(self) -> None:
        """The watchdog: fires every ``receive_timeout_s`` / 4; aborts the socket once it has been silent."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_frame_at >= self._receive_timeout_s:
            self._timed_out = True
            self.abort()  # the pending receive then ends (CLOSED or ERROR) and frames() reports the timeout
            return
        self._watchdog = loop.call_later(self._receive_timeout_s / 4, self._check_silence)

    async def frames(self) -> AsyncGenerator[str | bytes, None]:
        loop = asyncio.get_running_loop()
        self._last_frame_at = loop.time()
        self._watchdog = loop.call_later(self._receive_timeout_s / 4, self._check_silence)
        try:
            async for frame in self._receive_until_closed(loop):
                yield frame
        finally:
            self._watchdog.cancel()

    async def _receive_until_closed(self, loop: asyncio.AbstractEventLoop) -> AsyncIterator[str | bytes]:
        while True:
            closed_by_us = self.ws.closed
            msg = await self.ws.receive()
            if self._timed_out:
                self._fail("receive_timeout", None)
                return
            self._last_frame_at = loop.time()
            if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
                yield msg.data
            elif msg.type is WSMsgType.ERROR:
                error = msg.data if isinstance(msg.data, BaseException) else self.ws.exception()
                # ws.close_code may read 1006 (abnormal) by now: the code aiohttp sent is the error's own.
                self._fail(*_failure_of(error))
                return
            else:
                if msg.type is WSMsgType.CLOSED and not closed_by_us:
                    # The connection ended with no close frame (aiohttp reads EOF as CLOSED): RFC 6455's 1006.
                    self._fail("connection_lost", WSCloseCode.ABNORMAL_CLOSURE)
                return  # CLOSE: the peer closed; CLOSING or CLOSED: our side did

    async def send(self, text: str) -> None:
        transport = self._transport
        if (
            transport is not None
            and not transport.is_closing()
            and transport.get_write_buffer_size() + len(text) < self._fast_send_below
        ):
            await self.ws.send_str(text)  # cannot pause the transport: nothing to wait for or cancel
            return
        sending = asyncio.ensure_future(self.ws.send_str(text))
        try:
            async with asyncio.timeout(self._send_timeout_s):
                await asyncio.shield(sending)
        except TimeoutError:
            self._fail("send_timeout", None)
            self.abort()  # the shielded send then ends too (connection lost)
            raise ConnectionResetError("the peer took nothing for too long") from None
        except asyncio.CancelledError:
            if not _stray_cancellation():
                raise
            # Our own receive or close was cancelled while waiting on the same drain: the socket is done.
            self.abort()
            raise ConnectionResetError("the socket's drain was cancelled") from None

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"") -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.ws.close(code=code, message=message)
        except TimeoutError:
            self.abort()
        except asyncio.CancelledError:
            self.abort()
            if not _stray_cancellation():
                raise
