"""End to end: replayed callbacks, aborted bodies and floods of refusals (issue 14 §14), against a real
``bot serve`` subprocess on 127.0.0.1, each attack bounded in count and time.

Rules:
- Callbacks are signed with twilio's own ``RequestValidator`` (``tests.e2e.test_server.sign``) with the
  auth token ``serve_env`` gives the bot; counts are read from its ``/metrics``.
- What the bot logged is read from its log file, every byte of it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import aiohttp

from bot.sim.rig import PUBLIC_BASE_URL
from tests.support.metrics import exposition, labelled
from tests.support.served import TWILIO_SECRET, ServedBot, hostile_bot
from tests.support.webhooks import FORM, sign

REPLAYS = 50
FLOOD = 200
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}
STATUS = {**FORM, "CallStatus": "completed", "CallDuration": "37", "SequenceNumber": "3"}


async def samples(url: str, name: str) -> dict[tuple[str, ...], float]:
    """``name``'s samples on the bot's ``/metrics``, keyed by their label values."""
    return labelled(await exposition(url), name)


async def logged(bot: ServedBot, event: str, count: int, timeout_s: float) -> None:
    """Wait (at most ``timeout_s``) until the bot logged ``event`` ``count`` times."""
    for _ in range(int(timeout_s / 0.1)):
        if len(bot.events(event)) >= count:
            return
        await asyncio.sleep(0.1)


async def post(http: aiohttp.ClientSession, url: str, path: str, form: dict[str, str], signed: bool) -> int:
    headers = {**FORM_TYPE}
    if signed:
        headers["X-Twilio-Signature"] = sign(PUBLIC_BASE_URL + path, form, token=TWILIO_SECRET)
    async with http.post(url + path, data=urlencode(form), headers=headers) as response:
        return response.status


async def test_a_replayed_status_callback_is_answered_but_counted_once(tmp_path: Path) -> None:
    """The same signed /status 50 times: before, phonebot_call_status counted 50 (and logged 50 lines);
    now 1, the 49 others count as repeats. A distinct callback (another status) still counts."""
    stream_event = {**FORM, "StreamSid": "MZ" + "3" * 32, "StreamEvent": "stream-stopped"}
    async with hostile_bot(tmp_path) as bot, aiohttp.ClientSession() as http:
        statuses = [await post(http, bot.url, "/status", STATUS, signed=True) for _ in range(REPLAYS)]
        ringing = await post(http, bot.url, "/status", {**STATUS, "CallStatus": "ringing"}, signed=True)
        streams = [await post(http, bot.url, "/stream-status", stream_event, signed=True) for _ in range(10)]
        counted = await samples(bot.url, "phonebot_call_status_total")
        stream_counted = await samples(bot.url, "phonebot_stream_status_total")
        repeats = await samples(bot.url, "phonebot_callbacks_repeated_total")
    print(f"{REPLAYS} identical /status: counted {counted}, repeats {repeats}")
    assert statuses == [204] * REPLAYS and ringing == 204 and streams == [204] * 10
    assert counted == {("completed",): 1.0, ("ringing",): 1.0}
    assert stream_counted == {("stream-stopped",): 1.0}
    assert repeats == {("status",): REPLAYS - 1.0, ("stream_status",): 9.0}
    assert len(bot.events("call_status")) == 2


async def test_a_body_aborted_mid_read_logs_one_line_and_no_traceback_locals(tmp_path: Path) -> None:
    """A signed-looking /status whose peer hangs up mid-body: before, aiohttp logged "Error handling
    request" at ERROR with every frame's locals, the first 80 bytes of the body among them; now one
    ``webhook_body_aborted`` line, no traceback, nothing of the body."""
    sentinel = "Zq7SentinelOfTheBody"
    body = f"Aaa={sentinel}&{urlencode(STATUS)}".encode()
    async with hostile_bot(tmp_path) as bot:
        parts = urlsplit(bot.url)
        for _ in range(3):
            _reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            head = (
                f"POST /status HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: forged\r\n"
                f"Content-Length: {len(body) + 100}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
            await asyncio.sleep(0.3)  # the bot is reading the body
            writer.close()
        await logged(bot, "webhook_body_aborted", 3, timeout_s=10)
        assert (await bot.health())[0] == 200
    text = bot.log_path.read_text(errors="replace")
    assert sentinel not in text
    assert "Error handling request" not in text and '"locals"' not in text
    assert '"level": "error"' not in text
    assert len(bot.events("webhook_body_aborted")) == 3


async def test_a_flood_of_refused_requests_logs_a_few_lines_and_a_count(tmp_path: Path) -> None:
    """200 unsigned or wrongly signed /status: before, 200 warning lines; now at most a window's budget (5)
    and a ``log_lines_suppressed`` summary with the rest, while /metrics counts all 200."""
    async with hostile_bot(tmp_path) as bot, aiohttp.ClientSession() as http:
        started = time.monotonic()
        statuses = [await post(http, bot.url, "/status", STATUS, signed=False) for _ in range(FLOOD // 2)]
        forged = {**STATUS, "X": "1"}
        signature = sign(PUBLIC_BASE_URL + "/status", STATUS, TWILIO_SECRET)
        headers = {**FORM_TYPE, "X-Twilio-Signature": signature}
        for _ in range(FLOOD // 2):  # signed for another form: read, then refused
            async with http.post(bot.url + "/status", data=urlencode(forged), headers=headers) as response:
                statuses.append(response.status)
        took = time.monotonic() - started
        refused = await samples(bot.url, "phonebot_requests_refused_total")
        await logged(bot, "log_lines_suppressed", 1, timeout_s=25)  # at the end of the 10 s window
    lines = bot.events("webhook_signature_rejected")
    suppressed = sum(e["suppressed"] for e in bot.events("log_lines_suppressed"))
    print(f"{FLOOD} refused in {took:.1f} s: {len(lines)} lines, {suppressed} suppressed, metric {refused}")
    assert statuses == [403] * FLOOD
    assert refused == {("/status", "403"): float(FLOOD)}
    assert len(lines) <= (5 if took < 10 else 10)  # one window's budget (two if the flood spanned one)
    assert len(lines) + suppressed == FLOOD
