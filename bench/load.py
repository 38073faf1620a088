"""Load benchmark: N concurrent simulated calls against one ``bot serve`` process.

Three processes share the machine: the bot (``python -m bot serve``, as deployed, with the shipped store
flow), the provider emulators (OpenAI chat + transcription, Google TTS, Twilio REST) at fixed latencies,
and this one, which places the calls with the simulated Twilio phone (real time, 20 ms frames, marks
echoed only once their audio has played). Each call: greeting; opening hours (a tool call); an order
number (a slow tool: the filler, then the answer); "what else" (a plain answer, talked over after 1 s:
barge-in) then Sunday hours (a tool call); goodbye (end_call: the bot hangs up through the REST API).

Per N it prints, over all calls:
- pacing at the phones: each 20 ms frame of bot audio started this much later than the frame before it
  in the same answer (0 back to back; a stutter adds its gap), p50/p99/max, and the stutters (> 0 gaps);
- voice-to-voice overhead on the plain turns: caller's last sound -> first bot sound heard, minus the
  end-of-turn silence and the emulated STT, model first-token and TTS first-byte latencies; p50/p95;
- barge-in: caller's first sound -> ``clear`` at the phone, p95 (the flow needs 160 ms of speech);
- the bot process's CPU seconds per call-minute and resident memory per call (peak - idle) / N;
- dropped (invalid) frames and provider errors from the bot's /metrics, calls that failed at the phone,
  and recordings missing or incomplete;
- TTS requests per call-minute at the TTS emulator (unary + streaming calls): what Google's per-minute
  quotas count (Chirp 3 HD: 200 requests per minute per project by default). ``--tts-streaming on``
  speaks each answer on one streaming call; ``off`` makes one unary request per phrase.
The flow's speculation is turned off so the overhead is the bot's own work (speculation starts STT and
the model during the end-of-turn silence and would hide it). The phones' own event-loop lag is printed
too: if it is high, the generator, not the bot, is the bottleneck and the figures are pessimistic.

    python bench/load.py [--calls 10,50,100,200] [--duration 60] [--bot-loop asyncio|uvloop] [--profile DIR]
                         [--tts-streaming on|off]

``--profile DIR`` samples the bot with py-spy during each level (``DIR/bot-N.txt``, collapsed stacks) and
prints the functions where it spent most of its own time.

Figures, not assertions: this is not a test. Everything listens on 127.0.0.1; each run is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load_calls import SENTENCES, CallResult, run_slots  # noqa: E402
from bench.load_stats import Figures, summarise  # noqa: E402
from bench.loop_lag import loop_lag  # noqa: E402
from bot.sim.rig import API_KEY_SECRET, API_KEY_SID, AUTH_TOKEN, OPENAI_KEY, PUBLIC_BASE_URL  # noqa: E402
from emulators.voice import ToneCodebook  # noqa: E402

STT_S = 0.150
LLM_FIRST_TOKEN_S = 0.300
LLM_TOKEN_S = 0.0  # every word right after the first token (same chunks, no spread): a clean overhead
TTS_FIRST_BYTE_S = 0.150
END_SILENCE_S = 0.500  # the store flow's endpointing.end_silence_ms
PROVIDERS_TIMEOUT_S = 30.0  # a counts request, once the providers' process runs
# Its start (grpc, google and openai imported at the rig's nice 5): over 30 s with a CPU-bound process
# beside the suite on 2 cores (bench/suite_under_load.sh), so a bound that only a hung process reaches.
PROVIDERS_START_TIMEOUT_S = 180.0
RIG_NICE = 5
RIG_NICENESS = [0]  # this process's niceness before it yielded


def codebook() -> ToneCodebook:
    """The same sentence -> tone table in the phones' and the emulators' processes."""
    book = ToneCodebook()
    for sentence in SENTENCES:
        book.code(sentence)
    return book


async def serve_providers() -> None:
    """Child process: the emulators, until stdin closes. Prints their addresses as one JSON line, then
    answers each line read from stdin with the TTS emulator's RPC counts so far (one JSON line)."""
    from emulators.openai_server import OpenAIEmulator
    from emulators.store_script import StoreScript
    from emulators.tts_server import TtsEmulator
    from emulators.twilio_rest import TwilioRestEmulator

    # A request the bot gave up on (its timeout, a barge-in) resets the connection: not news here.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    script = StoreScript(first_token_delay_s=LLM_FIRST_TOKEN_S, chunk_delay_s=LLM_TOKEN_S)
    async with (
        OpenAIEmulator(script, codebook=codebook(), transcription_delay_s=STT_S) as openai,
        # No quota: the load run measures the bot at hundreds of calls, which needs a project whose
        # Chirp 3 HD quota was raised (deploy/README.md); bench/quota.py measures the default quota.
        TtsEmulator(first_byte_delay_s=TTS_FIRST_BYTE_S, quota=None) as tts,
        TwilioRestEmulator(AUTH_TOKEN, api_keys={API_KEY_SID: API_KEY_SECRET}) as rest,
    ):
        print(json.dumps({"openai": openai.base_url, "tts": tts.address, "rest": rest.base_url}), flush=True)
        while await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline):
            print(json.dumps(dict(tts.rpcs)), flush=True)


