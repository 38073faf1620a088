"""http_tool against a real local aiohttp server (127.0.0.1, ephemeral port) that records requests.

Rules checked here: arguments go as query parameters (GET/DELETE) or a JSON body; header values come
from the environment at build time (a missing variable is a ToolSetupError naming the header); every
failure of the service (HTTP error, not JSON, too large, too slow, unreachable, redirect) is a short
error dict for the model and one warning that holds no header value, query string or body; a 2xx
answer is its JSON or a status dict; cancellation propagates; the registry hands the model a string.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.redact import REDACTED
from bot.core.tool_calls import ToolCall
from bot.flows.tool_specs import HttpToolSpec
from bot.tools.errors import ToolSetupError
from bot.tools.http_tool import MAX_BODY_BYTES, HttpClient, http_tool
from bot.tools.registry import MAX_CALLS_PER_RESPONSE, TOO_MANY_CALLS, ToolRegistry
from tests.support.ports import free_port as closed_port

SECRET = "Bearer s3cret-token-do-not-log-42"
ENV = {"STORE_API_KEY": SECRET}
BIG_BYTES = 1024 * 1024
SLOW_SERVER_CAP_S = 5.0  # the slow handler gives up by itself even if a test forgets to release it


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    query_string: str = ""  # as sent: a name given twice shows twice


@dataclass
class Service:
    base: str
    received: list[Received] = field(default_factory=list, repr=False)
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def paths(self) -> list[str]:
        return [r.path for r in self.received]


def make_app(service: Service) -> web.Application:
    async def record(request: web.Request) -> None:
        service.received.append(
            Received(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                await request.read(),
                request.query_string,
            )
        )

    async def echo(request: web.Request) -> web.Response:
        await record(request)
        last = service.received[-1]
        body = json.loads(last.body) if last.body else None
        return web.json_response({"method": last.method, "query": last.query, "json": body})

    async def status(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=int(request.match_info["code"]))

    async def echo_headers(request: web.Request) -> web.Response:
        # A careless service that answers with the request's headers (a debug echo, an error page).
        await record(request)
        return web.json_response({"count": 7, "seen": dict(request.headers)})

    async def html(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="<html><body>Maintenance</body></html>", content_type="text/html")

    async def bad_json(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text='{"hours": "9-5"', content_type="application/json")

    async def big(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=b'"' + b"x" * (BIG_BYTES - 2) + b'"', content_type="application/json")

    async def big_chunked(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):  # the client stops reading after 64 KiB
            await response.write(b'"')
            for _ in range(BIG_BYTES // 16384):
                await response.write(b"x" * 16384)
            await response.write(b'"')
            await response.write_eof()
        return response

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        service.slow_started.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(service.release.wait(), SLOW_SERVER_CAP_S)
        return web.json_response({"late": True})

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound("/echo")

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_route("*", "/echo-headers", echo_headers)
    app.router.add_get("/html", html)
    app.router.add_get("/bad-json", bad_json)
    app.router.add_get("/big", big)
    app.router.add_get("/big-chunked", big_chunked)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect", redirect)
    return app


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    service = Service(base="")
    runner = web.AppRunner(make_app(service), access_log=None)  # its access log would show queries
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    service.base = f"http://127.0.0.1:{port}"
    try:
        yield service
    finally:
        service.release.set()
        await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    client = HttpClient()
    try:
        yield client
    finally:
        await client.aclose()


def spec(url: str, method: str = "POST", **extra: Any) -> HttpToolSpec:
    return HttpToolSpec.model_validate(
        {"type": "http", "name": "store_api", "description": "The store's API.", "url": url, "method": method}
        | extra
    )


# --- arguments and headers -------------------------------------------------------------------------


async def test_get_sends_arguments_as_query_parameters(service: Service, client: HttpClient) -> None:
    tool = http_tool(spec(service.base + "/echo?v=2", "GET"), env=ENV, client=client)
    answer = await tool.handler(day="monday", count=3, open=True, tags=["a", "b"], filter={"k": 1}, note=None)
    assert answer["method"] == "GET"
    assert answer["query"] == {
        "v": "2",  # the URL's own query is kept
        "day": "monday",
        "count": "3",
        "open": "true",
        "tags": '["a","b"]',
        "filter": '{"k":1}',
    }
    assert service.received[-1].body == b""


async def test_delete_sends_arguments_as_query_parameters(service: Service, client: HttpClient) -> None:
    tool = http_tool(spec(service.base + "/echo", "DELETE"), env=ENV, client=client)
    answer = await tool.handler(order_id="1234")
    assert (answer["method"], answer["query"], answer["json"]) == ("DELETE", {"order_id": "1234"}, None)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_other_methods_send_a_json_body(service: Service, client: HttpClient, method: str) -> None:
    tool = http_tool(spec(service.base + "/echo", method), env=ENV, client=client)
    arguments = {"order_id": "1234", "items": [1, 2], "gift": False, "note": None}
    answer = await tool.handler(**arguments)
    assert (answer["method"], answer["query"], answer["json"]) == (method, {}, arguments)
    assert service.received[-1].headers["Content-Type"].startswith("application/json")


async def test_no_arguments_post_an_empty_object(service: Service, client: HttpClient) -> None:
    tool = http_tool(spec(service.base + "/echo"), env=ENV, client=client)
    assert (await tool.handler())["json"] == {}


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    json_scalars | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
argument_names = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=st.dictionaries(argument_names, json_values, max_size=4))
async def test_any_arguments_arrive_intact(
    service: Service, client: HttpClient, arguments: dict[str, Any]
) -> None:
    get = http_tool(spec(service.base + "/echo", "GET"), env=ENV, client=client)
    post = http_tool(spec(service.base + "/echo", "POST"), env=ENV, client=client)
    query = (await get.handler(**arguments))["query"]
    assert set(query) == {name for name, value in arguments.items() if value is not None}
    for name, text in query.items():
        value = arguments[name]
        # Strings travel as they are; everything else as its JSON spelling.
        if isinstance(value, str):
            assert text == value
        else:
            assert json.loads(text) == value
    assert (await post.handler(**arguments))["json"] == arguments


async def test_header_value_comes_from_the_environment(service: Service, client: HttpClient) -> None:
    tool = http_tool(
        spec(service.base + "/echo", headers={"Authorization": "env:STORE_API_KEY"}), env=ENV, client=client
    )
    await tool.handler(day="monday")
    assert service.received[-1].headers["Authorization"] == SECRET


def test_missing_environment_variable_names_the_header_and_variable() -> None:
    with pytest.raises(ToolSetupError) as caught:
        http_tool(
            spec("http://127.0.0.1:9/x", headers={"X-Api-Key": "env:NO_SUCH_VAR_XYZ"}),
            env={},
            client=HttpClient(),
        )
    assert caught.value.loc == ("headers", "X-Api-Key")
    assert caught.value.reason == "environment variable NO_SUCH_VAR_XYZ is not set"


@pytest.mark.parametrize(("value", "problem"), [("", "is set but empty"), ("a\r\nX-Evil: 1", "line break")])
def test_unusable_environment_value_is_a_setup_error_that_never_repeats_it(value: str, problem: str) -> None:
    with pytest.raises(ToolSetupError) as caught:
        http_tool(
            spec("http://127.0.0.1:9/x", headers={"X-Api-Key": "env:STORE_API_KEY"}),
            env={"STORE_API_KEY": value},
            client=HttpClient(),
        )
    assert caught.value.loc == ("headers", "X-Api-Key")
    assert problem in caught.value.reason
    assert "STORE_API_KEY" in caught.value.reason
    if value:
        assert value not in str(caught.value)


# --- answers ---------------------------------------------------------------------------------------


async def test_json_answer_is_returned_parsed(service: Service, client: HttpClient) -> None:
    tool = http_tool(spec(service.base + "/echo", "GET"), env=ENV, client=client)
    assert await tool.handler(day="monday") == {"method": "GET", "query": {"day": "monday"}, "json": None}


@pytest.mark.parametrize("code", [200, 204])
async def test_empty_2xx_answer_is_a_status_dict(service: Service, client: HttpClient, code: int) -> None:
    tool = http_tool(spec(service.base + f"/status/{code}"), env=ENV, client=client)
    assert await tool.handler() == {"status": "ok", "http_status": code}


@pytest.mark.parametrize("code", [500, 503, 404, 401])
async def test_http_error_is_an_error_dict(service: Service, client: HttpClient, code: int) -> None:
    tool = http_tool(spec(service.base + f"/status/{code}"), env=ENV, client=client)
    assert await tool.handler() == {"error": f"store_api: the service answered HTTP {code}"}


@pytest.mark.parametrize("path", ["/html", "/bad-json"])
async def test_answer_that_is_not_json_is_an_error_dict(
    service: Service, client: HttpClient, path: str
) -> None:
    tool = http_tool(spec(service.base + path, "GET"), env=ENV, client=client)
    error = "store_api: the service answered with something that is not JSON"
    assert await tool.handler() == {"error": error}


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_answer_over_64_kib_is_an_error_dict(service: Service, client: HttpClient, path: str) -> None:
    assert BIG_BYTES > MAX_BODY_BYTES
    tool = http_tool(spec(service.base + path, "GET"), env=ENV, client=client)
    assert await tool.handler() == {"error": "store_api: the service's answer was too large"}


async def test_slow_service_is_an_error_dict_after_the_timeout(service: Service, client: HttpClient) -> None:
    tool = http_tool(spec(service.base + "/slow", "GET", timeout_s=0.3), env=ENV, client=client)
    assert await tool.handler() == {"error": "store_api: the service did not answer within 0.3 s"}
    assert service.slow_started.is_set()


async def test_closed_port_is_an_error_dict(client: HttpClient) -> None:
    tool = http_tool(spec(f"http://127.0.0.1:{closed_port()}/x"), env=ENV, client=client)
    assert await tool.handler() == {"error": "store_api: the service could not be reached"}


async def test_redirect_is_not_followed(service: Service, client: HttpClient) -> None:
    tool = http_tool(spec(service.base + "/redirect", "GET"), env=ENV, client=client)
    assert await tool.handler() == {"error": "store_api: the service answered HTTP 302"}
    assert service.paths() == ["/redirect"]


async def test_cancellation_propagates(service: Service, client: HttpClient) -> None:
    tool = http_tool(spec(service.base + "/slow", "GET", timeout_s=30), env=ENV, client=client)
    with structlog.testing.capture_logs() as logs:
        task = asyncio.ensure_future(tool.handler())
        await asyncio.wait_for(service.slow_started.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert logs == []  # a barge-in is not a failure of the service


# --- logs and the registry -------------------------------------------------------------------------


async def test_failures_log_one_warning_without_secrets_query_or_body(
    service: Service, client: HttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret_argument = "order-7777-private"
    headers = {"Authorization": "env:STORE_API_KEY"}
    paths = ["/status/500", "/bad-json", "/big", "/slow"]
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        for path in paths:
            tool = http_tool(
                spec(service.base + path, "GET", headers=headers, timeout_s=0.3), env=ENV, client=client
            )
            await tool.handler(order=secret_argument)
        unreachable = spec(f"http://127.0.0.1:{closed_port()}/x?token=url-secret-99", headers=headers)
        await http_tool(unreachable, env=ENV, client=client).handler(order=secret_argument)
    assert [(e["event"], e["log_level"], e["tool"]) for e in logs] == [
        ("http_tool_failed", "warning", "store_api")
    ] * 5
    assert [e.get("kind", e.get("status")) for e in logs] == [
        500, "not_json", "too_large", "timeout", "unreachable"
    ]
    everything = repr(logs) + caplog.text
    for private in (SECRET, "s3cret", secret_argument, "url-secret-99", "9-5", "xxxx"):
        assert private not in everything


async def test_registry_gives_the_model_the_answer_as_a_string(service: Service, client: HttpClient) -> None:
    ok = http_tool(spec(service.base + "/echo", "POST"), env=ENV, client=client)
    broken = http_tool(spec(service.base + "/status/503", name="broken"), env=ENV, client=client)
    slow = http_tool(spec(service.base + "/slow", "GET", name="slow", timeout_s=0.3), env=ENV, client=client)
    registry = ToolRegistry.of([ok, broken, slow])
    calls = [
        ToolCall(0, "call_0", "store_api", '{"order_id": "12"}', {"order_id": "12"}, None),
        ToolCall(1, "call_1", "broken", "{}", {}, None),
        ToolCall(2, "call_2", "slow", "{}", {}, None),
    ]
    results = await registry.run_all(calls)
    assert [r.content for r in results] == [
        '{"method": "POST", "query": {}, "json": {"order_id": "12"}}',
        '{"error": "broken: the service answered HTTP 503"}',
        # The request's own timeout fires before the registry's, so the model gets the precise reason.
        '{"error": "slow: the service did not answer within 0.3 s"}',
    ]


# --- hostile arguments from the model (issue 14) ----------------------------------------------------

ORDER_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "pattern": "^[0-9]{1,10}$"}},
    "required": ["order_id"],
}


def calls_of(name: str, *arguments: dict[str, Any]) -> list[ToolCall]:
    return [ToolCall(i, f"call_{i}", name, json.dumps(a), a, None) for i, a in enumerate(arguments)]


async def test_an_undeclared_argument_never_reaches_the_service(service: Service, client: HttpClient) -> None:
    # The flow fixes the tenant in the URL; a prompt-injected model adds its own. Before the fix the
    # service got "tenant=store1&order_id=12&tenant=store2" and could read either tenant.
    url = service.base + "/echo?tenant=store1"
    tool = http_tool(spec(url, "GET", parameters=ORDER_SCHEMA), env=ENV, client=client)
    (result,) = await ToolRegistry.of([tool]).run_all(
        calls_of("store_api", {"order_id": "12", "tenant": "store2"})
    )
    assert service.received == []
    assert not result.ok
    assert json.loads(result.content) == {
        "error": "bad arguments for store_api at (arguments): "
        "Additional properties are not allowed ('tenant' was unexpected)"
    }
    # The declared argument alone goes through, next to the URL's fixed query.
    (result,) = await ToolRegistry.of([tool]).run_all(calls_of("store_api", {"order_id": "12"}))
    assert result.ok and [r.query_string for r in service.received] == ["tenant=store1&order_id=12"]


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"order_id": "12 OR 1=1"}, "at order_id: '12 OR 1=1' does not match '^[0-9]{1,10}$'"),
        ({"order_id": 12}, "at order_id: 12 is not of type 'string'"),
        ({}, "at (arguments): 'order_id' is a required property"),
        ({"order_id": "1" * 5000}, "at order_id: '" + "1" * 100),
    ],
)
async def test_arguments_that_break_the_schema_are_an_error_the_model_reads(
    service: Service, client: HttpClient, arguments: dict[str, Any], problem: str
) -> None:
    tool = http_tool(spec(service.base + "/echo", "POST", parameters=ORDER_SCHEMA), env=ENV, client=client)
    (result,) = await ToolRegistry.of([tool]).run_all(calls_of("store_api", arguments))
    assert service.received == []
    error = json.loads(result.content)["error"]
    assert error.startswith("bad arguments for store_api " + problem), error
    assert len(error) <= 260  # the model's own 5000 characters are not read back to it


async def test_a_flow_may_allow_other_arguments(service: Service, client: HttpClient) -> None:
    schema = ORDER_SCHEMA | {"additionalProperties": True}
    tool = http_tool(spec(service.base + "/echo", "POST", parameters=schema), env=ENV, client=client)
    (result,) = await ToolRegistry.of([tool]).run_all(calls_of("store_api", {"order_id": "1", "note": "x"}))
    assert result.ok and json.loads(service.received[0].body) == {"order_id": "1", "note": "x"}


async def test_calls_per_response_are_capped(service: Service, client: HttpClient) -> None:
    # One response asking for 50 lookups: before the cap, 50 requests hit the service at once.
    tool = http_tool(spec(service.base + "/echo", "POST", parameters=ORDER_SCHEMA), env=ENV, client=client)
    calls = calls_of("store_api", *({"order_id": str(i)} for i in range(50)))
    results = await ToolRegistry.of([tool]).run_all(calls)
    assert len(service.received) == MAX_CALLS_PER_RESPONSE == 8
    assert [r.call.id for r in results] == [c.id for c in calls]  # every call id still gets its result
    assert all(r.ok for r in results[:8])
    for r in results[8:]:
        assert not r.ok and json.loads(r.content) == {"error": TOO_MANY_CALLS}


# --- header secrets a service echoes (issue 14) -----------------------------------------------------


async def test_an_echoed_header_secret_never_reaches_the_model(service: Service, client: HttpClient) -> None:
    headers = {"Authorization": "env:STORE_API_KEY"}
    tool = http_tool(spec(service.base + "/echo-headers", headers=headers), env=ENV, client=client)
    (result,) = await ToolRegistry.of([tool]).run_all(calls_of("store_api", {}))
    assert service.received[0].headers["Authorization"] == SECRET  # the service did get the key
    assert result.ok
    assert SECRET not in result.content and "s3cret-token-do-not-log-42" not in result.content
    assert json.loads(result.content)["seen"]["Authorization"] == REDACTED
    assert json.loads(result.content)["count"] == 7  # the rest of the answer is intact


# --- the shared session ----------------------------------------------------------------------------


def test_session_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        HttpClient().session()


async def test_one_session_is_shared_until_closed() -> None:
    client = HttpClient()
    first = client.session()
    assert client.session() is first
    await client.aclose()
    await client.aclose()  # idempotent
    assert first.closed
    second = client.session()
    assert second is not first
    await client.aclose()
