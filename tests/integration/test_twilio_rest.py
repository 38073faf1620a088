"""The real ``TwilioRest`` (twilio SDK, async client) against ``TwilioRestEmulator`` over loopback.

Every client has a short ``timeout_s`` and every wait is bounded, so nothing can hang.
"""

from __future__ import annotations

import asyncio
import base64
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.providers.twilio_rest import CallControl, TwilioRest, transfer_twiml
from emulators.twilio_rest import HANG, RestRequest, TwilioRestEmulator
from media.errors import ProviderError
from tests.support.ports import free_port as closed_port

TOKEN = "tok_0123456789abcdef0123456789abcdef"
ACCOUNT = "AC0123456789abcdef0123456789abcdef"
CALL = "CA0123456789abcdef0123456789abcdef"
PATH = f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json"
KEY = "SK" + "1" * 32
KEY_SECRET = "key_secret_abcdef0123456789"
OTHER_KEY = "SK" + "2" * 32
OTHER_KEY_SECRET = "other_key_secret_9876543210"


@pytest.fixture
async def emulator() -> AsyncIterator[TwilioRestEmulator]:
    keys = {KEY: KEY_SECRET, OTHER_KEY: OTHER_KEY_SECRET}
    async with TwilioRestEmulator(TOKEN, account_sid=ACCOUNT, api_keys=keys) as emu:
        yield emu


@pytest.fixture
async def rest(emulator: TwilioRestEmulator) -> AsyncIterator[TwilioRest]:
    client = TwilioRest(TOKEN, base_url=emulator.base_url, timeout_s=5.0)
    try:
        yield client
    finally:
        await client.aclose()


def test_twilio_rest_is_a_call_control() -> None:
    control: CallControl = TwilioRest(TOKEN)
    assert control is not None


async def test_hang_up_posts_status_completed_with_basic_auth(
    emulator: TwilioRestEmulator, rest: TwilioRest
) -> None:
    await rest.hang_up(ACCOUNT, CALL)
    assert emulator.requests == [
        RestRequest(
            method="POST",
            path=PATH,
            form={"Status": "completed"},
            username=ACCOUNT,
            authorized=True,
            account_sid=ACCOUNT,
            call_sid=CALL,
        )
    ]


async def test_redirect_posts_transfer_twiml(emulator: TwilioRestEmulator, rest: TwilioRest) -> None:
    twiml = transfer_twiml("+15550150")
    await rest.redirect(ACCOUNT, CALL, twiml)
    (request,) = await emulator.wait_for_requests(1, timeout=5.0)
    assert request.path == PATH
    assert request.authorized
    assert request.form == {"Twiml": twiml}
    root = ET.fromstring(request.form["Twiml"])
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Dial"]
    dial = root.find("Dial")
    assert dial is not None
    assert dial.text == "+15550150"


def test_transfer_twiml_minimal() -> None:
    root = ET.fromstring(transfer_twiml("+15550150"))
    assert [child.tag for child in root] == ["Dial"]
    dial = root.find("Dial")
    assert dial is not None and dial.text == "+15550150" and dial.attrib == {}


async def test_account_comes_from_the_call(emulator: TwilioRestEmulator, rest: TwilioRest) -> None:
    other = "AC" + "f" * 32
    await rest.hang_up(ACCOUNT, CALL)
    with pytest.raises(ProviderError) as refused:  # an auth token is one account's: Twilio says 401
        await rest.hang_up(other, "CA" + "e" * 32)
    first, second = await emulator.wait_for_requests(2, timeout=5.0)
    assert (first.account_sid, first.username) == (ACCOUNT, ACCOUNT)
    assert (second.account_sid, second.username) == (other, other)
    assert first.authorized and not second.authorized
    assert refused.value.kind == "http_401"


async def refused_hang_up(
    emulator: TwilioRestEmulator, token: str, api_key: tuple[str, str] | None = None
) -> ProviderError:
    """A hang-up with these credentials, from a client of its own: the error it must raise."""
    rest = TwilioRest(token, api_key=api_key, base_url=emulator.base_url, timeout_s=5.0)
    try:
        with pytest.raises(ProviderError) as info:
            await rest.hang_up(ACCOUNT, CALL)
    finally:
        await rest.aclose()
    return info.value


