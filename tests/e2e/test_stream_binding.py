"""End to end: a media stream is a call only when its ``start`` is bound to the webhook that answered it.

Twilio signs the media upgrade over the bare ``wss://host/media`` (see ``bot.core.binding``): one value per
host, so whoever saw it once can open streams at will. Every attack here holds that genuine upgrade
signature and forges the ``start`` over a real socket; the bot must close the socket with 1008 (policy
violation) before any work: no ``Call``, no recording folder, no greeting audio, no REST request, and a
``stream_refused`` log line and metric naming the reason.

Rules:
- The bench is the real server on 127.0.0.1; the attacker is a plain aiohttp WebSocket client; tokens are
  minted with ``bot.core.binding`` and the bench's own auth token (the strongest attacker: one whose
  token only differs in the sids or the time), or with another account's token.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import pytest
import structlog

from bot.core.binding import BINDING_TTL_S, PARAMETER, mint_binding
from bot.sim.rig import AUTH_TOKEN, Bench, bench
from emulators import twilio_wire as wire
from tests.support.metrics import exposition, labelled
from tests.support.webhooks import FORM, STREAM_URL, VOICE_URL, sign

ACCOUNT = "AC" + "0" * 32  # the simulated phone's, and the bench's REST emulator's
OTHER_ACCOUNT = "AC" + "7" * 32
VICTIM = "CA" + "ab" * 16
ATTACKER = "CA" + "cd" * 16
PARAMS = {"to": "+15550100", "from": "+15550199", "line": "store"}


def start_frame(call_sid: str, account_sid: str, parameters: Mapping[str, str]) -> str:
    return wire.start_message(
        1,
        stream_sid="MZ" + "e" * 32,
        account_sid=account_sid,
        call_sid=call_sid,
        custom_parameters=parameters,
    )


def bound(call_sid: str, account_sid: str = ACCOUNT, *, token: str = AUTH_TOKEN, ago_s: float = 0) -> str:
    return mint_binding(token, call_sid, account_sid, now=time.time() - ago_s)


async def forged_stream(b: Bench, frames: list[str]) -> tuple[int | None, list[str]]:
    """Open a stream with the genuine upgrade signature, send ``frames``; (close code, frames received)."""
    received: list[str] = []
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            b.server.url + "/media", headers={"X-Twilio-Signature": sign(STREAM_URL, {})}
        )
        for frame in frames:
            await ws.send_str(frame)
        async with asyncio.timeout(10):
            async for message in ws:  # until the bot closes the socket
                if message.type is aiohttp.WSMsgType.TEXT:
                    received.append(message.data)
        return ws.close_code, received


async def refusals(b: Bench) -> dict[str, float]:
    found = labelled(await exposition(b.server.url), "phonebot_streams_refused_total", "reason")
    return {reason: value for (reason,), value in found.items()}


def files_under(folder: str) -> list[Path]:
    return [p for p in Path(folder).rglob("*") if p.is_file()]


FORGERIES = [
    pytest.param([start_frame(VICTIM, ACCOUNT, PARAMS)], "missing_binding", id="no_binding"),
    pytest.param(
        [start_frame(VICTIM, ACCOUNT, {**PARAMS, PARAMETER: "v1.9999999999." + "A" * 43})],
        "wrong_binding",
        id="made_up_binding",
    ),
    pytest.param(
        [start_frame(VICTIM, ACCOUNT, {**PARAMS, PARAMETER: "forged"})],
        "malformed_binding",
        id="not_a_binding",
    ),
    pytest.param(
        [start_frame(VICTIM, ACCOUNT, {**PARAMS, PARAMETER: bound(ATTACKER)})],
        "wrong_binding",
        id="another_calls_binding",
    ),
    pytest.param(
        [
            start_frame(
                VICTIM, ACCOUNT, {**PARAMS, PARAMETER: bound(VICTIM, token="attackers-own-auth-token")}
            )
        ],
        "wrong_binding",
        id="bound_by_another_accounts_token",
    ),
    pytest.param(
        [start_frame(VICTIM, ACCOUNT, {**PARAMS, PARAMETER: bound(VICTIM, ago_s=BINDING_TTL_S + 5)})],
        "expired_binding",
        id="expired_binding",
    ),
    pytest.param(
        [
            start_frame(
                f"CA/../../Accounts/{ACCOUNT}/Calls/{VICTIM}", ACCOUNT, {**PARAMS, PARAMETER: bound(ATTACKER)}
            )
        ],
        "bad_call_sid",
        id="call_sid_reshaping_the_rest_path",
    ),
    pytest.param(
        [start_frame(VICTIM, "AC/../" + "0" * 28, {**PARAMS, PARAMETER: bound(VICTIM)})],
        "bad_account_sid",
        id="account_sid_with_a_path",
    ),
    pytest.param(
        [start_frame(VICTIM, OTHER_ACCOUNT, {**PARAMS, PARAMETER: bound(VICTIM, OTHER_ACCOUNT)})],
        "other_account",
        id="another_account",
    ),
    pytest.param(
        [wire.media_message(1, stream_sid="MZ" + "e" * 32, chunk=1, timestamp_ms=0, ulaw=b"\xff" * 160)],
        "no_start",
        id="media_instead_of_start",
    ),
]


@pytest.mark.parametrize(("frames", "reason"), FORGERIES)
async def test_a_forged_start_is_closed_before_any_work_is_done_or_recorded(
    frames: list[str], reason: str
) -> None:
    # TWILIO_ACCOUNT_SID set: a stream naming another account is refused even with a good token.
    async with bench(settings={"twilio_account_sid": ACCOUNT}) as b:
        with structlog.testing.capture_logs() as logs:
            code, received = await forged_stream(b, [wire.connected_message(), *frames])
        await asyncio.sleep(0.2)  # anything the bot might still do in the background has had its chance
        assert code == aiohttp.WSCloseCode.POLICY_VIOLATION
        assert received == []  # no greeting, no mark, nothing
        assert not b.active_calls and not b.finished_calls  # no Call was ever made
        assert files_under(b.settings.recordings_dir) == []
        assert b.rest.requests == []
        assert await refusals(b) == {reason: 1.0}
    [line] = [e for e in logs if e["event"] == "stream_refused"]
    assert line["reason"] == reason and line["log_level"] == "warning"
    assert "/.." not in json.dumps(line)  # an attacker's text never reaches the log


async def test_a_stream_naming_a_live_call_with_an_attackers_binding_leaves_that_call_alone() -> None:
    # The attack the binding exists for: a genuine upgrade signature, a live call's sids, and a token that
    # is genuine for the attacker's own call. Before the binding, that stream became a Call that the
    # attacker could talk into hanging the victim up through REST.
    async with bench(greeting="Hello.") as b:
        async with await b.phone.dial() as victim, await b.phone.dial() as attacker:
            await victim.wait_for_bot_audio(after=0.0, timeout=10)
            attackers_token = attacker.parameters[PARAMETER]
            code, received = await forged_stream(
                b,
                [
                    wire.connected_message(),
                    start_frame(victim.call_sid, ACCOUNT, {**PARAMS, PARAMETER: attackers_token}),
                    wire.stop_message(
                        2, stream_sid="MZ" + "e" * 32, account_sid=ACCOUNT, call_sid=victim.call_sid
                    ),
                ],
            )
            assert (code, received) == (aiohttp.WSCloseCode.POLICY_VIOLATION, [])
            assert len(b.active_calls) == 2 and not victim.closed_by_bot
            await victim.hang_up()
            await attacker.hang_up()
        assert b.rest.requests == []
        assert await refusals(b) == {"wrong_binding": 1.0}


async def test_the_stream_twilio_opens_with_the_webhooks_binding_is_a_call() -> None:
    # The control: the simulated Twilio carries the <Parameter> from /voice into start.customParameters.
    async with bench(settings={"twilio_account_sid": ACCOUNT}, greeting="Hello.") as b:
        async with await b.phone.dial() as call:
            assert set(call.parameters) == {"to", "from", "line", PARAMETER}
            await call.wait_for_bot_audio(after=0.0, timeout=10)
            assert len(b.active_calls) == 1
            await call.hang_up()
        assert await refusals(b) == {}
        await asyncio.sleep(0.5)  # the recording is finalized as the call ends
        recorded = files_under(b.settings.recordings_dir)
        assert (
            recorded
        )  # the call was recorded, without its binding (it could open a stream until it expires)
        assert all(call.parameters[PARAMETER].encode() not in path.read_bytes() for path in recorded)


async def test_the_webhook_of_another_account_gets_no_stream() -> None:
    async with bench(settings={"twilio_account_sid": OTHER_ACCOUNT}) as b:
        with structlog.testing.capture_logs() as logs, pytest.raises(Exception, match="HTTP 400"):
            await b.phone.dial()
    assert [e["event"] for e in logs if e["event"].startswith("webhook")] == ["webhook_not_a_call_of_ours"]


@pytest.mark.parametrize(
    "fields",
    [{"CallSid": "CA123"}, {"CallSid": "CA/../" + "0" * 29}, {"AccountSid": "AC1"}, {"CallSid": ""}],
    ids=["short_call_sid", "call_sid_with_a_path", "short_account_sid", "no_call_sid"],
)
async def test_a_signed_webhook_naming_no_twilio_call_gets_no_stream(fields: dict[str, str]) -> None:
    # Twilio never sends these; a stream minted for them could never be admitted, so none is offered.
    form = {**FORM, **fields}
    async with bench() as b, aiohttp.ClientSession() as http:
        headers = {"X-Twilio-Signature": sign(VOICE_URL, form)}
        async with http.post(b.server.url + "/voice", data=form, headers=headers) as response:
            assert response.status == 400
            assert "<Stream" not in await response.text()
