"""End to end: call-flow files served by the running bot (issue 5).

Rules:
- Every flow is YAML written into ``tmp_path``: the shipped ``flows/store.yaml`` text with a few of its
  lines changed (``store_flow``), so the tests read like the flows a support team would deploy.
- In-process tests use ``bench(flows=...)``, which loads, builds and reloads flows exactly like
  ``bot serve``; the process tests run ``bot serve`` as a real subprocess on 127.0.0.1, each bounded
  by a timeout and killed in a ``finally``.
- Which flow a call got is read from what crossed the wire (TwiML parameters, chat and TTS request
  logs) and from the bot's finished ``Call`` (``call.line``, its conversation), matched by CallSid.
- An HTTP tool's service is a local aiohttp server on 127.0.0.1 started by the test; its header
  value comes from the process environment (``monkeypatch.setenv``), as ``bot serve`` reads it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.call.call import Call
from bot.sim.rig import Bench, bench
from emulators.openai_script import ChatRequest, Reply, ScriptedToolCall
from tests.support.flows import edited, store_flow, tool_yaml, version_of, write_flow
from tests.support.phone import a_call_ended, one_call
from tests.support.served import healthz, run_bot, serve_env, serve_logged, serve_refusing

STOCK_KEY_VARIABLE = "FLOW_E2E_STOCK_API_KEY"
STOCK_KEY = "stock-key-7f1c2e"


# ---- flow files ----------------------------------------------------------------------------------------


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the only line of ``text`` that contains ``needle``."""
    found = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(found) == 1, (needle, found)
    return found[0]


# ---- calls ---------------------------------------------------------------------------------------------


def line_tag(request: ChatRequest) -> str:
    """The "Line tag: X." of the request's system prompt, or "?"."""
    system = request.messages[0].get("content", "") if request.messages else ""
    match = re.search(r"Line tag: (\w+)\.", str(system))
    return match.group(1) if match else "?"


def tagged_responder(request: ChatRequest) -> Reply:
    """Answers with the line tag of the flow the request came from."""
    return Reply(f"This is the {line_tag(request)} line.")


def first_assistant_text(call: Call) -> str:
    return next(str(m["content"]) for m in call.conversation.messages if m["role"] == "assistant")


# ---- 1. routing by the called number -------------------------------------------------------------------

DEFAULT_GREETING = "Corner Hardware, hello."
SECOND_GREETING = "Garden centre here, hi."


def two_flows(folder: Path, **second: Any) -> Path:
    write_flow(folder, "store.yaml", store_flow("store", DEFAULT_GREETING, numbers=("+15550100",),
                                                default=True, tag="store"))  # fmt: skip
    write_flow(folder, "garden.yaml", store_flow("garden", SECOND_GREETING, numbers=("+15550111",),
                                                 tag="garden", **second))  # fmt: skip
    return folder


async def test_a_call_to_a_flows_number_gets_that_flow_and_other_numbers_get_the_default(
    tmp_path: Path,
) -> None:
    async with bench(flows=str(two_flows(tmp_path))) as b:
        (garden_phone, garden), (other_phone, other) = await asyncio.gather(
            one_call(b, "+15550111"), one_call(b, "+15550177")
        )
    # The webhook names the line for people reading logs and carries the number for the stream.
    del garden_phone.parameters["binding"], other_phone.parameters["binding"]  # see test_stream_binding
    assert garden_phone.parameters == {"to": "+15550111", "from": "+15550199", "line": "garden"}
    assert other_phone.parameters == {"to": "+15550177", "from": "+15550199", "line": "store"}
    assert (garden.line.name, garden.line.greeting) == ("garden", SECOND_GREETING)
    assert (other.line.name, other.line.greeting) == ("store", DEFAULT_GREETING)
    # What each caller was greeted with (the history holds what was said).
    assert first_assistant_text(garden) == SECOND_GREETING
    assert first_assistant_text(other) == DEFAULT_GREETING
    spoken = {r["text"] for r in b.tts.synth_requests}
    assert {SECOND_GREETING, DEFAULT_GREETING} <= spoken


# ---- 2. per-flow model and temperature ----------------------------------------------------------------