async def test_api_key_authenticates_with_its_own_secret(emulator: TwilioRestEmulator) -> None:
    rest = TwilioRest(TOKEN, api_key=(KEY, KEY_SECRET), base_url=emulator.base_url, timeout_s=5.0)
    try:
        await rest.hang_up(ACCOUNT, CALL)
    finally:
        await rest.aclose()
    [request] = emulator.requests
    assert (request.username, request.account_sid, request.authorized) == (KEY, ACCOUNT, True)


@pytest.mark.parametrize(
    "api_key",
    [(KEY, TOKEN), (KEY, OTHER_KEY_SECRET), ("SK" + "3" * 32, KEY_SECRET), (ACCOUNT, KEY_SECRET)],
    ids=[
        "key_with_the_auth_token",
        "key_with_another_keys_secret",
        "unknown_key",
        "account_with_a_key_secret",
    ],
)
async def test_a_wrong_credential_pairing_is_http_401(
    emulator: TwilioRestEmulator, api_key: tuple[str, str]
) -> None:
    # The bug this replaced: the key sid went out with the auth token, which real Twilio refuses.
    error = await refused_hang_up(emulator, TOKEN, api_key)
    assert (error.provider, error.kind) == ("twilio", "http_401")
    assert "code 20003" in str(error)
    for secret in (TOKEN, KEY_SECRET, OTHER_KEY_SECRET):
        assert secret not in str(error)
    assert emulator.requests[0].authorized is False


@pytest.mark.parametrize(
    ("account", "call"),
    [(ACCOUNT, "CA" + "0" * 30 + "/.."), (ACCOUNT, "CA123"), ("AC/../../x", CALL), ("", CALL)],
    ids=["call_sid_with_a_path", "short_call_sid", "account_with_a_path", "no_account"],
)
async def test_a_sid_twilio_never_made_is_refused_before_any_request(
    emulator: TwilioRestEmulator, rest: TwilioRest, account: str, call: str
) -> None:
    with pytest.raises(ProviderError) as info:
        await rest.hang_up(account, call)
    assert info.value.kind == "bad_sid"
    assert emulator.requests == []


async def test_wrong_token_is_http_401(emulator: TwilioRestEmulator) -> None:
    error = await refused_hang_up(emulator, "wrong-token")
    assert (error.provider, error.kind) == ("twilio", "http_401")
    assert "wrong-token" not in str(error)
    assert emulator.requests[0].authorized is False


@pytest.mark.parametrize("status", [500, 404, 429])
async def test_fault_status_is_http_kind(emulator: TwilioRestEmulator, rest: TwilioRest, status: int) -> None:
    emulator.faults.append(status)
    with pytest.raises(ProviderError) as info:
        await rest.hang_up(ACCOUNT, CALL)
    assert info.value.kind == f"http_{status}"
    assert TOKEN not in str(info.value)
    # The fault was used up: the next request goes through.
    await rest.hang_up(ACCOUNT, CALL)
    assert len(emulator.requests) == 2


async def test_hanging_server_is_timeout(emulator: TwilioRestEmulator) -> None:
    emulator.faults.append(HANG)
    rest = TwilioRest(TOKEN, base_url=emulator.base_url, timeout_s=0.3)
    try:
        with pytest.raises(ProviderError) as info:
            await rest.hang_up(ACCOUNT, CALL)
    finally:
        await rest.aclose()
    assert info.value.kind == "timeout"
    assert TOKEN not in str(info.value)
    assert [r.form for r in emulator.requests] == [{"Status": "completed"}]


async def test_closed_port_is_unreachable() -> None:
    rest = TwilioRest(TOKEN, base_url=f"http://127.0.0.1:{closed_port()}", timeout_s=5.0)
    try:
        with pytest.raises(ProviderError) as info:
            await rest.redirect(ACCOUNT, CALL, transfer_twiml("+15550150"))
    finally:
        await rest.aclose()
    assert info.value.kind == "unreachable"
    assert TOKEN not in str(info.value)


async def test_on_update_hook_runs_before_the_answer(emulator: TwilioRestEmulator, rest: TwilioRest) -> None:
    seen: list[RestRequest] = []

    async def on_update(request: RestRequest) -> None:
        await asyncio.sleep(0)
        seen.append(request)

    emulator.on_update = on_update
    await rest.hang_up(ACCOUNT, CALL)
    assert [r.form for r in seen] == [{"Status": "completed"}]  # already there when hang_up returned


