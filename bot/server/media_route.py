"""``GET /media``: one Media Streams WebSocket, admitted by its bound ``start`` and handed to a ``Call``
through a ``MediaSocket``. Its rules (admission, draining) are the application's (``bot.server.app``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import WSCloseCode, web

from bot.call.call import Call
from bot.server.media_socket import MediaSocket
from bot.server.state import (
    AWAITING_START,
    CALL_OBSERVERS,
    CALLS,
    CHECKER,
    DEPS,
    ENDED,
    NO_CALLS,
    SETTINGS,
    SOCKETS,
)
from bot.server.stream_gate import Admitted, admit
from bot.server.twilio.webhook import SIGNATURE_HEADER, public_ws_url
from bot.server.webhooks import forbidden

# Twilio frames are ~300 bytes. Frames up to MAX_FRAME_CHARS are parsed (bigger ones are counted as
# junk and ignored); past MAX_SOCKET_MESSAGE aiohttp closes the socket (1009): a socket_error ending.
MAX_FRAME_CHARS = 64 * 1024
MAX_SOCKET_MESSAGE = 1024 * 1024
log = structlog.get_logger("bot.server.app")  # the application's lines, whichever module writes them
# Why a call ended that says the stream was not lost: the bot ended it (see ``Telephony.ending``).
NOT_ON_PURPOSE = frozenset({None, "socket_error"})


async def _admit(
    request: web.Request, socket: MediaSocket, frames: AsyncIterator[str | bytes]
) -> Admitted | None:
    """The stream's first frames if its ``start`` is bound to its webhook; else it is refused and closed.

    The upgrade's signature is one value per host, so only a bound ``start`` may make a call."""
    settings = request.app[SETTINGS]
    admitted = await admit(
        frames,
        settings.twilio_auth_token.get_secret_value(),
        account=settings.twilio_account_sid,
        max_frame_chars=MAX_FRAME_CHARS,
        timeout_s=settings.start_timeout_s,
    )
    if isinstance(admitted, Admitted):
        return admitted
    log.warning("stream_refused", **admitted.log_fields())
    metrics = request.app[DEPS].metrics
    if metrics is not None:
        metrics.observe("stream_refused", {"reason": admitted.reason.value})
    await socket.close(code=WSCloseCode.POLICY_VIOLATION, message=b"stream not bound to its call")
    return None


async def media(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    url = public_ws_url(request, settings.public_base_url)
    if not request.app[CHECKER].valid(url, {}, request.headers.get(SIGNATURE_HEADER)):
        return forbidden(request, "websocket_signature_rejected")
    awaiting = request.app[AWAITING_START]
    if awaiting[0] >= settings.max_pending_streams:
        # The upgrade's signature is one value per host, replayable: without this, anyone who saw one
        # could hold any number of sockets for START_TIMEOUT_S each. Twilio's start comes in milliseconds.
        log.warning("stream_refused_over_cap", awaiting_start=awaiting[0])
        return web.Response(status=503, text="busy", headers={"Retry-After": "1"})
    ws = web.WebSocketResponse(max_msg_size=MAX_SOCKET_MESSAGE)
    await ws.prepare(request)
    structlog.contextvars.clear_contextvars()
    socket = MediaSocket(ws, request.transport, receive_timeout_s=settings.media_receive_timeout_s)
    request.app[SOCKETS].add(socket)
    frames = socket.frames()
    try:
        awaiting[0] += 1
        try:
            admitted = await _admit(request, socket, frames)
        finally:
            awaiting[0] -= 1
        if admitted is None:
            return ws  # refused: closed before any call work was done or recorded
        ended = request.app[ENDED]

        async def close_on_purpose() -> None:
            # Remembered before the socket closes: Twilio requests /action as soon as it sees the close.
            if call.ending not in NOT_ON_PURPOSE:
                ended.add(call.call_sid)
            await socket.close()

        deps, start = request.app[DEPS], admitted.start
        call = Call(deps, start, socket.send, close=close_on_purpose, max_frame_chars=MAX_FRAME_CHARS)
        socket.on_failure = call.socket_failed
        request.app[CALLS].add(call)
        request.app[NO_CALLS].clear()
        try:
            await call.run(frames)  # the frames after ``start``: the Call was built from it
        finally:
            request.app[CALLS].discard(call)
            if not request.app[CALLS]:
                request.app[NO_CALLS].set()
            for observer in request.app[CALL_OBSERVERS]:
                observer(call)
    finally:
        request.app[SOCKETS].discard(socket)
        try:
            await frames.aclose()
        finally:
            await socket.close()
    return ws