async def tts_counts(providers: asyncio.subprocess.Process) -> dict[str, int]:
    """The TTS emulator's RPCs so far, by kind (``unary``, ``streaming``)."""
    assert providers.stdin is not None and providers.stdout is not None
    providers.stdin.write(b"counts\n")
    await providers.stdin.drain()
    counts: dict[str, int] = json.loads(
        await asyncio.wait_for(providers.stdout.readline(), PROVIDERS_TIMEOUT_S)
    )
    return counts


@dataclass
class BotProcess:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    recordings: Path

    def cpu_s(self) -> float:
        return process_cpu_s(self.process.pid)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _unnice() -> None:
    """In the bot's child process: back to the niceness the rig had before it yielded (root only)."""
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, RIG_NICENESS[0])


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bench_flow(folder: Path) -> Path:
    """The shipped store flow with speculation off (see the module docstring)."""
    text = (ROOT / "flows" / "store.yaml").read_text()
    text, count = re.subn(r"(?m)^(\s*speculation:)\s*\w+", r"\1 off", text)
    if count != 1:
        raise SystemExit("flows/store.yaml has no endpointing.speculation line to turn off")
    path = folder / "store.yaml"
    path.write_text(text)
    return path


def start_bot(providers: dict[str, str], folder: Path, loop: str, tts_streaming: str | None) -> BotProcess:
    port = free_port()
    recordings = folder / "recordings"
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": providers["openai"],
        "GOOGLE_TTS_ENDPOINT": providers["tts"],
        "TWILIO_API_BASE_URL": providers["rest"],
        "TWILIO_API_KEY_SID": API_KEY_SID,
        "TWILIO_API_KEY_SECRET": API_KEY_SECRET,
        "STT_PROVIDER": "openai",
        "TTS_PROVIDER": "google",
        "VAD": "energy",  # the tone-coded caller is not speech (see emulators/voice.py)
        "FLOWS_PATH": str(bench_flow(folder)),
        "RECORDINGS_DIR": str(recordings),
        "LOG_LEVEL": "warning",
    }
    env["EVENT_LOOP"] = loop
    if tts_streaming is not None:
        env["TTS_STREAMING"] = "true" if tts_streaming == "on" else "false"
    command = [sys.executable, "-m", "bot", "serve"]
    log_path = folder / "bot.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_unnice
        )
    return BotProcess(process, f"http://127.0.0.1:{port}", log_path, recordings)


async def wait_ready(bot: BotProcess, session: aiohttp.ClientSession) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if bot.process.poll() is not None:
            raise SystemExit(f"the bot exited: {bot.log_path.read_text()[-2000:]}")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(bot.url + "/healthz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise SystemExit("the bot did not answer /healthz within 60 s")


async def scrape(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url + "/metrics") as response:
        return await response.text()


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "50", "--nonblocking",
               "--output", str(out)]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen[bytes], out: Path, top: int = 15) -> None:
    profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    profiler.wait(timeout=60)
    own: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if stack and samples.isdigit():
            own[stack.rsplit(";", 1)[-1]] += int(samples)
            total += int(samples)
    print(f"    profile ({total} samples, {out}): own time", flush=True)
    for frame, count in own.most_common(top):
        print(f"    {100 * count / max(total, 1):5.1f}%  {frame[:110]}", flush=True)


