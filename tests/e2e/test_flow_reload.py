"""End to end: flow reloads run off the event loop and coalesce; flow files are capped (issue 14, item 11).

Rules:
- A reload is held open by a gate: a Python tool whose module, when imported (which building the
  flows does), writes ``started`` (with the thread it runs in) and then waits for the test to write
  ``release``. While it waits, the bot must go on serving: that is an order, not a latency, so the
  tests do not depend on an idle machine. The gate gives up after ``GATE_WAIT_S``, so on code that
  builds on the event loop these tests fail within that time instead of hanging.
- In-process tests use ``bench(flows=...)`` (the same ``start_server`` and reload as ``bot serve``);
  the process tests run ``bot serve`` on 127.0.0.1, send it real SIGHUPs and read its JSON log.
"""

from __future__ import annotations

import asyncio
import signal
import textwrap
import uuid
from pathlib import Path

import aiohttp
import pytest

from bot.flows.files import MAX_FLOW_FILE_BYTES
from bot.server import serve as server_module
from bot.sim.rig import bench
from tests.support.flows import REPO, store_flow, tool_yaml, version_of, write_flow
from tests.support.phone import one_call
from tests.support.served import healthz, run_bot, serve_env, serve_logged, serve_refusing

GATE_WAIT_S = 20.0
FLOWS = 20


def gate_module(folder: Path) -> str:
    """Write a gate module into ``folder`` (see the module rules); its ``module:function`` tool path."""
    name = f"reload_gate_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(
        textwrap.dedent(f"""\
            import threading
            import time
            from pathlib import Path

            _HERE = Path({str(folder)!r})
            _thread = "main" if threading.current_thread() is threading.main_thread() else "worker"
            (_HERE / "started").write_text(_thread)
            _until = time.monotonic() + {GATE_WAIT_S}
            while not (_HERE / "release").exists():
                if time.monotonic() > _until:
                    raise RuntimeError("the test never opened the gate")
                time.sleep(0.02)


            async def level(item: str) -> dict[str, str]:
                return {{"item": item}}
        """),
        encoding="utf-8",
    )
    return f"{name}:level"


def gated_tool(function: str) -> str:
    return tool_yaml(
        type="python", name="stock_level", description="Stock of an item.", function=function,
    ) + "    parameters: {type: object, properties: {item: {type: string}}, required: [item]}\n"  # fmt: skip


def many_flows(folder: Path, count: int = FLOWS, tools: str = "", edition: int = 1) -> dict[str, str]:
    """``count`` flows (the first the default, its tools extended by ``tools``); name -> version."""
    versions = {}
    for i in range(count):
        name = f"line{i:02}"
        text = store_flow(name, f"Hello from line {i}, edition {edition}.", numbers=(f"+155501{i:05}",),
                          default=i == 0, tools=tools if i == 0 else "")  # fmt: skip
        write_flow(folder, f"{name}.yaml", text)
        versions[name] = version_of(text)
    return versions


async def until_exists(path: Path, timeout_s: float = GATE_WAIT_S) -> None:
    """Polls: the gate runs in another thread or process, so there is no event to wait on."""
    async with asyncio.timeout(timeout_s):
        while not await asyncio.to_thread(path.exists):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def oversized_flow() -> str:
    text = store_flow("line00", "Hello, padded.", numbers=("+15550100000",), default=True)
    return text + "#" * (MAX_FLOW_FILE_BYTES - len(text.encode("utf-8"))) + "\n"  # one byte over


# ---- in process ----------------------------------------------------------------------------------------