async def test_hook_not_called_for_refused_requests(emulator: TwilioRestEmulator) -> None:
    calls: list[RestRequest] = []

    async def on_update(request: RestRequest) -> None:
        calls.append(request)

    emulator.on_update = on_update
    emulator.faults.append(500)
    rest = TwilioRest("wrong-token", base_url=emulator.base_url, timeout_s=5.0)
    try:
        for _ in range(2):
            with pytest.raises(ProviderError):
                await rest.hang_up(ACCOUNT, CALL)
    finally:
        await rest.aclose()
    assert calls == []
    assert len(emulator.requests) == 2


async def test_aclose_then_reuse(emulator: TwilioRestEmulator, rest: TwilioRest) -> None:
    await rest.hang_up(ACCOUNT, CALL)
    await rest.aclose()
    await rest.aclose()  # idempotent
    await rest.hang_up(ACCOUNT, CALL)
    assert len(emulator.requests) == 2


# --- the emulator's own checks, with a plain aiohttp client ---------------------------------------------


def basic(login: str, password: str) -> str:
    # Built by hand: aiohttp 3.14 deprecates BasicAuth, and encode_basic_auth is not in older versions.
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


async def post(url: str, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, object]]:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5.0)) as session,
        session.post(url, data=form, headers=headers) as response,
    ):
        body: dict[str, object] = await response.json()
        return response.status, body


@pytest.mark.parametrize(
    ("form", "status", "call_status"),
    [
        ({"Status": "completed"}, 200, "completed"),
        ({"Status": "canceled"}, 200, "in-progress"),
        ({"Twiml": "<Response><Hangup/></Response>"}, 200, "in-progress"),
        ({"Url": "https://example.invalid/next"}, 200, "in-progress"),
        ({}, 400, None),
        ({"Status": "busy"}, 400, None),
        ({"Twiml": "<Response/>", "Url": "https://example.invalid/next"}, 400, None),
        ({"Status": "completed", "Twiml": "<Response/>"}, 400, None),
    ],
)
async def test_emulator_validates_the_form(
    emulator: TwilioRestEmulator, form: dict[str, str], status: int, call_status: str | None
) -> None:
    got, body = await post(emulator.base_url + PATH, form, basic(ACCOUNT, TOKEN))
    assert got == status
    if call_status is None:
        assert body["status"] == 400 and isinstance(body["code"], int) and body["message"]
    else:
        assert (body["sid"], body["account_sid"], body["status"]) == (CALL, ACCOUNT, call_status)
    assert emulator.requests[0].form == form


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic("AC" + "9" * 32, TOKEN),
        basic(ACCOUNT, "nope"),
        "Basic %%%",
        "Bearer " + TOKEN,
        basic(KEY, TOKEN),
        basic(ACCOUNT, KEY_SECRET),
        basic(KEY, OTHER_KEY_SECRET),
        basic(KEY, ""),
    ],
    ids=[
        "no-auth",
        "other-account",
        "wrong-token",
        "malformed",
        "not-basic",
        "key-with-auth-token",
        "account-with-key-secret",
        "key-with-another-keys-secret",
        "key-without-secret",
    ],
)
async def test_emulator_refuses_bad_auth(emulator: TwilioRestEmulator, authorization: str | None) -> None:
    got, body = await post(emulator.base_url + PATH, {"Status": "completed"}, authorization)
    assert got == 401
    assert body == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert emulator.requests[0].authorized is False


async def test_emulator_refuses_another_accounts_path_even_with_good_credentials(
    emulator: TwilioRestEmulator,
) -> None:
    other_path = PATH.replace(ACCOUNT, "AC" + "9" * 32)
    for login, password in ((ACCOUNT, TOKEN), (KEY, KEY_SECRET)):
        got, body = await post(
            emulator.base_url + other_path, {"Status": "completed"}, basic(login, password)
        )
        assert (got, body["code"]) == (401, 20003)


async def test_emulator_answers_404_for_a_call_sid_twilio_never_made(emulator: TwilioRestEmulator) -> None:
    got, body = await post(
        emulator.base_url + PATH.replace(CALL, "CA123"), {"Status": "completed"}, basic(ACCOUNT, TOKEN)
    )
    assert (got, body["code"]) == (404, 20404)


async def test_wait_for_requests_times_out(emulator: TwilioRestEmulator) -> None:
    with pytest.raises(TimeoutError):
        await emulator.wait_for_requests(1, timeout=0.05)
