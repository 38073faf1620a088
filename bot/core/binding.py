"""Binding a Media Streams socket to the webhook that started it: Twilio SIDs and the binding token.

Twilio signs the stream's WebSocket upgrade over the bare ``wss://host/media`` URL with no parameters
(https://www.twilio.com/docs/usage/webhooks/webhooks-security; Twilio's own server checks it over
``wss://{host}{path}``: twilio/twilio-agent-connect-python ``src/tac/server/signature_validation.py``,
``_build_websocket_url_and_params``), so that signature is one constant per host: it proves the socket
came from Twilio once, never which call it belongs to. Whoever saw it could open streams naming any
``callSid`` / ``accountSid`` in ``start`` and make the bot hang up or redirect other calls through REST.
So ``/voice`` (whose form *is* signed per call) mints a token over the call's sids, passes it as a
``<Parameter>`` (Twilio hands it back in ``start.customParameters``), and the stream is accepted only if
``start`` carries a token that matches its own sids.

Rules:
- Pure functions; the time is an argument. No state is kept, so any replica holding the same auth token
  checks a token another replica minted.
- Token: ``v1.<expiry unix seconds>.<base64url HMAC-SHA256>``, keyed with the account auth token over
  ``"v1|<CallSid>|<AccountSid>|<expiry>"``. The auth token is the one secret Twilio and every replica
  already share; SHA-256 rather than Twilio's SHA-1 because this is our own MAC, not Twilio's scheme.
  The signed string is versioned so a later format can never be confused with this one.
- Compared in constant time (``hmac.compare_digest``) over the whole MAC; expired tokens are refused,
  and so is an expiry further ahead than ``BINDING_TTL_S`` plus a little clock skew (never minted here).
- SIDs are Twilio's: 34 characters, a two-letter type prefix then 32 hexadecimal digits
  (https://www.twilio.com/docs/glossary/what-is-a-sid; Twilio's OpenAPI specs use the pattern
  ``^CA[0-9a-fA-F]{32}$``). Anything else (a ``/../`` that would reshape a REST path included) is refused
  before it is signed, compared or used.
- ``check_binding`` returns a ``BindingRefusal`` naming why (a bounded set: safe as a metric label and in
  logs), or None when the stream is bound. It never echoes the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Final

VERSION: Final = "v1"
# The <Parameter> name carrying the token (Twilio returns it in start.customParameters).
PARAMETER: Final = "binding"
# Twilio opens the stream as soon as it reads our TwiML (a <Connect> is all we answer), so a few
# minutes is generous; a stream that comes later than this is refused.
BINDING_TTL_S: Final = 180
# Replicas' clocks may differ by this much (NTP keeps them far closer).
CLOCK_SKEW_S: Final = 30
_MAC_BYTES: Final = 32  # HMAC-SHA256
_MAX_TOKEN_CHARS: Final = 80  # "v1." + 10-digit expiry + "." + 43 base64url chars, with room to spare

_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")


def is_sid(value: str, prefix: str) -> bool:
    """A Twilio SID of the type ``prefix`` (``CA`` call, ``AC`` account, ``SK`` API key, ``MZ`` stream)."""
    return len(value) == 34 and value.startswith(prefix) and _SID.fullmatch(value) is not None


def is_call_sid(value: str) -> bool:
    return is_sid(value, "CA")


def is_account_sid(value: str) -> bool:
    return is_sid(value, "AC")


class BindingRefusal(StrEnum):
    """Why a stream's ``start`` is not accepted."""

    BAD_CALL_SID = "bad_call_sid"  # not CA + 32 hex
    BAD_ACCOUNT_SID = "bad_account_sid"  # not AC + 32 hex
    OTHER_ACCOUNT = "other_account"  # a well-formed account that is not the configured one
    MISSING = "missing_binding"  # no token in customParameters
    MALFORMED = "malformed_binding"  # not v1.<expiry>.<mac>
    WRONG = "wrong_binding"  # the MAC does not match these sids (another call's, or forged)
    EXPIRED = "expired_binding"
    NO_START = "no_start"  # the socket sent something other than connected/start first
    START_TIMEOUT = "start_timeout"  # no start within START_TIMEOUT_S of the upgrade


