"""The stream binding token and Twilio SID shapes (``bot.core.binding``): pure, so checked densely."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.binding import (
    BINDING_TTL_S,
    PARAMETER,
    BindingRefusal,
    binding_for_form,
    check_binding,
    is_account_sid,
    is_call_sid,
    is_sid,
    mint_binding,
)

TOKEN = "auth-token-of-the-account"
CALL = "CA" + "0123456789abcdef" * 2
OTHER_CALL = "CA" + "f" * 32
ACCOUNT = "AC" + "fedcba9876543210" * 2
OTHER_ACCOUNT = "AC" + "1" * 32
NOW = 1_800_000_000.0

hex_digits = st.text(alphabet="0123456789abcdefABCDEF", min_size=32, max_size=32)


def bound(token: str, call: str = CALL, account: str = ACCOUNT, *, now: float = NOW) -> BindingRefusal | None:
    return check_binding(TOKEN, {PARAMETER: token}, call, account, now=now)


# ---- SIDs ----------------------------------------------------------------------------------------------


@given(hex_digits)
def test_any_prefix_plus_32_hex_digits_is_a_sid(digits: str) -> None:
    assert is_call_sid("CA" + digits) and is_account_sid("AC" + digits) and is_sid("SK" + digits, "SK")
    assert not is_call_sid("AC" + digits) and not is_account_sid("CA" + digits)


@pytest.mark.parametrize(
    "sid",
    [
        "",
        "CA",
        "CA123",
        "CA" + "0" * 31,
        "CA" + "0" * 33,
        "ca" + "0" * 32,
        "CA" + "g" * 32,
        "CA" + "0" * 31 + "\n",
        "CA" + "0" * 30 + "/..",
        "CA/../../Accounts/AC" + "0" * 14,
        "CA" + "０" * 32,  # full-width digits: \d would take them, Twilio never sends them
        " CA" + "0" * 31,
    ],
)
def test_anything_else_is_not_a_call_sid(sid: str) -> None:
    assert not is_call_sid(sid)


@given(st.text(max_size=40))
def test_a_sid_is_always_34_ascii_characters(text: str) -> None:
    if is_call_sid(text):
        assert len(text) == 34 and text.isascii() and text.isalnum()


# ---- the token ----------------------------------------------------------------------------------------


def test_a_token_minted_for_a_call_binds_that_call() -> None:
    token = mint_binding(TOKEN, CALL, ACCOUNT, now=NOW)
    assert token.startswith("v1.") and len(token) < 80
    assert bound(token) is None
    assert bound(token, now=NOW + BINDING_TTL_S) is None  # to the last second


def test_the_token_is_hmac_sha256_over_the_versioned_string() -> None:
    # The format is a contract between replicas of different versions: pin it.
    expires = int(NOW) + BINDING_TTL_S
    text = f"v1|{CALL}|{ACCOUNT}|{expires}".encode()
    mac = base64.urlsafe_b64encode(hmac.new(TOKEN.encode(), text, hashlib.sha256).digest()).rstrip(b"=")
    assert mint_binding(TOKEN, CALL, ACCOUNT, now=NOW) == f"v1.{expires}.{mac.decode()}"


@pytest.mark.parametrize(
    ("call", "account", "refusal"),
    [
        (OTHER_CALL, ACCOUNT, BindingRefusal.WRONG),
        (CALL, OTHER_ACCOUNT, BindingRefusal.WRONG),
        ("CA" + CALL[2:].upper(), ACCOUNT, BindingRefusal.WRONG),  # sids are compared as Twilio sent them
        ("CA" + "0" * 30 + "/..", ACCOUNT, BindingRefusal.BAD_CALL_SID),
        (CALL, "AC/../../Accounts/AC" + "0" * 14, BindingRefusal.BAD_ACCOUNT_SID),
    ],
)
def test_a_token_binds_no_other_call_or_account(call: str, account: str, refusal: BindingRefusal) -> None:
    assert bound(mint_binding(TOKEN, CALL, ACCOUNT, now=NOW), call, account) is refusal


def test_a_token_made_with_another_auth_token_is_wrong() -> None:
    assert bound(mint_binding("another-accounts-token", CALL, ACCOUNT, now=NOW)) is BindingRefusal.WRONG


def test_an_expired_token_is_refused() -> None:
    token = mint_binding(TOKEN, CALL, ACCOUNT, now=NOW)
    assert bound(token, now=NOW + BINDING_TTL_S + 1) is BindingRefusal.EXPIRED


def test_an_expiry_far_ahead_is_refused_even_when_signed() -> None:
    # Never minted by us (the TTL is fixed); a token that would live for a day is no token of ours.
    token = mint_binding(TOKEN, CALL, ACCOUNT, now=NOW, ttl_s=86_400)
    assert bound(token) is BindingRefusal.EXPIRED


def test_the_expiry_cannot_be_moved() -> None:
    version, expires, mac = mint_binding(TOKEN, CALL, ACCOUNT, now=NOW).split(".")
    later = f"{version}.{int(expires) + 3600}.{mac}"
    assert bound(later, now=NOW + BINDING_TTL_S + 60) is BindingRefusal.WRONG


def test_no_token_is_missing() -> None:
    assert check_binding(TOKEN, {}, CALL, ACCOUNT, now=NOW) is BindingRefusal.MISSING
    assert bound("") is BindingRefusal.MISSING


@pytest.mark.parametrize(
    "token",
    [
        "v1",
        "v1..",
        "v2.1800000180.AAAA",
        "v1.1800000180",
        "v1.-5.AAAA",
        "v1.１８００.AAAA",  # full-width digits
        "v1.1800000180.AAAA",  # a MAC of 3 bytes
        "v1.1800000180." + "A" * 43 + ".x",
        "v1.1800000180." + "*" * 43,
        "v1.1800000180." + "é" * 43,
        "v1." + "9" * 400 + "." + "A" * 43,
        "x" * 10_000,
    ],
)
def test_malformed_tokens_are_refused_as_such(token: str) -> None:
    assert bound(token) is BindingRefusal.MALFORMED


def test_the_configured_account_is_the_only_one_accepted() -> None:
    token = mint_binding(TOKEN, CALL, OTHER_ACCOUNT, now=NOW)
    params = {PARAMETER: token}
    assert (
        check_binding(TOKEN, params, CALL, OTHER_ACCOUNT, now=NOW, account=ACCOUNT)
        is BindingRefusal.OTHER_ACCOUNT
    )
    assert check_binding(TOKEN, params, CALL, OTHER_ACCOUNT, now=NOW, account=OTHER_ACCOUNT) is None
    assert check_binding(TOKEN, params, CALL, OTHER_ACCOUNT, now=NOW) is None


def test_minting_refuses_sids_twilio_never_sends() -> None:
    with pytest.raises(ValueError, match="call sid"):
        mint_binding(TOKEN, "CA123", ACCOUNT, now=NOW)
    with pytest.raises(ValueError, match="account sid"):
        mint_binding(TOKEN, CALL, "AC/../x", now=NOW)


@given(st.text(max_size=120), st.text(max_size=40), st.text(max_size=40))
def test_arbitrary_input_is_refused_never_raises(token: str, call: str, account: str) -> None:
    assert bound(token, call, account) is not None


@given(st.text(max_size=120))
def test_arbitrary_tokens_never_bind_a_real_call(token: str) -> None:
    assert bound(token) is not None


@given(hex_digits, hex_digits, st.floats(min_value=0, max_value=4e9))
def test_round_trip_for_any_sids_and_time(call: str, account: str, now: float) -> None:
    token = mint_binding(TOKEN, "CA" + call, "AC" + account, now=now)
    assert check_binding(TOKEN, {PARAMETER: token}, "CA" + call, "AC" + account, now=now) is None
    at = token.rindex(".") + 1  # the MAC's first character (its last one holds 2 unused bits)
    flipped = token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]
    assert check_binding(TOKEN, {PARAMETER: flipped}, "CA" + call, "AC" + account, now=now) is not None


def test_a_webhook_form_gets_a_token_only_for_a_call_of_ours() -> None:
    form = {"CallSid": CALL, "AccountSid": ACCOUNT}
    token = binding_for_form(form, TOKEN, ACCOUNT, now=NOW)
    assert token is not None and check_binding(TOKEN, {PARAMETER: token}, CALL, ACCOUNT, now=NOW) is None
    assert binding_for_form(form, TOKEN, None, now=NOW) is not None  # no account configured: any
    assert binding_for_form(form, TOKEN, "AC" + "0" * 32, now=NOW) is None  # another account
    assert binding_for_form({"CallSid": "CA/../x", "AccountSid": ACCOUNT}, TOKEN, None, now=NOW) is None
    assert binding_for_form({}, TOKEN, None, now=NOW) is None
