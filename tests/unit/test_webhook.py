"""Twilio webhook helpers: TwiML that connects the call, signature checks, public URLs.

Rules checked here (https://www.twilio.com/docs/usage/webhooks/webhooks-security): the TwiML is
well-formed XML with ``<Connect><Stream url>`` and one ``<Parameter>`` per value, escaped; signatures
are twilio's own HMAC over the exact public URL; behind a proxy the URL comes from ``PUBLIC_BASE_URL``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from bot.server.twilio.webhook import (
    SIGNATURE_HEADER,
    SignatureChecker,
    empty_twiml,
    public_http_url,
    public_url,
    public_ws_url,
    stream_twiml,
)

TOKEN = "0123456789abcdef0123456789abcdef"
VOICE_URL = "https://bot.example.com/voice?tenant=acme"
CALL_PARAMS = {"CallSid": "CA00000000000000000000000000000001", "From": "+15551230000", "To": "+15559870000"}


def parse_stream(twiml: str) -> ET.Element:
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    [connect] = list(root)
    assert connect.tag == "Connect"
    [stream] = list(connect)
    assert stream.tag == "Stream"
    return stream


# ---- TwiML ---------------------------------------------------------------------------------------


def test_stream_twiml_connects_the_call_to_the_socket_with_parameters() -> None:
    twiml = stream_twiml("wss://bot.example.com/media", {"caller": "+15551230000", "line": "store"})
    assert twiml.startswith("<?xml")
    stream = parse_stream(twiml)
    assert stream.get("url") == "wss://bot.example.com/media"
    parameters = [(p.tag, p.get("name"), p.get("value")) for p in stream]
    assert parameters == [("Parameter", "caller", "+15551230000"), ("Parameter", "line", "store")]


def test_stream_twiml_without_parameters() -> None:
    stream = parse_stream(stream_twiml("wss://bot.example.com/media", {}))
    assert list(stream) == []


def test_special_characters_are_escaped() -> None:
    name, value = 'a&b<"c">', "x < y & z > \"quoted\" 'single'"
    twiml = stream_twiml("wss://bot.example.com/media", {name: value})
    assert "<y" not in twiml and "& z" not in twiml
    [parameter] = list(parse_stream(twiml))
    assert parameter.get("name") == name
    assert parameter.get("value") == value


# Characters XML 1.0 can carry in an attribute and that no parser normalizes (no control characters).
xml_text = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffe\uffff"))


@given(parameters=st.dictionaries(xml_text.filter(bool), xml_text, max_size=4))
def test_any_parameter_values_survive_the_round_trip(parameters: dict[str, str]) -> None:
    stream = parse_stream(stream_twiml("wss://bot.example.com/media", parameters))
    assert {p.get("name"): p.get("value") for p in stream} == parameters


# ---- signatures ----------------------------------------------------------------------------------


def test_accepts_twilio_s_own_signature() -> None:
    signature = RequestValidator(TOKEN).compute_signature(VOICE_URL, CALL_PARAMS)
    assert SignatureChecker(TOKEN).valid(VOICE_URL, CALL_PARAMS, signature)


@pytest.mark.parametrize("signature", [None, "", "not-a-signature", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="])
def test_rejects_missing_or_wrong_signatures(signature: str | None) -> None:
    assert not SignatureChecker(TOKEN).valid(VOICE_URL, CALL_PARAMS, signature)


def test_rejects_a_signature_for_another_url_params_or_token() -> None:
    signature = RequestValidator(TOKEN).compute_signature(VOICE_URL, CALL_PARAMS)
    checker = SignatureChecker(TOKEN)
    assert not checker.valid("https://bot.example.com/voice?tenant=other", CALL_PARAMS, signature)
    assert not checker.valid("http://bot.example.com/voice?tenant=acme", CALL_PARAMS, signature)
    assert not checker.valid(VOICE_URL, {**CALL_PARAMS, "To": "+15550000000"}, signature)
    assert not checker.valid(VOICE_URL, {**CALL_PARAMS, "Extra": "1"}, signature)
    assert not SignatureChecker("another-token-entirely").valid(VOICE_URL, CALL_PARAMS, signature)


def test_protocols_test_vector() -> None:
    # The example vector other implementations test too (token 12345, mycompany.com/myapp.php).
    checker = SignatureChecker("12345")
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    signature = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert checker.valid(url, params, signature)
    assert not checker.valid(url.replace("https://", "http://"), params, signature)
    assert checker.valid("https://mycompany.com:443/myapp.php?foo=1&bar=2", params, signature)


def test_websocket_upgrade_is_signed_over_the_wss_url_without_params() -> None:
    url = "wss://bot.example.com/media"
    signature = RequestValidator(TOKEN).compute_signature(url, {})
    checker = SignatureChecker(TOKEN)
    assert checker.valid(url, {}, signature)
    assert not checker.valid("https://bot.example.com/media", {}, signature)


# ---- public URLs ---------------------------------------------------------------------------------


def test_urls_from_the_request_without_a_public_base() -> None:
    request = make_mocked_request("POST", "/voice?foo=1&bar=2", headers={"Host": "bot.example.com:8080"})
    assert public_http_url(request, None) == "http://bot.example.com:8080/voice?foo=1&bar=2"
    assert public_url(request, None, "/action") == "http://bot.example.com:8080/action"
    assert public_ws_url(request, None) == "wss://bot.example.com:8080/voice"
    assert public_ws_url(request, None, "/media") == "wss://bot.example.com:8080/media"


def test_urls_from_the_public_base_behind_a_tls_proxy() -> None:
    # The proxy talks plain HTTP to us, with its own Host; Twilio signed the public https URL.
    request = make_mocked_request("POST", "/voice?foo=1&bar=2", headers={"Host": "10.0.0.5:8080"})
    base = "https://bot.example.com"
    assert public_http_url(request, base) == "https://bot.example.com/voice?foo=1&bar=2"
    assert public_url(request, base, "/stream-status") == "https://bot.example.com/stream-status"
    assert public_ws_url(request, base, "/media") == "wss://bot.example.com/media"
    assert (
        public_ws_url(request, "https://bot.example.com:8443", "/media") == "wss://bot.example.com:8443/media"
    )


def test_the_websocket_url_never_carries_a_query() -> None:
    request = make_mocked_request("GET", "/media?x=1", headers={"Host": "bot.example.com"})
    assert public_ws_url(request, None) == "wss://bot.example.com/media"


def test_a_signature_over_the_public_url_validates_behind_a_proxy() -> None:
    base = "https://bot.example.com"
    signature = RequestValidator(TOKEN).compute_signature(f"{base}/voice?tenant=acme", CALL_PARAMS)
    request = make_mocked_request(
        "POST", "/voice?tenant=acme", headers={"Host": "internal:8080", SIGNATURE_HEADER: signature}
    )
    checker = SignatureChecker(TOKEN)
    header = request.headers.get(SIGNATURE_HEADER)
    assert checker.valid(public_http_url(request, base), CALL_PARAMS, header)
    # What aiohttp reconstructs on its own (http://internal:8080/...) does not validate.
    assert not checker.valid(public_http_url(request, None), CALL_PARAMS, header)


def test_a_path_prefix_in_the_public_base_is_kept_in_every_url() -> None:
    # https://example.com/bot: the proxy strips /bot, so we see /media, /status...; Twilio used /bot/...
    request = make_mocked_request("GET", "/media", headers={"Host": "10.0.0.5:8080"})
    base = "https://example.com/bot"
    assert public_ws_url(request, base) == "wss://example.com/bot/media"
    assert public_ws_url(request, base, "/media") == "wss://example.com/bot/media"
    assert public_url(request, base, "/action") == "https://example.com/bot/action"
    status = make_mocked_request("POST", "/status?x=1", headers={"Host": "10.0.0.5:8080"})
    assert public_http_url(status, base) == "https://example.com/bot/status?x=1"


def test_the_twiml_names_the_action_and_the_stream_status_callback() -> None:
    twiml = stream_twiml(
        "wss://example.com/bot/media",
        {"to": "+15550100"},
        action_url="https://example.com/bot/action",
        status_callback_url="https://example.com/bot/stream-status",
    )
    root = ET.fromstring(twiml)
    [connect] = list(root)
    assert connect.attrib == {"action": "https://example.com/bot/action"}  # method: POST by default
    [stream] = list(connect)
    assert stream.get("url") == "wss://example.com/bot/media"
    assert stream.get("statusCallback") == "https://example.com/bot/stream-status"
    assert stream.get("statusCallbackMethod") == "POST"
    assert [p.attrib for p in stream] == [{"name": "to", "value": "+15550100"}]


def test_the_empty_answer_ends_the_call() -> None:
    root = ET.fromstring(empty_twiml())
    assert root.tag == "Response" and list(root) == []