async def test_flow_llm_model_and_temperature_reach_the_chat_request_and_unset_ones_are_the_servers(
    tmp_path: Path,
) -> None:
    folder = tmp_path
    store = store_flow(
        "store", DEFAULT_GREETING, numbers=("+15550100",), default=True, tag="store", llm="  temperature: 0\n"
    )
    garden = store_flow(
        "garden", SECOND_GREETING, numbers=("+15550111",), tag="garden", llm="  model: gpt-5.4-mini\n"
    )
    write_flow(folder, "store.yaml", store)
    write_flow(folder, "garden.yaml", garden)
    server_settings = {"llm_model": "gpt-6-luna", "llm_temperature": 0.7}
    async with bench(flows=str(folder), responder=tagged_responder, settings=server_settings) as b:
        await asyncio.gather(
            one_call(b, "+15550111", "Hello there."), one_call(b, "+15550100", "Hello there.")
        )
    by_line: dict[str, list[dict[str, Any]]] = {}
    for request in b.openai.chat_requests:
        by_line.setdefault(line_tag(request), []).append(request.body)
    assert set(by_line) == {"garden", "store"}, by_line.keys()

    # garden sets the model only: the server's temperature applies. Neither flow sets a reasoning effort:
    # each model gets the lowest it accepts, none (which also lets both take a temperature and tools).
    def sent(line: str) -> set[tuple[str, float | None, str | None]]:
        return {(b["model"], b.get("temperature"), b.get("reasoning_effort")) for b in by_line[line]}

    assert sent("garden") == {("gpt-5.4-mini", 0.7, "none")}
    # store sets temperature 0 only (zero is a setting, not "unset"): the server's model applies.
    assert sent("store") == {("gpt-6-luna", 0, "none")}


# ---- 3. per-flow voice --------------------------------------------------------------------------------


async def test_flow_voice_language_name_and_rate_reach_the_tts_request_and_unset_ones_are_the_servers(
    tmp_path: Path,
) -> None:
    british = "  language: en-GB\n  name: en-GB-Neural2-B\n  speaking_rate: 1.25\n"
    folder = two_flows(tmp_path, voice=british)
    server_settings = {"tts_language": "en-AU", "tts_voice": "en-AU-Neural2-C"}
    async with bench(flows=str(folder), responder=tagged_responder, settings=server_settings) as b:
        await asyncio.gather(
            one_call(b, "+15550111", "Hello there."), one_call(b, "+15550100", "Hello there.")
        )

    def voices_for(text: str) -> set[tuple[str, str, float]]:
        return {
            (r["language_code"], r["voice_name"], round(r["speaking_rate"], 3))
            for r in b.tts.synth_requests
            if r["text"] == text
        }

    # The answers were synthesized during the calls, each with its own flow's voice.
    assert voices_for("This is the garden line.") == {("en-GB", "en-GB-Neural2-B", 1.25)}
    assert voices_for("This is the store line.") == {("en-AU", "en-AU-Neural2-C", 1.0)}
    # So were the flows' clips (the greeting), whenever they were synthesized.
    assert voices_for(SECOND_GREETING) == {("en-GB", "en-GB-Neural2-B", 1.25)}
    assert voices_for(DEFAULT_GREETING) == {("en-AU", "en-AU-Neural2-C", 1.0)}


# ---- 4. an http tool during a call --------------------------------------------------------------------


@dataclass
class StockService:
    """A store's stock API on 127.0.0.1: answers ``status`` with ``answer`` (JSON) and records requests."""

    url: str = ""
    status: int = 200
    answer: dict[str, Any] = field(default_factory=lambda: {"item": "hammer", "count": 7})
    received: list[tuple[dict[str, str], Any]] = field(default_factory=list)  # (headers, JSON body)


