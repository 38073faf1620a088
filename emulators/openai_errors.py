"""How the emulated OpenAI API rejects a request: the checks behind its 400s, and its error bodies.

Rules:
- Wording, ``type``, ``param`` and ``code`` follow the real API, so the ``openai`` SDK raises the same
  exception classes with the same fields as against OpenAI itself.
- Pure functions: no state, no I/O beyond building the ``aiohttp`` response.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web


def tool_sequence_error(messages: list[Any]) -> tuple[str, str] | None:
    """(message, param) of the first broken tool round-trip, worded like the real API; None if fine."""
    expected: set[str] = set()  # ids of the assistant tool_calls that tool messages may answer
    pending: set[str] = set()  # ids not answered yet
    owner = -1
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return f"Invalid value for 'messages[{i}]': expected an object with a 'role'.", f"messages.[{i}]"
        if message["role"] == "tool":
            call_id = message.get("tool_call_id")
            if not expected:  # "preceeding" is the real API's spelling
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            if call_id not in expected:
                return (
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of "
                    "previous message.",
                    f"messages.[{i}].tool_call_id",
                )
            pending.discard(call_id)
            continue
        if pending:
            break
        expected, owner, calls = set(), i, message.get("tool_calls")
        if message["role"] == "assistant" and isinstance(calls, list) and calls:
            expected = {str(call.get("id")) for call in calls if isinstance(call, dict)}
            pending = set(expected)
    if pending:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: "
            f"{', '.join(sorted(pending))}",
            f"messages.[{owner}].role",
        )
    return None


def error_response(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    retry_after_ms: int | None = None,
) -> web.Response:
    err_type = "requests" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
    code = code or ("rate_limit_exceeded" if status == 429 else None)
    body = {"error": {"message": message, "type": err_type, "param": param, "code": code}}
    headers = {} if retry_after_ms is None else {"retry-after-ms": str(retry_after_ms)}
    return web.json_response(body, status=status, headers=headers)
