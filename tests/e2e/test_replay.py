"""``bot replay`` as a team runs it in CI: a recorded demo call through today's bot, as a subprocess.

The recording is made by ``bot demo --emulated`` (a whole call in real time: a tone-coded caller, the
scripted model, emulated Google TTS, keypad entry, barge-in, tools, end_call). Replays run 8 times faster
than real time on the scaled clock. No test here depends on the machine being idle: the replayed caller
speaks relative to the replayed bot (``bot.sim.replay.schedule``), so a slow run shifts both together.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.flows.store_tools import _store_data, hours_answer, order_answer

SPEED = "8"
FAST = ["--stt", "emulated", "--speed", SPEED]
REPLAY_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def demo_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--emulated", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = {meta.parent for meta in (out / "recordings").rglob("meta.json")}
    return folder


def replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "replay", *args],
        capture_output=True,
        text=True,
        timeout=REPLAY_TIMEOUT_S,
        check=False,
    )


def test_an_unchanged_bot_replays_the_demo_call_without_differences(
    demo_recording: Path, tmp_path: Path
) -> None:
    result = replay(str(demo_recording), "--llm", "emulated", *FAST, "--keep", str(tmp_path / "replays"))
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    out = result.stdout
    # Six turns, keypad one included; the caller's barge-in may cut turn 3 at another word on a busy
    # machine: a timing difference, never a change.
    verdicts = [line.split()[2] for line in out.splitlines() if line.startswith("turn ")]
    assert len(verdicts) == 6 and set(verdicts) <= {"same", "timing"} and "CHANGED" not in out
    assert "no differences: 0 of 6 turn(s) changed" in out
    assert "(typed on the keypad: 1001)" in out and "end_call({})" in out
    # The replay recorded itself, and ended the way the recorded call did.
    (kept,) = {meta.parent for meta in (tmp_path / "replays").rglob("meta.json")}
    meta = json.loads((kept / "meta.json").read_text())
    assert meta["complete"] and meta["ended_by"] == "end_call" and meta["turns"] == 6


def copy_with_events_edited(
    recording: Path, folder: Path, edit: Callable[[dict[str, Any]], None]
) -> list[str]:
    """``recording`` copied to ``folder`` with ``edit`` applied to each of its events: the lines written."""
    shutil.copytree(recording, folder)
    events = folder / "events.jsonl"
    lines = []
    for line in events.read_text().splitlines():
        event = json.loads(line)
        edit(event)
        lines.append(json.dumps(event))
    events.write_text("\n".join(lines) + "\n")
    return lines


def test_a_recording_with_redacted_keys_replays_and_says_it_could_not_press_them(
    demo_recording: Path, tmp_path: Path
) -> None:
    """A recording made with the default privacy (keys and the caller's number redacted): replay runs,
    tells why the keypad turn differs, and does not crash."""
    def redact_keys(event: dict[str, Any]) -> None:
        if event.get("type") == "dtmf":
            event["digit"] = "[redacted]"

    folder = tmp_path / "redacted"
    lines = copy_with_events_edited(demo_recording, folder, redact_keys)
    pressed = sum('"type": "dtmf"' in line for line in lines)
    meta = json.loads((folder / "meta.json").read_text())
    meta["parameters"]["from"] = "[redacted]"
    (folder / "meta.json").write_text(json.dumps(meta))
    result = replay(str(folder), *FAST)
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]  # the keypad turn is missing
    assert "Traceback" not in result.stderr
    assert f"note: {pressed} keypad key(s) are redacted in the recording" in result.stdout
    assert "note: the caller's number is not in the recording" in result.stdout


def test_the_deterministic_replay_serves_the_recorded_answers_and_phrases(demo_recording: Path) -> None:
    result = replay(str(demo_recording), *FAST)  # --llm recorded --tts recorded are the defaults
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "0 model request(s) without a recorded answer" in result.stdout
    assert ", 0 synthesized" in result.stdout  # every phrase of the call came from the recording


def test_a_changed_prompt_shows_the_changed_answer_and_exits_1(demo_recording: Path, tmp_path: Path) -> None:
    flows = Path(__file__).resolve().parents[2] / "flows" / "store.yaml"
    edited = flows.read_text().replace(
        "You are the phone assistant of Corner Hardware,",
        "You are the phone assistant of Bolt and Nut Tools,",
    )
    assert "Bolt and Nut Tools" in edited
    flow = tmp_path / "store.yaml"
    flow.write_text(edited)
    result = replay(str(demo_recording), "--llm", "emulated", *FAST, "--flow", str(flow))
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    out = result.stdout
    assert "recorded with version" in out  # the flow's version changed
    changed = [line for line in out.splitlines() if "CHANGED" in line and line.startswith("turn")]
    assert len(changed) == 1 and changed[0].startswith("turn 3")
    assert "Bolt and Nut Tools's opening hours" in out
    assert "CHANGED: 1 of 6 turn(s) changed beyond tolerance 0" in out


def test_replay_all_prints_a_summary_and_reports_an_unreadable_recording(
    demo_recording: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "calls"
    shutil.copytree(demo_recording, folder / "good")
    broken = folder / "broken"
    broken.mkdir()
    (broken / "meta.json").write_text('{"format": 99}')
    result = replay("--all", str(folder), *FAST)
    assert result.returncode == 2, result.stdout + result.stderr[-3000:]  # the worst: one could not run
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("recording"))
    assert "turns" in lines[header] and "latency change" in lines[header]
    rows = {line.split()[0]: line for line in lines[header + 2 : header + 4]}
    assert rows["broken"].endswith("ERROR") and rows["good"].endswith("same")
    assert "2 recording(s): 1 same, 1 changed or failed" in result.stdout


@contextlib.contextmanager
def store_service() -> Iterator[tuple[str, list[str]]]:
    """The store's hours and orders as a web service on 127.0.0.1 that keeps every request's path: a
    production service a replay must not call again (a real one could refund or cancel)."""
    data = _store_data()
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/hours":
                answer = hours_answer(data["hours"], query.get("day", ""))
            else:
                answer = order_answer(data["orders"], query.get("order_id", ""))
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def http_store_flow(folder: Path, url: str) -> Path:
    """The shipped store flow with its two Python tools turned into HTTP tools of the service at ``url``
    (same names, schemas and answers)."""
    text = (Path(__file__).resolve().parents[2] / "flows" / "store.yaml").read_text()
    for name, path in (("check_hours", "hours"), ("lookup_order", "orders")):
        python = f"  - type: python\n    name: {name}\n"
        assert python in text
        text = text.replace(
            python, f"  - type: http\n    name: {name}\n    method: GET\n    url: {url}/{path}\n"
        )
        function = f"    function: bot.flows.store_tools:{name}\n"
        assert function in text
        text = text.replace(function, "")
    flow = folder / "store-http.yaml"
    flow.write_text(text)
    return flow


def test_replay_answers_the_flows_tools_from_the_recording_and_runs_them_only_when_told(
    demo_recording: Path, tmp_path: Path
) -> None:
    """issue 14, item 8: a replay repeated every tool call on the flow's services (4 requests for the
    demo call: two opening-hours and two order lookups). By default none reaches them now; the recorded
    results answer and the answers are the same. ``--tools live`` runs them, after a warning."""
    with store_service() as (url, requests):
        flow = http_store_flow(tmp_path, url)
        result = replay(str(demo_recording), *FAST, "--flow", str(flow))
        assert result.returncode == 0, result.stdout + result.stderr[-3000:]
        assert requests == []
        assert "4 tool call(s) answered from the recording, 0 not recorded" in result.stdout
        assert "WARNING" not in result.stderr

        # A call the recording has no result for (here: its result removed) is not run either: the model
        # reads an error, and the replay says which call it was.
        def drop_turn_5s_results(event: dict[str, Any]) -> None:
            if event.get("type") == "turn" and event.get("turn") == 5:
                event["llm"][0].pop("tool_results")

        folder = tmp_path / "one-result-missing"
        copy_with_events_edited(demo_recording, folder, drop_turn_5s_results)
        missing = replay(str(folder), *FAST, "--flow", str(flow))
        # The model's follow-up is still the recorded one: the answers do not change.
        assert missing.returncode == 0, missing.stdout + missing.stderr[-3000:]
        assert requests == []
        assert 'note: tool call lookup_order({"order_id":"1001"}) is not in the recording' in missing.stdout
        assert "3 tool call(s) answered from the recording, 1 not recorded" in missing.stdout

        live = replay(str(demo_recording), *FAST, "--flow", str(flow), "--tools", "live")
        assert live.returncode == 0, live.stdout + live.stderr[-3000:]
        assert "WARNING: --tools live runs the flow's http and python tools for real" in live.stderr
        assert sorted(requests) == sorted(
            ["/hours?day=saturday", "/orders?order_id=1234", "/hours?day=sunday", "/orders?order_id=1001"]
        )
        assert "answered from the recording" not in live.stdout
