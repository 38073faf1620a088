"""``bot.server.stream_gate.admit``: which first frames of a media socket make a call (no socket needed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.binding import PARAMETER, BindingRefusal, mint_binding
from bot.server.stream_gate import MAX_FRAMES_BEFORE_START, Admitted, Refused, admit, replay
from emulators import twilio_wire as wire

TOKEN = "auth-token"
CALL = "CA" + "1" * 32
ACCOUNT = "AC" + "2" * 32
NOW = 1_800_000_000.0
STREAM = "MZ" + "3" * 32


def start(call: str = CALL, account: str = ACCOUNT, parameters: dict[str, str] | None = None) -> str:
    if parameters is None:
        parameters = {"to": "+15550100", PARAMETER: mint_binding(TOKEN, CALL, ACCOUNT, now=NOW)}
    return wire.start_message(
        1, stream_sid=STREAM, account_sid=account, call_sid=call, custom_parameters=parameters
    )


MEDIA = wire.media_message(2, stream_sid=STREAM, chunk=1, timestamp_ms=0, ulaw=b"\xff" * 160)


async def frames_of(items: list[str | bytes], taken: list[str | bytes]) -> AsyncIterator[str | bytes]:
    for item in items:
        taken.append(item)
        yield item


async def gate(items: list[str | bytes], account: str | None = None) -> tuple[Admitted | Refused, int]:
    taken: list[str | bytes] = []
    result = await admit(
        frames_of(items, taken), TOKEN, account=account, max_frame_chars=65536, clock=lambda: NOW
    )
    return result, len(taken)


async def test_connected_then_a_bound_start_is_admitted_with_both_frames() -> None:
    frames: list[str | bytes] = [wire.connected_message(), start(), MEDIA]
    result, taken = await gate(frames)
    assert isinstance(result, Admitted)
    assert result.frames == frames[:2] and taken == 2  # nothing past start is read
    assert (result.start.call_sid, result.start.account_sid) == (CALL, ACCOUNT)


async def test_replay_gives_the_call_every_frame_in_order() -> None:
    frames: list[str | bytes] = [wire.connected_message(), start(), MEDIA, MEDIA]
    taken: list[str | bytes] = []
    source = frames_of(frames, taken)
    result = await admit(source, TOKEN, account=None, max_frame_chars=65536, clock=lambda: NOW)
    assert isinstance(result, Admitted)
    assert [frame async for frame in replay(result.frames, source)] == frames


async def test_a_start_without_connected_is_admitted() -> None:
    result, _ = await gate([start()])
    assert isinstance(result, Admitted)


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([], BindingRefusal.NO_START),
        ([wire.connected_message()], BindingRefusal.NO_START),  # the socket ended before start
        ([MEDIA, start()], BindingRefusal.NO_START),
        ([wire.connected_message(), "not json", start()], BindingRefusal.NO_START),
        ([b"\x00binary", start()], BindingRefusal.NO_START),
        ([json.dumps({"event": "start"}), start()], BindingRefusal.NO_START),  # a start that does not parse
        ([start(parameters={})], BindingRefusal.MISSING),
        ([start(call="CA" + "9" * 32)], BindingRefusal.WRONG),
        ([start(call="CA/../" + "0" * 29)], BindingRefusal.BAD_CALL_SID),
    ],
    ids=["nothing", "only_connected", "media_first", "junk_first", "binary_first", "broken_start",
         "no_binding", "another_call", "call_sid_with_a_path"],
)  # fmt: skip
async def test_anything_else_is_refused(frames: list[str | bytes], reason: BindingRefusal) -> None:
    result, _ = await gate(frames)
    assert isinstance(result, Refused) and result.reason is reason


async def test_connected_frames_cannot_stall_the_gate() -> None:
    frames: list[str | bytes] = [wire.connected_message()] * 100
    result, taken = await gate([*frames, start()])
    assert isinstance(result, Refused) and result.reason is BindingRefusal.NO_START
    assert taken == MAX_FRAMES_BEFORE_START


async def test_the_configured_account_is_required() -> None:
    result, _ = await gate([start()], account="AC" + "4" * 32)
    assert isinstance(result, Refused) and result.reason is BindingRefusal.OTHER_ACCOUNT
    assert isinstance((await gate([start()], account=ACCOUNT))[0], Admitted)


async def test_the_refusal_logs_only_twilio_shaped_sids() -> None:
    result, _ = await gate([start(call="CA/../x", account="AC<script>")])
    assert isinstance(result, Refused)
    assert result.log_fields() == {"reason": "bad_call_sid"}
    result, _ = await gate([start(call="CA" + "9" * 32)])
    assert isinstance(result, Refused)
    assert result.log_fields() == {
        "reason": "wrong_binding",
        "claimed_call_sid": "CA" + "9" * 32,
        "claimed_account_sid": ACCOUNT,
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.text(max_size=200), st.binary(max_size=50)), max_size=5))
async def test_arbitrary_first_frames_never_make_a_call(frames: list[str | bytes]) -> None:
    result, taken = await gate(frames)
    assert isinstance(result, Refused)
    assert taken <= MAX_FRAMES_BEFORE_START


async def trickle(frame: str, every_s: float) -> AsyncIterator[str | bytes]:
    """A peer that sends a frame now and then and never a ``start``."""
    while True:
        await asyncio.sleep(every_s)
        yield frame


@pytest.mark.parametrize("frames", [[], [wire.connected_message()]])
async def test_a_socket_without_start_in_time_is_refused_at_the_deadline(frames: list[str]) -> None:
    async def stalled() -> AsyncIterator[str | bytes]:
        for frame in frames:
            yield frame
        await asyncio.Event().wait()  # silent for good
        yield ""  # pragma: no cover

    result = await asyncio.wait_for(
        admit(stalled(), TOKEN, account=None, max_frame_chars=65536, timeout_s=0.05), 5
    )
    assert result == Refused(BindingRefusal.START_TIMEOUT)


async def test_the_deadline_covers_all_frames_not_each_one() -> None:
    """A connected every 20 ms never resets the deadline: only MAX_FRAMES_BEFORE_START are read anyway,
    and a slower trickle (each frame inside any per-frame timeout) still ends at the one deadline."""
    result = await asyncio.wait_for(
        admit(
            trickle(wire.connected_message(), 0.04), TOKEN, account=None, max_frame_chars=65536, timeout_s=0.1
        ),
        5,
    )
    assert result == Refused(BindingRefusal.START_TIMEOUT)
