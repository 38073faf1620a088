"""End to end: who may talk to the bot, and what a whole run leaves behind.

Rules:
- Signatures are made with twilio's own ``RequestValidator`` (``tests.e2e.test_server.sign``) exactly as
  Twilio signs. ``test_server.py`` covers the plain refusals (wrong token, none, http, another host,
  changed params); this file covers a signature that is valid, but for another request: another URL,
  another route, the URL the bot sees behind its proxy, a form changed after signing.
- The bench's server listens on ``http://127.0.0.1:PORT`` behind the pretend proxy ``PUBLIC_BASE_URL``.
- The secrets test runs ``bot serve`` as a subprocess with distinctive secrets, drives a whole call and the
  error paths, stops it, and reads every byte it left (its log, its recordings folder, the bucket).
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote_to_bytes

import aiohttp
import pytest
import structlog
from moto.server import ThreadedMotoServer

from bot.recording.s3 import s3_client
from bot.server.app import start_draining
from bot.sim.rig import PUBLIC_BASE_URL, Bench, bench
from emulators.openai_server import OpenAIEmulator
from emulators.phone import SimulatedPhone
from emulators.store_script import StoreScript
from emulators.tts_server import TtsEmulator
from emulators.twilio_rest import TwilioRestEmulator
from emulators.voice import ToneCodebook
from tests.support.metrics import exposition, labelled
from tests.support.phone import ask_after_greeting
from tests.support.served import serve_env, serving
from tests.support.webhooks import FORM, STREAM_URL, VOICE_URL, sign

STATUS_URL = PUBLIC_BASE_URL + "/status"
STATUS_FORM = {
    "AccountSid": "AC" + "0" * 32,
    "ApiVersion": "2010-04-01",
    "CallSid": "CA" + "2" * 32,
    "CallStatus": "completed",
    "CallDuration": "37",
    "CallbackSource": "call-progress-events",
    "Direction": "inbound",
    "From": "+15550199",
    "To": "+15550100",
    "SequenceNumber": "2",
    "Timestamp": "Tue, 24 Nov 2026 10:00:00 +0000",
}


async def post(b: Bench, path: str, form: Any, signature: str | None) -> tuple[int, str]:
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    async with (
        aiohttp.ClientSession() as http,
        http.post(b.server.url + path, data=form, headers=headers) as r,
    ):
        return r.status, await r.text()


# ---- POST /voice: valid signatures of other requests ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "form", "signed_url", "signed_form", "headers"),
    [
        pytest.param("/voice", FORM, VOICE_URL + "?x=1", FORM, {}, id="signed_over_a_query_string"),
        pytest.param("/voice?x=1", FORM, VOICE_URL, FORM, {}, id="query_string_added_after_signing"),
        pytest.param("/voice", FORM, STATUS_URL, FORM, {}, id="signed_for_the_status_route"),
        pytest.param("/voice", FORM, "LOCAL/voice", FORM, {}, id="signed_over_the_url_behind_the_proxy"),
        pytest.param(
            "/voice",
            FORM,
            "https://evil.example.com/voice",
            FORM,
            {"X-Forwarded-Host": "evil.example.com", "X-Forwarded-Proto": "https"},
            id="forwarded_headers_naming_the_signed_host",
        ),
        pytest.param("/voice", {**FORM, "Digits": "1"}, VOICE_URL, FORM, {}, id="field_added_after_signing"),
        pytest.param(
            "/voice",
            [("To", "+15550111"), *FORM.items()],
            VOICE_URL,
            FORM,
            {},
            id="field_repeated_before_the_signed_one",
        ),
    ],
)
async def test_voice_webhook_signed_for_another_request_is_forbidden(
    path: str, form: Any, signed_url: str, signed_form: dict[str, str], headers: dict[str, str]
) -> None:
    async with bench() as b:
        signed_url = signed_url.replace("LOCAL", b.server.url)
        headers = {**headers, "X-Twilio-Signature": sign(signed_url, signed_form)}
        async with (
            aiohttp.ClientSession() as http,
            http.post(b.server.url + path, data=form, headers=headers) as response,
        ):
            assert response.status == 403
            assert "<Stream" not in await response.text()


async def test_voice_webhook_signature_covers_the_query_string() -> None:
    # The control for the query-string refusals: Twilio signs the URL it requested, query included.
    async with bench() as b:
        status, twiml = await post(b, "/voice?x=1", FORM, sign(VOICE_URL + "?x=1", FORM))
    assert status == 200 and "<Stream" in twiml


async def test_without_public_base_url_the_url_checked_is_the_one_the_bot_sees() -> None:
    async with bench(settings={"public_base_url": None}) as b:
        local = b.server.url + "/voice"
        assert (await post(b, "/voice", FORM, sign(VOICE_URL, FORM)))[0] == 403
        status, twiml = await post(b, "/voice", FORM, sign(local, FORM))
        host = b.server.url.removeprefix("http://")
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(
                    b.server.url + "/media", headers={"X-Twilio-Signature": sign(STREAM_URL, {})}
                )
            assert refused.value.status == 403
            ws = await http.ws_connect(
                b.server.url + "/media", headers={"X-Twilio-Signature": sign(f"wss://{host}/media", {})}
            )
            await ws.close()
    assert status == 200 and f'url="wss://{host}/media"' in twiml


# ---- GET /media: valid signatures of other requests ----------------------------------------------------


@pytest.mark.parametrize(
    ("signed_url", "params", "headers"),
    [
        pytest.param("wss://bot.example.com/other", {}, {}, id="signed_over_another_path"),
        pytest.param("wss://bot.example.com/media?x=1", {}, {}, id="signed_over_a_query_string"),
        pytest.param(VOICE_URL, FORM, {}, id="the_voice_webhooks_signature"),
        pytest.param("LOCAL/media", {}, {}, id="signed_over_the_url_behind_the_proxy"),
        pytest.param(
            "wss://evil.example.com/media",
            {},
            {"X-Forwarded-Host": "evil.example.com"},
            id="forwarded_headers_naming_the_signed_host",
        ),
    ],
)
async def test_media_upgrade_signed_for_another_request_is_forbidden(
    signed_url: str, params: dict[str, str], headers: dict[str, str]
) -> None:
    async with bench() as b, aiohttp.ClientSession() as http:
        local = b.server.url.replace("http://", "ws://")
        headers = {**headers, "X-Twilio-Signature": sign(signed_url.replace("LOCAL", local), params)}
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(b.server.url + "/media", headers=headers)
        assert refused.value.status == 403
        await asyncio.sleep(0.1)
        assert not b.active_calls and not b.finished_calls


# ---- POST /status --------------------------------------------------------------------------------------


def call_status_samples(text: str) -> dict[str, float]:
    found = labelled(text, "phonebot_call_status_total", "status")
    return {status: value for (status,), value in found.items()}


async def scrape(b: Bench) -> dict[str, float]:
    return call_status_samples(await exposition(b.server.url))


async def test_status_callback_signed_is_logged_without_phone_numbers_counted_and_answered_204() -> None:
    async with bench() as b:
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            status, body = await post(b, "/status", STATUS_FORM, sign(STATUS_URL, STATUS_FORM))
        assert (status, body) == (204, "")
        assert await scrape(b) == {"completed": 1}
    [entry] = [e for e in logs if e["event"] == "call_status"]
    assert entry["call_sid"] == STATUS_FORM["CallSid"]
    assert (entry["status"], entry["duration_s"]) == ("completed", 37)
    assert "5550" not in repr(entry)  # neither From nor To


@pytest.mark.parametrize(
    ("form", "signature"),
    [
        pytest.param(
            STATUS_FORM, sign(STATUS_URL, STATUS_FORM, token="not-the-auth-token"), id="wrong_token"
        ),
        pytest.param(STATUS_FORM, None, id="no_signature"),
        pytest.param(STATUS_FORM, "", id="empty_signature"),
        pytest.param(STATUS_FORM, sign(VOICE_URL, STATUS_FORM), id="signed_for_the_voice_route"),
        pytest.param(
            STATUS_FORM, sign(STATUS_URL.replace("https", "http"), STATUS_FORM), id="signed_over_http"
        ),
        pytest.param(STATUS_FORM, sign("https://other.example.com/status", STATUS_FORM), id="other_host"),
        pytest.param({**STATUS_FORM, "CallStatus": "failed"}, sign(STATUS_URL, STATUS_FORM), id="tampered"),
    ],
)
async def test_status_callback_with_a_bad_signature_is_forbidden_and_not_counted(
    form: dict[str, str], signature: str | None
) -> None:
    async with bench() as b:
        with structlog.testing.capture_logs() as logs:
            assert (await post(b, "/status", form, signature))[0] == 403
        assert await scrape(b) == {}
    assert [e["event"] for e in logs if e["event"].startswith(("call_status", "webhook_"))] == [
        "webhook_signature_rejected"
    ]


async def test_status_callbacks_are_still_accepted_while_draining() -> None:
    async with bench() as b:
        start_draining(b.server.app)
        assert (await post(b, "/voice", FORM, sign(VOICE_URL, FORM)))[0] == 503  # a new call: refused
        ringing = {**STATUS_FORM, "CallStatus": "ringing", "CallDuration": ""}
        assert (await post(b, "/status", ringing, sign(STATUS_URL, ringing)))[0] == 204
        assert await scrape(b) == {"ringing": 1}


# ---- secrets never reach logs or recordings ------------------------------------------------------------

SECRETS = {  # "/", "+" and "=" make the URL-encoded and base64 forms differ from the raw one
    "TWILIO_AUTH_TOKEN": "twTok/9c4e+Q7x=k2Lm",
    "TWILIO_API_KEY_SECRET": "twKey/3b8f+Y1u=p6Nd",  # REST's password: the key's own secret
    "OPENAI_API_KEY": "sk-oAiKey/51c2+d7=Zq",
    "CALLS_TOKEN": "callsTok/e4b1+9=Wp3-7c0a5d2e8f4b6193",
    "AWS_SECRET_ACCESS_KEY": "awsKey/7d2a+0f=Rt8u",
}

API_KEY_SID = "SK" + "5" * 32


def leak_forms(secret: str) -> set[bytes]:
    """``secret`` raw, and in base64 (plain and URL-safe) at any alignment inside a longer value (an
    ``Authorization: Basic`` header encodes ``sid:token``). URL-encoding is undone by ``leaks``."""
    found = {secret.encode()}
    for shift, head in ((0, 0), (1, 2), (2, 3)):  # base64 characters that depend on the secret alone
        core = base64.b64encode(b"\0" * shift + secret.encode())[head:-4]
        found |= {core, core.replace(b"+", b"-").replace(b"/", b"_")}
    return found


def leaks(where: str, data: bytes) -> list[str]:
    """Every secret found in ``data`` as it is or once URL-decoded (any case of ``%xx``)."""
    views = {"": data, "url-encoded ": unquote_to_bytes(data)}
    return [
        f"{name} in {where} as {view}{form!r}"
        for name, secret in SECRETS.items()
        for form in leak_forms(secret)
        for view, seen in views.items()
        if form in seen
    ]


def test_leak_forms_find_a_secret_inside_an_encoded_header() -> None:
    for prefix in ("", "A", "AB", "ABC"):
        basic = b"Authorization: Basic " + base64.b64encode(f"{prefix}AC00:{SECRETS['CALLS_TOKEN']}".encode())
        assert leaks("header", basic), prefix
    token = SECRETS["CALLS_TOKEN"]
    for encoded in (quote(token, safe=""), quote_plus(token).replace("%2B", "%2b")):
        assert leaks("url", f"/calls?token={encoded}&x=1".encode()), encoded


def leaks_under(root: Path) -> list[str]:
    files = sorted(path for path in root.rglob("*") if path.is_file())
    assert any(path.suffix == ".ulaw" for path in files)  # /calls downloaded the recording
    return [leak for path in files for leak in leaks(str(path.relative_to(root)), path.read_bytes())]


@pytest.fixture
def s3() -> Iterator[tuple[str, str, Any]]:
    """A moto S3 server on 127.0.0.1: its endpoint, an empty bucket and a client of the test's own."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint, bucket = f"http://{host}:{port}", f"calls-{uuid.uuid4().hex[:8]}"
        client: Any = s3_client(endpoint_url=endpoint, region="us-east-1", access_key_id="AKIDTEST",
                                secret_access_key=SECRETS["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
        client.create_bucket(Bucket=bucket)
        yield endpoint, bucket, client
    finally:
        server.stop()


async def test_no_secret_reaches_logs_or_recordings_of_a_whole_run(
    tmp_path: Path, s3: tuple[str, str, Any]
) -> None:
    endpoint, bucket, bucket_client = s3
    voice = ToneCodebook()  # the phone's sentences, as the transcription emulator hears them
    async with (
        OpenAIEmulator(StoreScript(first_token_delay_s=0.0, chunk_delay_s=0.0), codebook=voice) as openai_emu,
        TtsEmulator(ms_per_char=30) as tts_emu,
        TwilioRestEmulator(  # gets the key and its secret in Basic auth
            SECRETS["TWILIO_AUTH_TOKEN"], api_keys={API_KEY_SID: SECRETS["TWILIO_API_KEY_SECRET"]}
        ) as rest_emu,
    ):
        env = serve_env(
            **SECRETS, OPENAI_BASE_URL=openai_emu.base_url, GOOGLE_TTS_ENDPOINT=tts_emu.address,
            TWILIO_API_BASE_URL=rest_emu.base_url, TWILIO_API_KEY_SID=API_KEY_SID,
            STT_PROVIDER="openai", TTS_PROVIDER="google", VAD="energy",
            LOG_LEVEL="debug", RECORDINGS_DIR=str(tmp_path / "recordings"), RECORDINGS_S3_BUCKET=bucket,
            RECORDINGS_S3_ENDPOINT_URL=endpoint, RECORDINGS_S3_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="AKIDTEST", AWS_CONFIG_FILE="/nonexistent/aws-config",
            AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
        )  # fmt: skip
        async with serving(env, tmp_path, tmp_path / "bot.log") as bot:
            phone = SimulatedPhone(
                bot_url=bot.url,
                auth_token=SECRETS["TWILIO_AUTH_TOKEN"],
                public_base_url=PUBLIC_BASE_URL,
                codebook=voice,
            )
            async with await phone.dial() as call:
                await ask_after_greeting(call, "What are your opening hours on Saturday?")
                await call.say("Thank you, goodbye!")  # end_call: the bot hangs up through the REST API
                await call.wait_closed(timeout=20)
            assert call.closed_by_bot and call.protocol_errors == []
            [hang_up] = rest_emu.requests
            assert hang_up.authorized and hang_up.form == {"Status": "completed"}
            assert hang_up.username == API_KEY_SID
            await drive_the_other_routes(bot.url, call.call_sid, bucket_client, bucket)
            assert await bot.stop() == 0
    for event in ("call_ended", "call_status", "webhook_signature_rejected", "websocket_signature_rejected"):
        assert bot.events(event), f"no {event} in the log: the grep would miss that path"

    found = leaks_under(tmp_path)  # the log and the recordings folder (spool and downloads)
    objects = bucket_client.list_objects_v2(Bucket=bucket)["Contents"]
    assert len(objects) >= 3  # meta.json, events.jsonl, caller.ulaw at least: the grep is not vacuous
    for item in objects:
        found += leaks(
            "s3:" + item["Key"], bucket_client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        )
    assert found == []


async def drive_the_other_routes(url: str, call_sid: str, bucket_client: Any, bucket: str) -> None:
    """A status callback, the error paths (a forged webhook and socket, wrong tokens at /calls), then
    /calls with the token (its pages download the recording from the bucket) and /metrics."""
    token = SECRETS["CALLS_TOKEN"]
    form = {**STATUS_FORM, "CallSid": call_sid}
    signed = {"X-Twilio-Signature": sign(STATUS_URL, form, token=SECRETS["TWILIO_AUTH_TOKEN"])}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        async with http.post(url + "/status", data=form, headers=signed) as response:
            assert response.status == 204
        async with http.post(
            url + "/voice", data=FORM, headers={"X-Twilio-Signature": sign(VOICE_URL, FORM)}
        ) as r:
            assert r.status == 403  # signed with another token
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(url + "/media", headers={"X-Twilio-Signature": "forged"})
        async with http.get(url + "/calls", headers={"Authorization": "Bearer wrong-token"}) as response:
            assert response.status == 401
        async with http.get(url + "/calls?token=wrong-token") as response:
            assert response.status == 401
        recording_id = await uploaded_recording(bucket_client, bucket)
        auth = {"Authorization": f"Bearer {token}"}
        async with http.get(url + "/calls", headers=auth) as response:
            assert response.status == 200 and recording_id in await response.text()
        page = f"/calls/{recording_id}"
        async with http.get(f"{url}{page}?token={quote(token, safe='')}", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == page  # exchanged, then gone
            session = response.headers["Set-Cookie"].split(";")[0]
        async with http.get(url + page, headers={"Cookie": session}) as response:
            assert response.status == 200 and "token=" not in await response.text()
        async with http.get(f"{url}/calls/{recording_id}/call.wav", headers=auth) as response:
            assert response.status == 200 and (await response.read())[:4] == b"RIFF"
        async with http.get(url + "/metrics") as response:
            assert call_status_samples(await response.text()) == {"completed": 1}


async def uploaded_recording(bucket_client: Any, bucket: str) -> str:
    """The id of the one recording in the bucket, once its meta.json is there (uploaded after the call)."""
    async with asyncio.timeout(20):
        while True:
            listing = await asyncio.to_thread(bucket_client.list_objects_v2, Bucket=bucket)
            metas = [o["Key"] for o in listing.get("Contents", []) if o["Key"].endswith("/meta.json")]
            if metas:
                [key] = metas
                return str(key.removeprefix("recordings/").removesuffix("/meta.json"))
            await asyncio.sleep(0.1)
