"""Reload benchmark: how long a flow reload holds the event loop that every call's audio shares.

One process on 127.0.0.1 (bot/sim/rig.py): the bot serving N copies of ``flows/store.yaml`` (each
its own name and number). A probe task sleeps 1 ms again and again; its lateness is the loop's stall.
Each round: 0.1 s of probing, one reload (``RunningServer.reload``, what SIGHUP runs), 0.1 s more.
The start-up objects are frozen out of the garbage collector's reach first, as ``bot serve`` does.
``--idle`` runs the rounds without reloading: the probe's own floor on this machine.

It prints each round's longest stall and reload time, then their median and worst.

    python bench/reload.py [--flows 20] [--rounds 10] [--idle]

Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loop_lag import loop_lag  # noqa: E402
from bot.sim.rig import bench  # noqa: E402

STORE = (Path(__file__).resolve().parents[1] / "flows" / "store.yaml").read_text(encoding="utf-8")


def write_flows(folder: Path, count: int) -> None:
    for i in range(count):
        text = re.sub(r"^name: store$", f"name: line{i:03}", STORE, count=1, flags=re.MULTILINE)
        text = re.sub(
            r"^numbers:\n(?:  - .*\n)+default: .*$",
            f'numbers: ["+1555010{i:04}"]\ndefault: {str(i == 0).lower()}',
            text,
            count=1,
            flags=re.MULTILINE,
        )
        (folder / f"line{i:03}.yaml").write_text(text, encoding="utf-8")


async def main(flows: int, rounds: int, idle: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as folder:
        write_flows(Path(folder), flows)
        async with bench(flows=folder) as b:
            await b.server.warming
            gc.freeze()  # as bot serve does once warm (bot.server.serve.serve)
            figures: list[tuple[float, float]] = []
            for _ in range(rounds):
                stalls: list[float] = []
                stop = asyncio.Event()
                task = asyncio.create_task(loop_lag(stalls, stop, 0.001))
                await asyncio.sleep(0.1)
                started = time.perf_counter()
                if idle:
                    await asyncio.sleep(0.4)
                elif not await b.server.reload():
                    raise SystemExit("the reload failed")
                took = time.perf_counter() - started
                await asyncio.sleep(0.1)
                stop.set()
                await task
                figures.append((max(stalls) * 1000, took * 1000))
    print(f"{flows} flows, {'no reload (idle)' if idle else 'reload'}:")
    print("  longest stall per round (ms):", [round(s) for s, _ in figures])
    print("  reload time per round (ms):  ", [round(t) for _, t in figures])
    stalls_ms = [s for s, _ in figures]
    print(f"  longest stall: median {statistics.median(stalls_ms):.0f} ms, worst {max(stalls_ms):.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--idle", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(args.flows, args.rounds, args.idle))