@pytest.fixture
def gated_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An empty flows folder, and the folder ``gate_module`` writes its gates to (importable here)."""
    folder, gates = tmp_path / "flows", tmp_path / "gates"
    folder.mkdir()
    gates.mkdir()
    monkeypatch.syspath_prepend(str(gates))
    return folder, gates


async def test_a_reload_builds_in_a_worker_thread_while_calls_are_answered(
    gated_folders: tuple[Path, Path],
) -> None:
    folder, gates = gated_folders
    before = many_flows(folder)
    async with bench(flows=str(folder)) as b:
        after = many_flows(folder, tools=gated_tool(gate_module(gates)))
        reload = asyncio.ensure_future(b.server.reload())
        await until_exists(gates / "started")
        assert (gates / "started").read_text() == "worker"
        # While the reload waits in the worker thread, a whole call is answered with the old flows.
        _phone, call = await one_call(b, "+15550100000", "Hello there.")
        assert (call.line.name, call.line.version) == ("line00", before["line00"])
        assert not reload.done()
        assert b.server.desk.book.versions() == before
        (gates / "release").write_text("")
        assert await asyncio.wait_for(reload, GATE_WAIT_S) is True
        assert b.server.desk.book.versions() == after


async def test_reload_requests_while_one_runs_make_exactly_one_more_run(
    gated_folders: tuple[Path, Path],
) -> None:
    folder, gates = gated_folders
    many_flows(folder, count=3)
    async with bench(flows=str(folder)) as b:
        assert b.server.desk.generation == 1
        many_flows(folder, count=3, tools=gated_tool(gate_module(gates)))
        first = asyncio.ensure_future(b.server.reload())
        await until_exists(gates / "started")
        # Edited again while the first reload runs: the run after it must read this edition.
        latest = many_flows(folder, count=3, edition=3)
        joined = [asyncio.ensure_future(b.server.reload()) for _ in range(3)]
        await asyncio.sleep(0.1)
        assert not first.done()
        (gates / "release").write_text("")
        results = await asyncio.wait_for(asyncio.gather(first, *joined), GATE_WAIT_S)
        assert results == [True] * 4
        assert b.server.desk.generation == 3  # the first reload and one more, not four
        assert b.server.desk.book.versions() == latest


async def test_a_reload_that_crashes_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = many_flows(tmp_path, count=2)
    async with bench(flows=str(tmp_path)) as b:

        def crash(*_args: object) -> None:
            raise RuntimeError("a bug, not a flow's mistake")

        monkeypatch.setattr(server_module, "book_from_files", crash)
        assert await b.server.reload() is False
        assert (b.server.desk.book.versions(), b.server.desk.generation) == (before, 1)
        monkeypatch.undo()
        assert await b.server.reload() is True  # and the next reload runs
        assert b.server.desk.generation == 2


# ---- bot serve -----------------------------------------------------------------------------------------


async def test_sighup_reload_of_20_flows_runs_off_the_loop_coalesces_and_refuses_an_oversized_file(
    tmp_path: Path,
) -> None:
    folder, gates = tmp_path / "flows", tmp_path / "gates"
    folder.mkdir()
    gates.mkdir()
    before = many_flows(folder)
    env = serve_env(folder, PYTHONPATH=f"{REPO}:{gates}")
    url = f"http://127.0.0.1:{env['PORT']}/healthz"
    async with serve_logged(env, tmp_path, stderr=asyncio.subprocess.STDOUT) as (process, log):
        await log.wait_for("listening", timeout=30)  # SIGHUP's handler is installed right after it
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            assert (await healthz(http, url))["flows"] == before
            after = many_flows(folder, tools=gated_tool(gate_module(gates)))
            process.send_signal(signal.SIGHUP)
            await until_exists(gates / "started")
            assert (gates / "started").read_text() == "worker"
            # The loop answers while the 20 flows are being built; two more SIGHUPs make one more run.
            assert (await healthz(http, url))["flows"] == before
            process.send_signal(signal.SIGHUP)
            await log.wait_for("flows_reload_queued")
            process.send_signal(signal.SIGHUP)
            await log.wait_for("flows_reload_queued", count=2)
            assert (await healthz(http, url))["flows"] == before
            assert log.events("flows_reloaded") == []
            (gates / "release").write_text("")
            assert (await log.wait_for("flows_reloaded", count=2, timeout=GATE_WAIT_S))["flows"] == after

            big = write_flow(folder, "line00.yaml", oversized_flow())
            process.send_signal(signal.SIGHUP)
            failed = await log.wait_for("flows_reload_failed", timeout=GATE_WAIT_S)
            assert failed["problems"] == [
                f"{big}: the file has 262,145 bytes, over the 256 KiB (262,144 bytes) a flow file may hold"
            ]
            assert failed["kept"] == after
            assert len(log.events("flows_reloaded")) == 2  # no third run was left pending
            assert (await healthz(http, url))["flows"] == after
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 15)
        assert process.returncode == 0


def test_serve_and_flows_check_refuse_an_oversized_flow_file_with_the_same_line(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "store.yaml", oversized_flow())
    expected = f"{path}: the file has 262,145 bytes, over the 256 KiB (262,144 bytes) a flow file may hold"
    check = run_bot(["flows", "check", str(path)], serve_env(path), tmp_path)
    assert (check.returncode, check.stdout.splitlines()) == (1, [expected, "1 error in 1 file(s)"])
    assert serve_refusing(path, tmp_path) == ["start-up error: 1 problem in the call flows:", expected]