async def run_level(
    n: int,
    duration: float,
    providers: dict[str, str],
    rig: asyncio.subprocess.Process,
    args: argparse.Namespace,
) -> Figures:
    loop, profile = args.bot_loop, args.profile
    with tempfile.TemporaryDirectory(prefix=f"load-{n}-") as tmp:
        folder = Path(tmp)
        bot = start_bot(providers, folder, loop, args.tts_streaming)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                await wait_ready(bot, session)
                book = codebook()
                await run_slots(bot.url, book, 1, 0.0, 0.0)  # warm-up: lazy imports, first connections
                idle_rss = bot.rss_mb()
                cpu0 = bot.cpu_s()
                emulators0, phones0 = process_cpu_s(int(providers["pid"])), process_cpu_s(os.getpid())
                tts0 = await tts_counts(rig)
                wall0 = time.monotonic()
                peak = [idle_rss]
                lags: list[float] = []
                stop = asyncio.Event()

                async def sample_rss() -> None:
                    while not stop.is_set():
                        peak[0] = max(peak[0], bot.rss_mb())
                        await asyncio.sleep(0.5)

                lag = loop_lag(lags, stop, 0.01)  # the phones' own health
                monitors = [asyncio.create_task(sample_rss()), asyncio.create_task(lag)]
                profile_out = profile / f"bot-{n}.txt" if profile else None
                profiler = start_profiler(bot.process.pid, profile_out) if profile_out else None
                results: list[CallResult] = await run_slots(bot.url, book, n, min(10.0, n * 0.1), duration)
                if profiler is not None and profile_out is not None:
                    stop_profiler(profiler, profile_out)
                stop.set()
                await asyncio.gather(*monitors)
                cpu = bot.cpu_s() - cpu0
                wall = time.monotonic() - wall0
                emulators = process_cpu_s(int(providers["pid"])) - emulators0
                phones = process_cpu_s(os.getpid()) - phones0
                tts1 = await tts_counts(rig)
                metrics = await scrape(session, bot.url)  # the bot's own view: its event-loop lag
        finally:
            bot.process.terminate()
            try:
                bot.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                bot.process.kill()
                bot.process.wait()
        fixed = END_SILENCE_S + STT_S + LLM_FIRST_TOKEN_S + TTS_FIRST_BYTE_S
        return summarise(
            n,
            results,
            fixed_s=fixed,
            cpu_s=cpu,
            cores={"bot": cpu / wall, "emulators": emulators / wall, "phones": phones / wall},
            idle_rss_mb=idle_rss,
            peak_rss_mb=peak[0],
            metrics=metrics,
            phone_lags=lags,
            recordings=bot.recordings,
            log_text=bot.log_path.read_text(errors="replace"),
            tts_requests={kind: tts1.get(kind, 0) - tts0.get(kind, 0) for kind in ("unary", "streaming")},
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="10,50,100,200", help="concurrent calls per level")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds each level keeps placing calls")
    parser.add_argument("--bot-loop", choices=["asyncio", "uvloop"], default="uvloop", help="EVENT_LOOP")
    parser.add_argument("--profile", type=Path, default=None, help="folder for py-spy profiles of the bot")
    parser.add_argument(
        "--tts-streaming", choices=["on", "off"], default=None,
        help="TTS_STREAMING for the bot (default: the bot's own default)",
    )  # fmt: skip
    parser.add_argument("--providers", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.providers:
        await serve_providers()
        return
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    # The phones and the emulators are the test rig: on a shared machine they yield the CPU to the bot
    # (nice 5; the bot is put back to this process's old niceness where allowed), as they would not
    # compete with a replica that has its own CPU share.
    RIG_NICENESS[0] = os.nice(0)
    os.nice(RIG_NICE)
    print(
        f"Emulated latencies: STT {STT_S * 1000:.0f} ms, model first token {LLM_FIRST_TOKEN_S * 1000:.0f} ms "
        f"({LLM_TOKEN_S * 1000:.0f} ms per word), TTS first byte {TTS_FIRST_BYTE_S * 1000:.0f} ms; "
        f"end-of-turn silence {END_SILENCE_S * 1000:.0f} ms; bot loop {args.bot_loop}; {os.cpu_count()} CPUs",
        flush=True,
    )
    providers_process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--providers", cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert providers_process.stdout is not None
        line = await asyncio.wait_for(providers_process.stdout.readline(), PROVIDERS_START_TIMEOUT_S)
        providers = json.loads(line) | {"pid": str(providers_process.pid)}
        print(Figures.header(), flush=True)
        for n in (int(part) for part in args.calls.split(",")):
            figures = await run_level(n, args.duration, providers, providers_process, args)
            print(figures.row(), flush=True)
            print(
                "    cores used: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.cores.items()), flush=True
            )
            for problem in figures.problems[:10]:
                print(f"    {problem}", flush=True)
    finally:
        if providers_process.stdin is not None:
            providers_process.stdin.close()
        try:
            await asyncio.wait_for(providers_process.wait(), 10)
        except TimeoutError:
            providers_process.kill()


if __name__ == "__main__":
    try:
        import uvloop  # the phones' process: less of the machine for the generator, more for the bot
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