@pytest.fixture
async def stock_service() -> AsyncIterator[StockService]:
    service = StockService()

    async def stock(request: web.Request) -> web.Response:
        body = await request.read()
        service.received.append((dict(request.headers), json.loads(body) if body else None))
        if service.status != 200:
            return web.json_response({"detail": "database down"}, status=service.status)
        return web.json_response(service.answer)

    app = web.Application()
    app.router.add_post("/stock", stock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    service.url = f"http://127.0.0.1:{runner.addresses[0][1]}/stock"
    try:
        yield service
    finally:
        await runner.cleanup()


STOCK_QUESTION = "Do you have hammers in stock?"
STOCK_DOWN = "I cannot check the stock right now."


def stock_tool(url: str, variable: str = STOCK_KEY_VARIABLE) -> str:
    return tool_yaml(
        type="http", name="stock_level", description="How many of an item the store has in stock.",
        url=url, method="POST", timeout_s="3",
    ) + (
        "    headers:\n"
        f"      X-Api-Key: env:{variable}\n"
        "    parameters:\n"
        "      type: object\n"
        "      properties:\n"
        "        item: {type: string, description: The item.}\n"
        "      required: [item]\n"
    )  # fmt: skip


def stock_responder(request: ChatRequest) -> Reply:
    """Asks the flow's http tool about stock, then words the tool's result."""
    if request.is_follow_up:
        result = json.loads(next(iter(request.tool_results.values())))
        if "error" in result:
            return Reply(STOCK_DOWN)
        return Reply(f"We have {result['count']} of them.")
    if "stock" in (request.last_user_text or "").lower():
        return Reply("", [ScriptedToolCall("stock_level", {"item": "hammer"})])
    return Reply("How can I help?")


def stock_flows(tmp_path: Path, service: StockService) -> Path:
    """A flows folder of one store flow with the stock tool of ``service``."""
    folder = tmp_path / "flows"
    folder.mkdir()
    flow = store_flow(
        "store", DEFAULT_GREETING, numbers=("+15550100",), default=True, tools=stock_tool(service.url)
    )
    write_flow(folder, "store.yaml", flow)
    return folder


async def stock_call(tmp_path: Path, service: StockService) -> tuple[Bench, Call]:
    async with bench(flows=str(stock_flows(tmp_path, service)), responder=stock_responder) as b:
        _phone, call = await one_call(b, "+15550100", STOCK_QUESTION)
    return b, call


def follow_up_tool_result(b: Bench) -> Any:
    follow_ups = [r for r in b.openai.chat_requests if r.is_follow_up]
    assert len(follow_ups) == 1, [r.messages[-1] for r in b.openai.chat_requests]
    (content,) = follow_ups[0].tool_results.values()
    return json.loads(content)


async def test_flow_http_tool_sends_the_env_header_and_its_json_reaches_the_models_follow_up(
    tmp_path: Path, stock_service: StockService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STOCK_KEY_VARIABLE, STOCK_KEY)
    b, call = await stock_call(tmp_path, stock_service)
    assert stock_service.received, "the service was never called"
    for headers, body in stock_service.received:
        assert headers.get("X-Api-Key") == STOCK_KEY
        assert body == {"item": "hammer"}
    assert follow_up_tool_result(b) == stock_service.answer
    answer = "We have 7 of them."
    assert answer in {r["text"] for r in b.tts.synth_requests}
    assert call.conversation.messages[-1] == {"role": "assistant", "content": answer}


async def test_flow_http_tool_500_is_an_error_result_and_the_caller_still_gets_an_answer(
    tmp_path: Path, stock_service: StockService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STOCK_KEY_VARIABLE, STOCK_KEY)
    stock_service.status = 500
    b, call = await stock_call(tmp_path, stock_service)
    assert stock_service.received, "the service was never called"
    result = follow_up_tool_result(b)
    assert set(result) == {"error"} and "HTTP 500" in result["error"], result
    assert "database down" not in json.dumps(result)  # the service's body is not the model's business
    assert STOCK_DOWN in {r["text"] for r in b.tts.synth_requests}
    assert call.conversation.messages[-1] == {"role": "assistant", "content": STOCK_DOWN}
    assert call.turns and call.turns[-1].error is None


async def test_a_service_that_echoes_the_header_key_puts_it_in_no_prompt_and_no_recording(
    tmp_path: Path, stock_service: StockService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 14: before, the key went to the model in the tool result and into events.jsonl (and the
    # /calls page that shows it).
    monkeypatch.setenv(STOCK_KEY_VARIABLE, STOCK_KEY)
    stock_service.answer = {"item": "hammer", "count": 7, "debug": {"X-Api-Key": STOCK_KEY}}
    async with bench(flows=str(stock_flows(tmp_path, stock_service)), responder=stock_responder) as b:
        await one_call(b, "+15550100", STOCK_QUESTION)
        await a_call_ended(b)
        files = await asyncio.to_thread(lambda: [p for p in Path(b.settings.recordings_dir).rglob("*")])
        recorded = b"".join(p.read_bytes() for p in files if p.is_file())
    assert stock_service.received[0][0].get("X-Api-Key") == STOCK_KEY
    assert follow_up_tool_result(b)["debug"] == {"X-Api-Key": "[redacted]"}
    assert STOCK_KEY not in json.dumps([r.messages for r in b.openai.chat_requests])
    assert any(p.name == "events.jsonl" for p in files) and b"hammer" in recorded
    assert STOCK_KEY.encode() not in recorded


# ---- 5. a python tool during a call -------------------------------------------------------------------


async def test_flow_python_tool_runs_in_a_call(tmp_path: Path) -> None:
    # The flow's own name for the shipped function: the model can only know it from the flow.
    opening_times = tool_yaml(
        type="python", name="opening_times", description="The store's opening hours on a day.",
        function="bot.flows.store_tools:check_hours", timeout_s="2",
    ) + "    parameters: {type: object, properties: {day: {type: string}}, required: [day]}\n"  # fmt: skip

    def responder(request: ChatRequest) -> Reply:
        if request.is_follow_up:
            result = json.loads(next(iter(request.tool_results.values())))
            return Reply(f"On {result['day']} we are open {result['hours']}.")
        if "opening_times" in request.tool_names and "open" in (request.last_user_text or ""):
            return Reply("", [ScriptedToolCall("opening_times", {"day": "Saturday"})])
        return Reply("How can I help?")

    write_flow(tmp_path, "store.yaml", store_flow("store", DEFAULT_GREETING, numbers=("+15550100",),
                                                  default=True, tools=opening_times))  # fmt: skip
    async with bench(flows=str(tmp_path), responder=responder) as b:
        _phone, call = await one_call(b, "+15550100", "When are you open on Saturday?")
    follow_up = next(r for r in b.openai.chat_requests if r.is_follow_up)
    assert [json.loads(v) for v in follow_up.tool_results.values()] == [
        {"day": "saturday", "hours": "10 am to 4 pm"}
    ]
    answer = "On saturday we are open 10 am to 4 pm."
    assert answer in {r["text"] for r in b.tts.synth_requests}
    assert call.conversation.messages[-1] == {"role": "assistant", "content": answer}


# ---- 6. bot serve refuses bad flows -------------------------------------------------------------------


def test_serve_with_invalid_flows_exits_2_with_the_same_lines_as_flows_check(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    broken = store_flow("alpha", "Hi.", numbers=("+15550101",))
    broken = edited(broken, r"^    timeout_s: 2\n", "    timeout_s: -1\n")
    broken = edited(broken, r"^  enabled: true\n(?=\nfillers)", "  enabled: true\n  enabled: false\n")
    write_flow(folder, "alpha.yaml", broken)
    write_flow(
        folder, "beta.yaml", edited(store_flow("beta", "Hi.", numbers=("+15550102",)), r"^  text:", "  txt:")
    )
    # Two valid files that clash with each other: the rules across files.
    write_flow(folder, "gamma.yaml", store_flow("gamma", "Hi.", numbers=("+15550100",), default=True))
    write_flow(folder, "gamma2.yaml", store_flow("gamma", "Hi.", numbers=("+15550100",), default=True))

    check = run_bot(["flows", "check", str(folder)], serve_env(folder), tmp_path)
    assert check.returncode == 1, check.stdout + check.stderr
    *problems, count_line = check.stdout.strip().splitlines()
    assert len(problems) >= 6 and count_line.startswith(f"{len(problems)} errors"), check.stdout
    assert any(p.startswith(f"{folder / 'alpha.yaml'}:") and "tools[0].timeout_s" in p for p in problems)

    stderr = serve_refusing(folder, tmp_path)
    assert stderr[0] == f"start-up error: {len(problems)} problems in the call flows:", stderr
    assert stderr[1:] == problems


def test_serve_refuses_a_reasoning_effort_the_model_refuses_with_tools_like_flows_check(
    tmp_path: Path,
) -> None:
    # The store flow has tools; gpt-6-luna (the default LLM_MODEL) takes them on chat completions only
    # with reasoning_effort none, so every turn of this flow would be OpenAI's 400 and the apology.
    text = store_flow("store", "Hi.", numbers=("+15550100",), default=True, llm="  reasoning_effort: low\n")
    path = write_flow(tmp_path, "store.yaml", text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith("  reasoning_effort:"))
    expected = (
        f"{path}:{line}: llm.reasoning_effort: gpt-6-luna rejects function tools with reasoning on "
        "/v1/chat/completions: use none (the server's LLM_MODEL)"
    )
    # This checkout's code in the child too, wherever the package is installed from.
    here = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
    check = run_bot(["flows", "check", str(path)], serve_env(path, **here), tmp_path)
    assert (check.returncode, check.stdout.splitlines()) == (1, [expected, "1 error in 1 file(s)"])
    assert serve_refusing(path, tmp_path, **here)[1:] == [expected]


def the_one_problem(tmp_path: Path, tools: str, marker: str, field: str) -> str:
    """``bot serve`` on a store flow with ``tools`` must refuse with one problem, at the line holding
    ``marker`` and naming ``field``: that problem's line."""
    text = store_flow("store", "Hi.", numbers=("+15550100",), default=True, tools=tools)
    path = write_flow(tmp_path, "store.yaml", text)
    stderr = serve_refusing(path, tmp_path)
    where = f"{path}:{line_of(text, marker)}: {field}:"
    assert stderr[0] == "start-up error: 1 problem in the call flows:", stderr
    assert len(stderr) == 2 and stderr[1].startswith(where), stderr
    return stderr[1]


def test_serve_with_an_http_tool_header_variable_missing_exits_2_naming_the_line_and_variable(
    tmp_path: Path,
) -> None:
    tools = stock_tool("http://127.0.0.1:9/stock", "FLOW_E2E_NOT_SET_ANYWHERE")
    problem = the_one_problem(tmp_path, tools, "X-Api-Key: env:", "tools[2].headers.X-Api-Key")
    assert "FLOW_E2E_NOT_SET_ANYWHERE" in problem


def test_serve_with_a_python_tool_that_cannot_be_imported_exits_2_naming_the_line_and_function(
    tmp_path: Path,
) -> None:
    missing = tool_yaml(
        type="python", name="stock_level", description="Stock of an item.",
        function="store_backend_not_installed.stock:level",
    )  # fmt: skip
    problem = the_one_problem(tmp_path, missing, "function: store_backend_not_installed", "tools[2].function")
    assert "store_backend_not_installed" in problem


# ---- 7. SIGHUP reloads bot serve ----------------------------------------------------------------------


async def test_sighup_reloads_flows_and_a_failed_reload_keeps_the_running_ones(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    first = store_flow("store", "Hello, first edition.", numbers=("+15550100",), default=True)
    path = write_flow(folder, "store.yaml", first)
    env = serve_env(folder)
    url = f"http://127.0.0.1:{env['PORT']}/healthz"
    async with serve_logged(env, tmp_path) as (process, log):
        # SIGHUP's handler is installed right after "listening" is logged; before that it would kill.
        await log.wait_for("listening", timeout=20)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            assert (await healthz(http, url))["flows"] == {"store": version_of(first)}

            second = store_flow("store", "Hello, second edition.", numbers=("+15550100",), default=True)
            path.write_text(second, encoding="utf-8")
            process.send_signal(signal.SIGHUP)
            async with asyncio.timeout(15):
                while True:
                    if (await healthz(http, url))["flows"] == {"store": version_of(second)}:
                        break
                    await asyncio.sleep(0.1)
            assert (await log.wait_for("flows_reloaded"))["flows"] == {"store": version_of(second)}

            path.write_text(edited(second, r"^    timeout_s: 2\n", "    timeout_s: -1\n"), encoding="utf-8")
            process.send_signal(signal.SIGHUP)
            failed = await log.wait_for("flows_reload_failed")
            assert any(
                str(path) in problem and "tools[0].timeout_s" in problem for problem in failed["problems"]
            )
            assert failed["kept"] == {"store": version_of(second)}
            health = await healthz(http, url)
            assert health["status"] == "ok"
            assert health["flows"] == {"store": version_of(second)}
            assert process.returncode is None
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 10)
        assert process.stderr is not None
        stderr = await process.stderr.read()
        assert process.returncode == 0, stderr.decode()[-2000:]


# ---- 8. a reload never changes a live call ------------------------------------------------------------


async def test_a_live_call_keeps_its_flow_across_a_reload_and_a_new_call_gets_the_new_one(
    tmp_path: Path,
) -> None:
    old = store_flow("store", "Hello, old greeting.", numbers=("+15550100",), default=True, tag="old")
    new = store_flow("store", "Hello, new greeting.", numbers=("+15550100",), default=True, tag="new")
    path = write_flow(tmp_path, "store.yaml", old)
    async with bench(flows=str(tmp_path), responder=tagged_responder) as b:
        reloaded: list[bool] = []

        async def edit_and_reload() -> None:
            path.write_text(new, encoding="utf-8")
            reloaded.append(await b.server.reload())

        _live_phone, live = await one_call(b, "+15550100", "Hello there.", after_greeting=edit_and_reload)
        live_requests = list(b.openai.chat_requests)
        _new_phone, fresh = await one_call(b, "+15550100", "Hello there.")
        fresh_requests = b.openai.chat_requests[len(live_requests) :]
    assert reloaded == [True]
    # The live call: the old greeting, the old prompt in every request made after the reload.
    assert (live.line.greeting, live.line.version) == ("Hello, old greeting.", version_of(old))
    assert live_requests and {line_tag(r) for r in live_requests} == {"old"}
    assert live.conversation.messages[-1] == {"role": "assistant", "content": "This is the old line."}
    # A call placed after the reload: the new flow from its first word.
    assert (fresh.line.greeting, fresh.line.version) == ("Hello, new greeting.", version_of(new))
    assert first_assistant_text(fresh) == "Hello, new greeting."
    assert fresh_requests and {line_tag(r) for r in fresh_requests} == {"new"}
