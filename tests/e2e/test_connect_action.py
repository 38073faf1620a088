"""End to end: what a call does once its stream ends (``<Connect action>``), stream status callbacks, and a
``PUBLIC_BASE_URL`` with a path prefix.

Rules:
- The bench (real SDKs over 127.0.0.1) with a phone that follows actions as Twilio does
  (``SimulatedPhone(follow_actions=True)``, ``emulators.phone_action``): signed ``stream-started`` /
  ``stream-stopped`` / ``stream-error`` callbacks, then the signed action request, then whatever its
  answer says (a new stream of the same call, or the end of the call).
- "Ended on purpose" is shown both ways Twilio would see it: the REST hang-up reached Twilio (the phone is
  told through the REST emulator's ``on_update``: no action follows), and it failed (the bot closes the
  socket alone; the action comes back to this replica, which remembers).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from bot.flows.line import TimeoutConfig
from bot.sim.rig import AUTH_TOKEN, PUBLIC_BASE_URL, Bench, bench
from emulators.phone import SimulatedPhone
from emulators.twilio_rest import RestRequest
from tests.support.phone import ask, greeted
from tests.support.webhooks import sign

NO_REPROMPT = TimeoutConfig(silence_reprompt_s=60.0)
QUESTION = "What are your opening hours on Saturday?"
BYE = "Thank you, goodbye!"
RESUME = "Sorry, the line dropped. Where were we?"


def following_phone(b: Bench, public_base_url: str | None = None) -> SimulatedPhone:
    return SimulatedPhone(
        bot_url=b.server.url,
        auth_token=AUTH_TOKEN,
        public_base_url=public_base_url or b.settings.public_base_url,
        codebook=b.codebook,
        follow_actions=True,
    )


def posted(phone: SimulatedPhone, kind: str) -> list[Any]:
    return [p for p in phone.posted if p.kind == kind]


async def test_a_dropped_line_comes_back_on_a_new_stream_with_the_resume_line_and_goes_on() -> None:
    async with bench(timeouts=NO_REPROMPT) as b:
        phone = following_phone(b)
        async with await phone.dial() as first:
            await greeted(first)
            await first.drop()  # the network cuts the TCP connection: no stop, no close frame
            async with await phone.wait_resumed(first) as second:
                await greeted(second)
                (live,) = b.active_calls
                opening = [m["content"] for m in live.conversation.messages if m["role"] == "assistant"]
                assert opening == [RESUME]  # not the greeting: the caller hears where they are
                await ask(second, QUESTION)  # and the call goes on
                assert QUESTION in [request.last_user_text for request in b.openai.chat_requests]
                assert second.protocol_errors == [] and not second.closed_by_bot
                await second.hang_up()
        await asyncio.sleep(0.2)  # the hang-up's stream-stopped is not posted: only lost streams are

    # Twilio's side: a signed action request for the same call, answered with a new stream.
    [action] = posted(phone, "action")
    assert action.status == 200 and action.url == "https://bot.example.com/action"
    assert action.form["CallSid"] == first.call_sid and action.form["CallStatus"] == "in-progress"
    assert second.call_sid == first.call_sid and second.stream_sid != first.stream_sid
    # The same call's parameters; the new stream gets its own binding (made at /action, its own expiry).
    assert first.parameters.pop("binding").startswith("v1.")
    assert second.parameters.pop("binding").startswith("v1.")
    assert second.parameters == {**first.parameters, "resumed": "1"}
    assert first.dropped and not first.closed_by_bot
    statuses = [
        (p.form["StreamSid"], p.form["StreamEvent"], p.status) for p in posted(phone, "stream_status")
    ]
    assert statuses == [
        (first.stream_sid, "stream-started", 204),
        (first.stream_sid, "stream-error", 204),
        (second.stream_sid, "stream-started", 204),
    ]
    text = b.server.deps.metrics.exposition().decode() if b.server.deps.metrics else ""
    assert 'phonebot_connect_actions_total{outcome="resumed"} 1.0' in text
    assert 'phonebot_stream_status_total{event="stream-started"} 2.0' in text
    assert 'phonebot_stream_status_total{event="stream-error"} 1.0' in text


async def test_a_goodbye_hung_up_through_rest_ends_the_call_with_no_action() -> None:
    async with bench(timeouts=NO_REPROMPT) as b:
        phone = following_phone(b)

        async def on_update(request: RestRequest) -> None:
            phone.call_updated(request.call_sid, request.form)  # Twilio's REST API and calls are one service

        b.rest.on_update = on_update
        async with await phone.dial() as call:
            await greeted(call)
            await call.say(BYE)
            await call.wait_closed(timeout=20)
            await phone.wait_call_ended(call)
        [hang_up] = b.rest.requests
        assert hang_up.form == {"Status": "completed"}
    assert posted(phone, "action") == []  # the call is over: no TwiML runs, no action is requested
    assert [p.form["StreamEvent"] for p in posted(phone, "stream_status")] == [
        "stream-started",
        "stream-stopped",
    ]


async def test_a_goodbye_whose_rest_hang_up_failed_is_not_resumed_by_this_replica() -> None:
    async with bench(timeouts=NO_REPROMPT) as b:
        phone = following_phone(b)
        b.rest.faults.append(500)  # the hang-up fails: closing the socket alone ends the stream
        async with await phone.dial() as call:
            await greeted(call)
            await call.say(BYE)
            await call.wait_closed(timeout=20)
            await phone.wait_call_ended(call)
        text = b.server.deps.metrics.exposition().decode() if b.server.deps.metrics else ""
    [action] = posted(phone, "action")
    assert action.status == 200 and action.form["CallSid"] == call.call_sid
    assert "<Connect" not in action.body and "<Response" in action.body  # <Response/>: the call ends
    assert 'phonebot_connect_actions_total{outcome="ended"} 1.0' in text


async def test_stream_status_callbacks_and_actions_with_a_forged_signature_are_forbidden() -> None:
    form = {"AccountSid": "AC" + "0" * 32, "CallSid": "CA" + "1" * 32, "StreamSid": "MZ" + "2" * 32}
    async with bench() as b, aiohttp.ClientSession() as http:
        for path, fields in (
            ("/stream-status", {**form, "StreamEvent": "stream-started"}),
            ("/action", {**form, "CallStatus": "in-progress"}),
        ):
            public = PUBLIC_BASE_URL + path
            good = sign(public, fields)
            for signature in (
                sign(public, fields, token="not-the-auth-token"),
                sign(public, {**fields, "X": "1"}),
            ):
                async with http.post(
                    b.server.url + path, data=fields, headers={"X-Twilio-Signature": signature}
                ) as response:
                    assert response.status == 403, path
            async with http.post(
                b.server.url + path, data=fields, headers={"X-Twilio-Signature": good}
            ) as response:
                assert response.status in (200, 204), path
        text = b.server.deps.metrics.exposition().decode() if b.server.deps.metrics else ""
    assert 'phonebot_stream_status_total{event="stream-started"} 1.0' in text
    assert 'phonebot_connect_actions_total{outcome="resumed"} 1.0' in text


async def test_a_public_base_url_with_a_path_prefix_is_kept_in_every_url_and_signature() -> None:
    base = "https://example.com/bot"
    async with bench(timeouts=NO_REPROMPT, settings={"public_base_url": base}) as b:
        phone = following_phone(b, public_base_url=base)
        async with await phone.dial() as first:
            assert first.stream_url == "wss://example.com/bot/media"
            assert 'action="https://example.com/bot/action"' in first.twiml
            assert 'statusCallback="https://example.com/bot/stream-status"' in first.twiml
            await greeted(first)
            await first.drop()
            async with await phone.wait_resumed(first) as second:  # signed over /bot/action, /bot/media
                await greeted(second)
                await ask(second, QUESTION)
                await second.hang_up()
    [action] = posted(phone, "action")
    assert action.url == "https://example.com/bot/action" and action.status == 200
    assert [p.status for p in posted(phone, "stream_status")] == [204, 204, 204]
    assert [p.url for p in posted(phone, "stream_status")] == ["https://example.com/bot/stream-status"] * 3


async def test_a_transfer_is_never_resumed_whether_or_not_twilio_requests_the_action() -> None:
    for linked in (True, False):  # Twilio replaces the <Connect> (no action); or it asks anyway
        async with bench(timeouts=NO_REPROMPT) as b:
            phone = following_phone(b)
            if linked:

                async def on_update(request: RestRequest, phone: SimulatedPhone = phone) -> None:
                    phone.call_updated(request.call_sid, request.form)

                b.rest.on_update = on_update
            async with await phone.dial() as call:
                await greeted(call)
                await call.say("A person, please.")
                await call.wait_closed(timeout=20)
                await phone.wait_call_ended(call)
            [redirect] = b.rest.requests
            assert "<Dial>" in redirect.form["Twiml"]
        actions = posted(phone, "action")
        if linked:
            assert actions == []
        else:
            [action] = actions
            assert action.status == 200 and "<Connect" not in action.body