def _signed_text(call_sid: str, account_sid: str, expires_at: int) -> bytes:
    return f"{VERSION}|{call_sid}|{account_sid}|{expires_at}".encode("ascii")


def _mac(auth_token: str, call_sid: str, account_sid: str, expires_at: int) -> bytes:
    return hmac.new(
        auth_token.encode(), _signed_text(call_sid, account_sid, expires_at), hashlib.sha256
    ).digest()


def mint_binding(
    auth_token: str, call_sid: str, account_sid: str, *, now: float, ttl_s: int = BINDING_TTL_S
) -> str:
    """The token ``/voice`` hands out for this call; ``ValueError`` if a sid is not Twilio-shaped."""
    if not is_call_sid(call_sid):
        raise ValueError("call sid is not CA + 32 hex digits")
    if not is_account_sid(account_sid):
        raise ValueError("account sid is not AC + 32 hex digits")
    expires_at = int(now) + ttl_s
    mac = base64.urlsafe_b64encode(_mac(auth_token, call_sid, account_sid, expires_at)).rstrip(b"=")
    return f"{VERSION}.{expires_at}.{mac.decode('ascii')}"


def binding_for_form(
    form: Mapping[str, str], auth_token: str, our_account: str | None, *, now: float
) -> str | None:
    """The token for the call a signed webhook form names; None if the form names no call of ours (another
    account than ``our_account`` when that is set, or sids Twilio never sends: never admitted anyway)."""
    account = form.get("AccountSid", "")
    if our_account is not None and account != our_account:
        return None
    try:
        return mint_binding(auth_token, form.get("CallSid", ""), account, now=now)
    except ValueError:
        return None


def _parse(token: str) -> tuple[int, bytes] | None:
    if len(token) > _MAX_TOKEN_CHARS:
        return None
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        return None
    expiry_text, mac_text = parts[1], parts[2]
    if not expiry_text.isascii() or not expiry_text.isdigit() or len(expiry_text) > 12:
        return None
    if not mac_text.isascii():
        return None
    try:
        mac = base64.urlsafe_b64decode(mac_text + "=" * (-len(mac_text) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(mac) != _MAC_BYTES:
        return None
    return int(expiry_text), mac


def check_binding(
    auth_token: str,
    parameters: Mapping[str, str],
    call_sid: str,
    account_sid: str,
    *,
    now: float,
    account: str | None = None,
) -> BindingRefusal | None:
    """None if ``start`` (its ``customParameters`` and sids) is bound to its webhook, else why not.

    ``account``: the configured account sid (``TWILIO_ACCOUNT_SID``); None accepts any account whose
    webhook we signed (the token is keyed by that account's auth token anyway).
    """
    if not is_call_sid(call_sid):
        return BindingRefusal.BAD_CALL_SID
    if not is_account_sid(account_sid):
        return BindingRefusal.BAD_ACCOUNT_SID
    if account is not None and not hmac.compare_digest(account_sid.encode(), account.encode()):
        return BindingRefusal.OTHER_ACCOUNT
    token = parameters.get(PARAMETER)
    if not token:
        return BindingRefusal.MISSING
    parsed = _parse(token)
    if parsed is None:
        return BindingRefusal.MALFORMED
    expires_at, mac = parsed
    if not hmac.compare_digest(mac, _mac(auth_token, call_sid, account_sid, expires_at)):
        return BindingRefusal.WRONG
    if now > expires_at or expires_at > now + BINDING_TTL_S + CLOCK_SKEW_S:
        return BindingRefusal.EXPIRED
    return None
