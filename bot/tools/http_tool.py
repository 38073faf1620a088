"""An ``http`` tool declaration (a flow file's) -> a runnable ``Tool`` that calls a web service.

Rules:
- The declaration is read through ``bot.tools.declarations.HttpToolDeclaration``: this module never
  imports the flow schema (``bot.flows.build`` hands its declarations over).
- Header values are ``env:VAR`` references resolved once, when the tool is built (at flow load): a
  missing, empty or multi-line variable is a ``ToolSetupError`` at ``("headers", name)`` that names
  the variable, never its value. The resolved values are the tool's ``secrets``
  (``bot.core.secret_values.worth_masking``): the registry masks them in its results, and the flow build
  adds them to the process's secret list for logs and recordings.
- Arguments reach the handler only after the registry checked them against ``parameters`` (no key
  the schema does not declare, unless the flow allows ``additionalProperties``).
- The model's arguments go as query parameters for GET and DELETE (strings as they are, other
  scalars as their JSON spelling, lists and objects JSON-encoded, nulls left out) and as a JSON
  body for the other methods.
- Every request has its own timeout (``timeout_s``), follows no redirect (a 3xx is an answer, not a
  hop to a place nobody reviewed) and reads at most ``MAX_BODY_BYTES`` of the answer.
- The handler never raises for the service's sake: a failure is a short ``{"error": ...}`` dict
  for the model, plus one ``http_tool_failed`` warning with the tool name and the HTTP status or the
  kind of failure. Logs never hold header values, the URL's query string or a body.
- Cancellation (the caller barged in) propagates: only ``Exception``s are turned into results.
- All tools share one ``aiohttp.ClientSession`` (one connection pool) held by ``HttpClient``; it
  keeps no cookies, so nothing one caller's request set leaks into another caller's.
- ``Tool.timeout_s`` is the request timeout plus ``_REGISTRY_GRACE_S``: the request's own timeout
  fires first and gives the model (and the log) the precise reason.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import aiohttp
import structlog

from bot.core.secret_values import worth_masking
from bot.tools.declarations import HttpToolDeclaration
from bot.tools.errors import ToolSetupError
from bot.tools.registry import Tool

MAX_BODY_BYTES = 64 * 1024
_ENV_PREFIX = "env:"
_QUERY_METHODS = frozenset({"GET", "DELETE"})
_REGISTRY_GRACE_S = 0.5

log = structlog.get_logger(__name__)


class HttpClient:
    """The process-wide HTTP connection pool, created on first use inside the running event loop."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()  # RuntimeError outside a loop: a session is bound to one
        if self._session is not None and not self._session.closed:
            if self._loop is not loop:
                raise RuntimeError("HttpClient's session belongs to another event loop; aclose() it first")
            return self._session
        self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        self._loop = loop
        return self._session

    async def aclose(self) -> None:
        session, self._session, self._loop = self._session, None, None
        if session is not None and not session.closed:
            await session.close()


def _resolve_headers(spec: HttpToolDeclaration, env: Mapping[str, str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, reference in spec.headers.items():
        variable = reference.removeprefix(_ENV_PREFIX)
        value = env.get(variable)
        if value is None:
            raise ToolSetupError(("headers", name), f"environment variable {variable} is not set")
        if not value.strip():
            raise ToolSetupError(("headers", name), f"environment variable {variable} is set but empty")
        if any((ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in value):
            raise ToolSetupError(
                ("headers", name),
                f"environment variable {variable} holds a line break or control character, "
                "which a header value cannot contain",
            )
        headers[name] = value
    return headers


def _query_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _query_parameters(arguments: Mapping[str, Any]) -> dict[str, str]:
    """The model's arguments as query parameters: strings as they are, everything else as JSON."""
    return {name: _query_value(value) for name, value in arguments.items() if value is not None}


async def _read_limited(response: aiohttp.ClientResponse) -> bytes | None:
    """The body, or None when it is longer than ``MAX_BODY_BYTES`` (the rest is never read)."""
    if response.content_length is not None and response.content_length > MAX_BODY_BYTES:
        return None
    body = bytearray()
    while len(body) <= MAX_BODY_BYTES:
        chunk = await response.content.read(MAX_BODY_BYTES + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
    return None


def http_tool(spec: HttpToolDeclaration, *, env: Mapping[str, str], client: HttpClient) -> Tool:
    """Resolve the declared headers now and return a tool that sends the model's arguments."""
    headers = _resolve_headers(spec, env)
    name, method, url = spec.name, spec.method, spec.url
    timeout = aiohttp.ClientTimeout(total=spec.timeout_s)

    def failed(reason: str, **fields: Any) -> dict[str, str]:
        log.warning("http_tool_failed", tool=name, **fields)
        return {"error": f"{name}: {reason}"}

    async def call_service(**arguments: Any) -> Any:
        if method in _QUERY_METHODS:
            payload: dict[str, Any] = {"params": _query_parameters(arguments)}
        else:
            payload = {"json": arguments}
        try:
            async with client.session().request(
                method, url, headers=headers, timeout=timeout, allow_redirects=False, **payload
            ) as response:
                status = response.status
                if not 200 <= status < 300:
                    return failed(f"the service answered HTTP {status}", status=status)
                body = await _read_limited(response)
        except TimeoutError:  # aiohttp's own timeout; an outer asyncio.timeout arrives as cancellation
            return failed(f"the service did not answer within {spec.timeout_s:g} s", kind="timeout")
        except aiohttp.ClientError as exc:
            return failed("the service could not be reached", kind="unreachable", error=type(exc).__name__)
        if body is None:
            return failed("the service's answer was too large", kind="too_large", status=status)
        if not body.strip():
            return {"status": "ok", "http_status": status}
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # bad JSON, bad UTF-8, or nested too deeply
            return failed(
                "the service answered with something that is not JSON", kind="not_json", status=status
            )

    return Tool(
        name=spec.name,
        description=spec.description,
        parameters=spec.parameters,
        handler=call_service,
        timeout_s=spec.timeout_s + _REGISTRY_GRACE_S,
        filler=spec.filler,
        secrets=worth_masking(headers.values()),
    )
