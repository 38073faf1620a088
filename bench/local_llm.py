"""Benchmark of the opt-in local LLM server (``bot local-llm``) on the store line's routing questions.

Sends the 5 support questions through the real ``openai`` SDK, streaming, with the store line's
system prompt and tool schemas, and prints per question: the tool calls made against the expected
one, the time to the first content or tool-call delta, and the total time; then the routing accuracy
and the median time to first delta. ``--follow-up`` also sends each tool result back (the second
half of a tool turn) and prints the spoken answer.

    python bench/local_llm.py --start                # starts `bot local-llm`, measures load and RSS
    python bench/local_llm.py --base-url http://127.0.0.1:8081/v1   # an already running server

Figures, not assertions: this is not a test. Needs the local-llm extra; everything is on 127.0.0.1
and every process it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import openai
from openai.types.chat import (
    ChatCompletionMessageParam,
    ChatCompletionToolUnionParam,
)
from openai.types.chat import (
    ChatCompletionToolChoiceOptionParam as ToolChoice,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.flows.line import LineConfig
from bot.sim.store_line import store_line

# (question, expected tool or None, expected arguments)
CASES: list[tuple[str, str | None, dict[str, str]]] = [
    ("What time do you open on Saturday?", "check_hours", {"day": "saturday"}),
    ("Where is my order 1234?", "lookup_order", {"order_id": "1234"}),
    ("Are you open on Sunday?", "check_hours", {"day": "sunday"}),
    ("Can you check order number 2040 for me?", "lookup_order", {"order_id": "2040"}),
    ("Thanks, that's all. Goodbye!", None, {}),
]


@dataclass
class Outcome:
    calls: list[tuple[str, str]] = field(default_factory=list)  # (name, raw arguments)
    content: str = ""
    first_delta_s: float | None = None
    total_s: float = 0.0
    finish_reason: str | None = None
    error: str | None = None


async def ask(
    client: openai.AsyncOpenAI, messages: list[dict[str, Any]], tools: list[dict[str, Any]], choice: str
) -> Outcome:
    out = Outcome()
    pending: dict[int, list[str]] = {}  # tool-call index -> [name, arguments so far]
    start = time.perf_counter()
    try:
        stream = await client.chat.completions.create(
            model="local",
            messages=cast("list[ChatCompletionMessageParam]", messages),
            tools=cast("list[ChatCompletionToolUnionParam]", tools) if tools else openai.omit,
            tool_choice=openai.omit if choice == "omit" else cast("ToolChoice", choice),
            temperature=0.0,
            stream=True,
        )
        async for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            if (delta.content or delta.tool_calls) and out.first_delta_s is None:
                out.first_delta_s = time.perf_counter() - start
            out.content += delta.content or ""
            for tc in delta.tool_calls or ():
                slot = pending.setdefault(tc.index, ["", ""])
                if tc.function and tc.function.name:
                    slot[0] = tc.function.name
                if tc.function and tc.function.arguments:
                    slot[1] += tc.function.arguments
            out.finish_reason = chunk.choices[0].finish_reason or out.finish_reason
    except openai.APIError as exc:
        out.error = f"{type(exc).__name__}: {str(exc)[:160]}"
    out.total_s = time.perf_counter() - start
    out.calls = [(name, args) for name, args in (pending[i] for i in sorted(pending))]
    if out.finish_reason is None and out.error is None:
        out.error = "stream ended without finish_reason (the bot treats this as a cut stream)"
    return out


def routed_ok(out: Outcome, tool: str | None, expected: dict[str, str]) -> bool:
    if out.error is not None:
        return False
    if tool is None:
        return not out.calls
    if len(out.calls) != 1 or out.calls[0][0] != tool:
        return False
    try:
        args = json.loads(out.calls[0][1])
    except json.JSONDecodeError:
        return False
    got = {k: "".join(ch for ch in str(v) if ch.isalnum()).lower() for k, v in args.items()}
    return got == expected


async def follow_up(
    client: openai.AsyncOpenAI, line: LineConfig, messages: list[dict[str, Any]], out: Outcome, choice: str
) -> Outcome:
    """Run the tools the model asked for and send their results back, as the bot does.

    The bot's assistant message carries ``"content": null`` next to its ``tool_calls`` (valid OpenAI);
    llama_cpp.server 0.3.36 rejects that with HTTP 500, so on an error this retries with the key left
    out and says so.
    """
    handlers = {t.name: t.handler for t in line.tools}
    calls = [{"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
             for i, (n, a) in enumerate(out.calls)]  # fmt: skip
    assistant: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": calls}
    history = [*messages, assistant]
    for call, (name, args) in zip(calls, out.calls, strict=True):
        result = await handlers[name](**json.loads(args))
        history.append({"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)})
    tools = [t.schema() for t in line.tools]
    reply = await ask(client, history, tools, choice)
    if reply.error is not None:
        print(f"     follow-up as the bot sends it (content null) failed: {reply.error[:100]}")
        del assistant["content"]
        reply = await ask(client, history, tools, choice)
    return reply


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def wait_ready(base_url: str, proc: subprocess.Popen[bytes] | None, timeout_s: float) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as resp:
                if resp.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server not ready after {timeout_s} s")


async def bench(args: argparse.Namespace, proc: subprocess.Popen[bytes] | None) -> None:
    line = store_line()
    tools = [t.schema() for t in line.tools]
    client = openai.AsyncOpenAI(api_key="no-key", base_url=args.base_url, timeout=120.0, max_retries=0)
    first: list[float] = []
    correct = 0
    print(f"tool_choice={args.tool_choice}  stream=True  base_url={args.base_url}")
    for round_ in range(args.repeat):
        for question, tool, expected in CASES:
            messages: list[dict[str, Any]] = [
                {"role": "system", "content": line.system_prompt},
                {"role": "user", "content": question},
            ]
            out = await ask(client, messages, tools, args.tool_choice)
            ok = routed_ok(out, tool, expected)
            correct += ok
            if out.first_delta_s is not None:
                first.append(out.first_delta_s)
            want = f"{tool}({json.dumps(expected)})" if tool else "no tool"
            got = ", ".join(f"{n}({a})" for n, a in out.calls) or "no tool"
            ttft = "-" if out.first_delta_s is None else f"{out.first_delta_s:.2f}s"
            print(f"[{round_ + 1}] {'OK  ' if ok else 'MISS'} {question!r}")
            print(f"     want {want} | got {got} | first delta {ttft} | total {out.total_s:.2f}s")
            if out.content:
                print(f"     content: {out.content.strip()[:200]!r}")
            if out.error:
                print(f"     error: {out.error}")
            if args.follow_up and out.calls and out.error is None:
                reply = await follow_up(client, line, messages, out, args.tool_choice)
                print(f"     follow-up ({reply.total_s:.2f}s, first delta "
                      f"{reply.first_delta_s or 0:.2f}s): {reply.content.strip()[:200]!r} "
                      f"calls={reply.calls} error={reply.error}")  # fmt: skip
    await client.close()
    total = len(CASES) * args.repeat
    median = f"{statistics.median(first):.2f}s" if first else "-"
    print(f"routing accuracy {correct}/{total}; median time to first delta {median}")
    if proc is not None:
        rss, peak = rss_mb(proc.pid)
        print(f"server RSS {rss:.0f} MB (peak {peak:.0f} MB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:8081/v1")
    parser.add_argument("--tool-choice", default="auto", help="auto | none | required | omit (as the bot)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--follow-up", action="store_true", help="also send the tool results back")
    parser.add_argument("--start", action="store_true", help="start `bot local-llm` and stop it at the end")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--chat-format", default=None, help="with --start: passed to bot local-llm")
    parser.add_argument("--server-log", default=None, help="with --start: file for the server's output")
    args = parser.parse_args()
    proc: subprocess.Popen[bytes] | None = None
    if args.start:
        args.base_url = f"http://127.0.0.1:{args.port}/v1"
        cmd = [sys.executable, "-m", "bot.local_llm.model", "--port", str(args.port)]
        if args.chat_format:
            cmd += ["--chat-format", args.chat_format]
        log = open(args.server_log, "wb") if args.server_log else subprocess.DEVNULL  # noqa: SIM115
        root = Path(__file__).resolve().parents[1]
        proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=log)
    try:
        if proc is not None:
            ready = wait_ready(args.base_url, proc, timeout_s=300)
            print(f"server ready after {ready:.2f}s (includes the sha256 check of the model file)")
            rss, peak = rss_mb(proc.pid)
            print(f"server RSS after load {rss:.0f} MB (peak {peak:.0f} MB)")
        asyncio.run(asyncio.wait_for(bench(args, proc), timeout=1800))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
