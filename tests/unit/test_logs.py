"""configure_logging and SecretMasker: one JSON object per line, call_sid bound, secrets masked.

Rules checked here: structlog and stdlib (library) records both come out as JSON lines on the given
stream, with the bound ``call_sid``; a configured secret never appears in a log line.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from bot.core.redact import REDACTED
from bot.core.secret_values import remember
from bot.telemetry.logs import SecretMasker, configure_logging

SECRET = "sk-live-0123456789abcdef"
OTHER_SECRET = "twilio-token-fedcba9876"

pytestmark = pytest.mark.usefixtures("restore_logging")  # tests/conftest.py


@pytest.fixture
def out() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("info", secrets=[SECRET, OTHER_SECRET], stream=stream)
    return stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(r, dict) for r in records)
    return records


def test_one_json_object_per_line_with_the_bound_call_sid(out: io.StringIO) -> None:
    log = structlog.get_logger("bot.test")
    structlog.contextvars.bind_contextvars(call_sid="CA0001")
    log.info("call_started", line="store")
    log.warning("tool_timeout", tool="lookup_order", timeout_s=4.0)
    structlog.contextvars.unbind_contextvars("call_sid")
    log.info("server_idle")

    first, second, third = lines(out)
    assert first["event"] == "call_started"
    assert first["call_sid"] == "CA0001"
    assert first["line"] == "store"
    assert first["level"] == "info"
    assert first["timestamp"].endswith("Z")
    assert second == {**second, "event": "tool_timeout", "level": "warning", "tool": "lookup_order"}
    assert second["call_sid"] == "CA0001"
    assert "call_sid" not in third


def test_the_level_filters_structlog_records() -> None:
    stream = io.StringIO()
    configure_logging("warning", stream=stream)
    log = structlog.get_logger("bot.test")
    log.info("hidden")
    log.warning("shown")
    assert [r["event"] for r in lines(stream)] == ["shown"]


def test_secrets_in_event_values_are_masked(out: io.StringIO) -> None:
    log = structlog.get_logger("bot.test")
    log.info(f"request with {SECRET}", url=f"https://api.example.com/?key={SECRET}", other=OTHER_SECRET, n=5)
    [record] = lines(out)
    assert SECRET not in out.getvalue()
    assert OTHER_SECRET not in out.getvalue()
    assert record["event"] == f"request with {REDACTED}"
    assert record["url"] == f"https://api.example.com/?key={REDACTED}"
    assert record["other"] == REDACTED
    assert record["n"] == 5


def test_library_records_are_json_with_call_sid_and_masked(out: io.StringIO) -> None:
    structlog.contextvars.bind_contextvars(call_sid="CA0002")
    library = logging.getLogger("aiohttp.client")
    library.warning("retrying with header Authorization: Bearer %s", SECRET)
    library.info("library chatter below warning is dropped")
    [record] = lines(out)
    assert record["event"] == f"retrying with header Authorization: Bearer {REDACTED}"
    assert record["level"] == "warning"
    assert record["call_sid"] == "CA0002"
    assert SECRET not in out.getvalue()


def test_library_info_passes_when_the_level_is_debug() -> None:
    # Libraries stay at warning and up even when the bot logs at debug.
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    logging.getLogger("openai").info("noise")
    logging.getLogger("openai").error("real problem")
    assert [r["event"] for r in lines(stream)] == ["real problem"]


def test_secrets_in_nested_values_are_masked(out: io.StringIO) -> None:
    structlog.get_logger("bot.test").info(
        "request", headers={"Authorization": f"Bearer {SECRET}"}, keys=[SECRET]
    )
    assert SECRET not in out.getvalue()


@pytest.mark.parametrize(
    ("logger", "event"),
    [
        pytest.param(lambda: structlog.get_logger("bot.test"), "provider_failed", id="ours"),
        pytest.param(lambda: logging.getLogger("openai"), "request failed", id="a_library"),
    ],
)
def test_secrets_in_exception_text_are_masked(
    out: io.StringIO, logger: Callable[[], Any], event: str
) -> None:
    try:
        raise RuntimeError(f"401 for key {SECRET}")
    except RuntimeError:
        logger().exception(event)
    assert f'"{event}"' in out.getvalue()
    assert SECRET not in out.getvalue()


BODY = "CallSid=CA1&From=%2B15550199&Pin=4242"  # what a frame of aiohttp's body reader holds


def _read_body() -> None:
    body = BODY  # a local variable, as in aiohttp's web_request.read
    raise ConnectionResetError(f"Connection lost after {len(body)} bytes")


@pytest.mark.parametrize("logger", ["structlog", "stdlib"])
def test_tracebacks_keep_frames_and_never_frame_locals(out: io.StringIO, logger: str) -> None:
    """structlog's dict_tracebacks renders every frame's locals by default (structlog 26.1 SHOW_LOCALS);
    a request body in a local reached the log. Frames stay (file, line, function), locals never."""
    try:
        _read_body()
    except ConnectionResetError:
        if logger == "structlog":
            structlog.get_logger("bot.test").exception("request_failed")
        else:
            logging.getLogger("aiohttp.server").exception("Error handling request")
    [record] = lines(out)
    frames = record["exception"][0]["frames"]
    assert [f["name"] for f in frames][-1] == "_read_body"
    assert all("locals" not in f for f in frames)
    assert "Pin=4242" not in out.getvalue()


# ---- SecretMasker on its own ---------------------------------------------------------------------


def test_masker_replaces_every_secret_in_every_string_value() -> None:
    masker = SecretMasker([SECRET, OTHER_SECRET])
    event = {"event": f"{SECRET}{SECRET}", "a": f"x {OTHER_SECRET} y {SECRET}", "n": 3, "none": None}
    assert masker(None, "info", event) == {
        "event": f"{REDACTED}{REDACTED}",
        "a": f"x {REDACTED} y {REDACTED}",
        "n": 3,
        "none": None,
    }


def test_masker_ignores_secrets_too_short_to_mask_safely() -> None:
    # An empty or 3-character "secret" would shred every log line.
    masker = SecretMasker(["", "abc"])
    event = {"event": "abc and more abc"}
    assert masker(None, "info", dict(event)) == event


def test_masker_without_secrets_changes_nothing() -> None:
    event = {"event": "hello", "k": "v"}
    assert SecretMasker([])(None, "info", dict(event)) == event


# Issue 15: the log masker had drifted from the recorder's and the tool results' rule; each of these
# showed a secret (or crashed) before it applied bot.core.redact's.


def test_a_secret_containing_another_is_masked_whole() -> None:
    # Secrets were replaced in the order configured: the short one first left the long one's tail.
    event = SecretMasker(["abcd", "abcdefgh-long-secret"])(
        None, "info", {"event": "key abcdefgh-long-secret"}
    )
    assert event == {"event": f"key {REDACTED}"}


def test_a_secrets_json_spelling_is_masked() -> None:
    secret = 'pa"ss\\word-1234'
    event = SecretMasker([secret])(None, "info", {"event": "body", "body": json.dumps({"password": secret})})
    assert "word-1234" not in json.dumps(event) and event["body"] == json.dumps({"password": REDACTED})


def test_a_secret_in_a_key_is_masked() -> None:
    event = SecretMasker([SECRET])(None, "info", {"event": "seen", "headers": {SECRET: "x"}})
    assert event == {"event": "seen", "headers": {REDACTED: "x"}}


def test_a_self_referencing_value_ends_instead_of_recursing_forever() -> None:
    loop: list[Any] = ["x"]
    loop.append(loop)
    event = SecretMasker([SECRET])(None, "info", {"event": "e", "loop": loop})
    assert "[too deep]" in json.dumps(event)


secret_text = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=4, max_size=24)


@given(secret=secret_text, parts=st.lists(st.text(max_size=12), min_size=1, max_size=4))
def test_no_value_keeps_a_secret(secret: str, parts: list[str]) -> None:
    value = secret.join(parts) + secret
    event = SecretMasker([secret])(None, "info", {"event": value, "key": value})
    assert secret not in event["event"]
    assert secret not in event["key"]


def test_a_secret_learned_after_start_up_is_masked_from_then_on(out: io.StringIO) -> None:
    # Issue 14: an HTTP tool's header value is only known once the flows are built (or reloaded),
    # after logging was configured; bot.flows.build remembers it.
    header_value = "Bearer store-key-a1b2c3d4e5"
    log = structlog.get_logger("bot.test")
    remember([header_value])
    log.warning("tool_answer", seen={"Authorization": header_value}, token_only="store-key-a1b2c3d4e5")
    logging.getLogger("aiohttp.client").warning("sent %s", header_value)
    assert "store-key-a1b2c3d4e5" not in out.getvalue()
    first, second = lines(out)
    assert first["seen"] == {"Authorization": REDACTED} and first["token_only"] == REDACTED
    assert REDACTED in second["event"]
