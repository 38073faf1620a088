"""Admitting a Media Streams socket: its first frames must be Twilio's ``connected`` and a ``start`` bound
to the webhook that answered the call (``bot.core.binding``), before any ``Call`` exists.

Rules:
- ``admit`` reads the socket's first frames: ``connected`` frames are passed over (Twilio sends one), the
  first other frame must be a well-formed ``start``, and at most ``MAX_FRAMES_BEFORE_START`` frames are read
  in all. Anything else is refused as ``no_start``; a socket that ends first is refused the same way.
- All of it within ``timeout_s`` of the upgrade, or the socket is refused as ``start_timeout``: a peer
  trickling frames (or pings) never holds a socket longer than that. A socket waiting here is not a call:
  it is not in the live-call count and the drain does not wait for it.
- ``start`` is admitted only if ``check_binding`` accepts it: Twilio-shaped sids, the configured account
  (when set), and the token ``/voice`` minted for exactly these sids, not expired. The time is wall-clock
  (``time.time``): a token minted by another replica is checked against the same clock.
- Admitted: its ``start`` is handed back and the ``Call`` is built from it, then reads the socket's frames
  after it. The frames read so far are handed back too (``replay`` yields them before the rest).
  Refused: nothing of the call has started (no recording, no greeting, no provider or REST request); the
  caller closes the socket with 1008 (policy violation), logs ``stream_refused`` and counts it.
- The refusal's log line carries the reason and the sids only when they are Twilio-shaped (an attacker's
  text never reaches the log); never the token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass

from bot.core.binding import BindingRefusal, check_binding, is_account_sid, is_call_sid
from bot.core.twilio_messages import Connected, Start, parse_message

# Twilio sends exactly ``connected`` then ``start``; a little room, never a way to stall with junk.
MAX_FRAMES_BEFORE_START = 3


@dataclass(frozen=True)
class Admitted:
    frames: list[str | bytes]  # what was read, ``start`` last
    start: Start


@dataclass(frozen=True)
class Refused:
    reason: BindingRefusal
    call_sid: str | None = None  # only when Twilio-shaped
    account_sid: str | None = None

    def log_fields(self) -> dict[str, str]:
        fields = {"reason": self.reason.value}
        if self.call_sid is not None:
            fields["claimed_call_sid"] = self.call_sid
        if self.account_sid is not None:
            fields["claimed_account_sid"] = self.account_sid
        return fields


async def admit(
    frames: AsyncIterator[str | bytes],
    auth_token: str,
    *,
    account: str | None,
    max_frame_chars: int,
    timeout_s: float = 5.0,
    clock: Callable[[], float] = time.time,
) -> Admitted | Refused:
    """Read up to ``start`` and check it, within ``timeout_s`` (see the module rules)."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_start(
                frames, auth_token, account=account, max_frame_chars=max_frame_chars, clock=clock
            )
    except TimeoutError:
        return Refused(BindingRefusal.START_TIMEOUT)


async def _read_start(
    frames: AsyncIterator[str | bytes],
    auth_token: str,
    *,
    account: str | None,
    max_frame_chars: int,
    clock: Callable[[], float],
) -> Admitted | Refused:
    read: list[str | bytes] = []
    async for frame in frames:
        read.append(frame)
        message = parse_message(frame, max_chars=max_frame_chars)
        if isinstance(message, Connected) and len(read) < MAX_FRAMES_BEFORE_START:
            continue
        if not isinstance(message, Start):
            return Refused(BindingRefusal.NO_START)
        refusal = check_binding(
            auth_token,
            message.custom_parameters,
            message.call_sid,
            message.account_sid,
            now=clock(),
            account=account,
        )
        if refusal is not None:
            return Refused(
                refusal,
                message.call_sid if is_call_sid(message.call_sid) else None,
                message.account_sid if is_account_sid(message.account_sid) else None,
            )
        return Admitted(read, message)
    return Refused(BindingRefusal.NO_START)


async def replay(
    read: list[str | bytes], rest: AsyncIterator[str | bytes]
) -> AsyncGenerator[str | bytes, None]:
    """The frames ``admit`` read, then the rest of the socket's."""
    for frame in read:
        yield frame
    async for frame in rest:
        yield frame
