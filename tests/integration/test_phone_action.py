"""The simulated Twilio after a stream (``emulators.phone_action``) against a tiny fake bot on 127.0.0.1:
the signed ``<Connect action>`` request and what its answer makes of the call, as Twilio documents it
(https://www.twilio.com/docs/voice/twiml/connect), and the signed stream status callbacks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator

from emulators.phone import SimulatedPhone

AUTH_TOKEN = "fake-auth-token"
PUBLIC = "https://bot.example.com/app"  # a path prefix: the phone strips it, as the proxy would


@dataclass
class FakeBot:
    """``/voice`` answers ``<Connect action=after>`` (relative); ``/media`` closes the stream after
    ``start`` unless told to keep it; ``/after`` answers ``answer`` (status, body)."""

    connect_attrs: str = ' action="after"'
    answer: tuple[int, str] = (200, "<Response/>")
    keep_stream: bool = False
    posts: list[tuple[str, dict[str, str], bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.validator = RequestValidator(AUTH_TOKEN)

    async def _signed(self, request: web.Request, path: str) -> None:
        form = {k: str(v) for k, v in (await request.post()).items()}
        ok = self.validator.validate(PUBLIC + path, form, request.headers.get("X-Twilio-Signature", ""))
        self.posts.append((path, form, ok))

    async def voice(self, request: web.Request) -> web.Response:
        await self._signed(request, "/voice")
        twiml = (
            f'<Response><Connect{self.connect_attrs}><Stream url="wss://bot.example.com/app/media"'
            ' statusCallback="/app/stream-status" /></Connect></Response>'
        )
        return web.Response(text=twiml, content_type="text/xml")

    async def media(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if '"start"' in message.data and not self.keep_stream:
                break
        await ws.close()
        return ws

    async def after(self, request: web.Request) -> web.Response:
        await self._signed(request, "/after")
        status, body = self.answer
        return web.Response(status=status, text=body, content_type="text/xml")

    async def stream_status(self, request: web.Request) -> web.Response:
        await self._signed(request, "/stream-status")
        return web.Response(status=204)


@asynccontextmanager
async def running(bot: FakeBot) -> AsyncIterator[SimulatedPhone]:
    app = web.Application()
    app.router.add_post("/voice", bot.voice)
    app.router.add_get("/media", bot.media)
    app.router.add_post("/after", bot.after)
    app.router.add_post("/stream-status", bot.stream_status)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield SimulatedPhone(
            bot_url=f"http://127.0.0.1:{port}",
            auth_token=AUTH_TOKEN,
            public_base_url=PUBLIC,
            follow_actions=True,
        )
    finally:
        await runner.cleanup()


def paths(bot: FakeBot) -> list[str]:
    return [path for path, _form, _ok in bot.posts]


async def test_the_action_is_requested_signed_and_an_empty_answer_ends_the_call() -> None:
    bot = FakeBot()
    async with running(bot) as phone, await phone.dial(to="+15550100", from_="+15550199") as call:
        await call.wait_closed(timeout=10)
        await phone.wait_call_ended(call)
    assert paths(bot) == ["/voice", "/stream-status", "/stream-status", "/after"]
    assert all(ok for _path, _form, ok in bot.posts)  # relative URLs resolved and signed as Twilio would
    [(_, action, _)] = [p for p in bot.posts if p[0] == "/after"]
    assert action["CallSid"] == call.call_sid and action["CallStatus"] == "in-progress"
    assert (action["From"], action["To"], action["Direction"]) == ("+15550199", "+15550100", "inbound")
    events = [form["StreamEvent"] for path, form, _ok in bot.posts if path == "/stream-status"]
    assert events == ["stream-started", "stream-stopped"]


@pytest.mark.parametrize(
    "answer",
    [(500, "oops"), (200, "not xml <"), (200, "<Response><Say>bye</Say></Response>")],
    ids=["http_500", "not_twiml", "no_stream"],
)
async def test_an_answer_without_a_stream_ends_the_call(answer: tuple[int, str]) -> None:
    bot = FakeBot(answer=answer)  # Twilio: a failed action is application error 11200, the call ends
    async with running(bot) as phone, await phone.dial() as call:
        await call.wait_closed(timeout=10)
        await phone.wait_call_ended(call)
    [action] = [p for p in phone.posted if p.kind == "action"]
    assert action.status == answer[0]


async def test_a_new_stream_in_the_answer_is_a_new_stream_of_the_same_call() -> None:
    resume = (
        '<Response><Connect><Stream url="wss://bot.example.com/app/media"><Parameter name="again" value="1"/>'
    )
    bot = FakeBot(answer=(200, resume + "</Stream></Connect></Response>"))
    async with running(bot) as phone, await phone.dial() as first:
        await first.wait_closed(timeout=10)
        async with await phone.wait_resumed(first) as second:
            assert (second.call_sid, second.parameters) == (first.call_sid, {"again": "1"})
            assert second.stream_sid != first.stream_sid
            await second.wait_closed(timeout=10)  # this Connect has no action: the call ends here
            await phone.wait_call_ended(second)
    assert paths(bot).count("/after") == 1


async def test_without_an_action_or_after_a_hang_up_nothing_is_requested() -> None:
    bot = FakeBot(connect_attrs="")
    async with running(bot) as phone, await phone.dial() as call:
        await call.wait_closed(timeout=10)
        await phone.wait_call_ended(call)
    assert "/after" not in paths(bot)
    kept = FakeBot(keep_stream=True)
    async with running(kept) as phone, await phone.dial() as call:
        await call.hang_up()  # the caller hangs up: the call is over, no action
    assert paths(kept) == ["/voice", "/stream-status"]
