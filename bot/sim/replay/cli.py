"""``bot replay RECORDING`` and ``bot replay --all DIR``: recorded calls through today's bot, as a regression
test a team can run in CI.

Rules:
- Exit status: 0 when no turn changed beyond ``--tolerance`` (and every call ended the same way), 1 when
  one did, 2 when a replay could not run (bad options, a flow that does not load, a recording that
  cannot be read: missing, bad meta, unreadable files), with one line saying why, never a traceback.
  A recording whose events.jsonl had lines skipped as damaged (``bot.recording.reader``) is not a
  reference either: exit 2 naming the first bad line (``bot inspect`` shows the rest of the call).
- ``--tools recorded`` (the default) answers the flow's tools from the recording; ``--tools live`` runs
  them again and first prints a warning to stderr that their side effects repeat.
- ``--tolerance`` is the word distance an answer may move (0: any changed word counts); tool calls must
  match exactly.
- ``--all DIR`` replays every recording under DIR (any folder holding a ``meta.json``), one after another,
  prints each call's diff and then one summary row per call; its exit status is the worst of them.
- The bot's own log lines go to ``--log`` (default: nowhere), so the report is what stdout shows.
- Importing this module is cheap (``bot.cli`` imports it for every command): the replay machinery is
  imported when a replay runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from bot.sim.replay.runner import ReplayOptions, ReplayResult


LIVE_TOOLS_WARNING = (
    "WARNING: --tools live runs the flow's http and python tools for real: every call the replayed bot "
    "makes reaches their services again with the model's arguments, and their side effects (a refund, a "
    "cancellation, a message) happen again. Hang-ups and transfers still go to the local Twilio emulator."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", nargs="?", help="a recording folder (…/<day>/<call sid>)")
    parser.add_argument("--all", metavar="DIR", help="replay every recording under DIR and print a summary")
    parser.add_argument(
        "--flow", help="flow file or folder to replay with (default: FLOWS_PATH, else flows/)"
    )
    parser.add_argument(
        "--llm",
        choices=("recorded", "emulated", "live"),
        default="recorded",
        help="the model: its recorded answers (deterministic), the scripted emulator, or the environment's",
    )
    parser.add_argument(
        "--tts",
        choices=("recorded", "emulated", "live"),
        default="recorded",
        help="the voice: recorded phrases (new ones from the emulator), the emulator, or the environment's",
    )
    parser.add_argument(
        "--stt",
        choices=("emulated", "embedded", "live"),
        default="embedded",
        help="hearing: embedded Whisper, the emulator (tone-coded test callers), or the environment's",
    )
    parser.add_argument(
        "--tools",
        choices=("recorded", "live"),
        default="recorded",
        help="the flow's http and python tools: their recorded results (nothing is called; a call the "
        "recording lacks gets an error), or run them again for real, REPEATING THEIR SIDE EFFECTS "
        "(refunds, cancellations...) on the services they reach",
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, help="clock speed: 4 replays four times faster than real time"
    )
    parser.add_argument(
        "--tolerance", type=float, default=0.0, help="word distance an answer may move (0 to 1; default 0)"
    )
    parser.add_argument("--keep", help="keep the replays' own recordings in this folder")
    parser.add_argument("--log", help="write the bot's JSON log lines to this file")


def run(args: argparse.Namespace) -> int:
    if bool(args.recording) == bool(args.all):
        print("give one RECORDING, or --all DIR", file=sys.stderr)
        return 2
    if not 0.0 <= args.tolerance <= 1.0 or not 0.1 <= args.speed <= 20:
        print("--tolerance must be within 0..1 and --speed within 0.1..20", file=sys.stderr)
        return 2
    from bot.sim.replay.runner import ReplayOptions

    options = ReplayOptions(
        flow=Path(args.flow) if args.flow else None,
        llm=args.llm,
        tts=args.tts,
        stt=args.stt,
        tools=args.tools,
        keep=Path(args.keep) if args.keep else None,
    )
    if options.tools == "live":
        print(LIVE_TOOLS_WARNING, file=sys.stderr, flush=True)
    with _logging(args.log):
        if args.recording:
            return _one(Path(args.recording), options, args.speed, args.tolerance, sys.stdout)[0]
        return _all(Path(args.all), options, args.speed, args.tolerance, sys.stdout)


@contextlib.contextmanager
def _logging(path: str | None):  # type: ignore[no-untyped-def]
    import os

    import structlog

    from bot.telemetry.logs import configure_logging

    with open(path or os.devnull, "w", encoding="utf-8") as stream:
        configure_logging("info", stream=stream)
        try:
            yield
        finally:
            structlog.reset_defaults()


def find_recordings(root: Path) -> list[Path]:
    """Recording folders under ``root`` (itself included), in name order."""
    return sorted({meta.parent for meta in root.rglob("meta.json")})


def _replay(path: Path, options: ReplayOptions, speed: float) -> ReplayResult:
    from bot.recording.reader import Recording, RecordingError
    from bot.sim.replay.clock import ScaledClockLoop
    from bot.sim.replay.runner import replay

    old = Recording.load(path)
    if old.skipped_lines:  # a turn or a chunk missing from the reference would read as a changed answer
        raise RecordingError(
            f"{old.skipped_lines} damaged line(s) in its events, first {old.skipped[0]} "
            "(a damaged recording is no reference; bot inspect shows the rest)"
        )
    with asyncio.Runner(loop_factory=lambda: ScaledClockLoop(speed)) as runner:
        return runner.run(replay(old, options))


def _one(
    path: Path, options: ReplayOptions, speed: float, tolerance: float, out: TextIO
) -> tuple[int, ReplayResult | None]:
    from bot.recording.reader import RecordingError
    from bot.sim.replay.diff import render
    from bot.sim.replay.runner import ReplayError

    started = time.monotonic()
    print(f"replaying {path}", file=out, flush=True)
    try:
        result = _replay(path, options, speed)
    except (RecordingError, ReplayError) as exc:
        print(f"cannot replay {path}: {exc}", file=out)
        return 2, None
    for note in result.notes:
        print(f"note: {note}", file=out)
    for line in render(result.diff, tolerance):
        print(line, file=out)
    extra = []
    if options.llm == "recorded":
        extra.append(f"{result.model_misses} model request(s) without a recorded answer")
    if options.tts == "recorded":
        new = len(result.phrases_synthesized)
        extra.append(f"{result.phrases_served} phrase(s) from the recording, {new} synthesized")
    if options.tools == "recorded":
        missed = len(result.tools_not_recorded)
        extra.append(f"{result.tools_served} tool call(s) answered from the recording, {missed} not recorded")
    if timing := result.diff.timing_changes():
        extra.append(f"{timing} answer(s) cut at another point (timing, not a change)")
    changed = result.diff.changed_turns(tolerance)
    verdict = "CHANGED" if result.diff.changed(tolerance) else "no differences"
    print(
        f"{verdict}: {len(changed)} of {len(result.diff.turns)} turn(s) changed beyond tolerance "
        f"{tolerance:g}; "
        + "; ".join(extra)
        + f"; replayed in {time.monotonic() - started:.1f} s at speed {speed:g}",
        file=out,
    )
    if options.keep is not None:
        print(f"the replay's recording: {result.new.path}", file=out)
    return (1 if result.diff.changed(tolerance) else 0), result


def _all(root: Path, options: ReplayOptions, speed: float, tolerance: float, out: TextIO) -> int:
    paths = find_recordings(root)
    if not paths:
        print(f"no recordings under {root}", file=out)
        return 2
    rows: list[tuple[str, str, str, str, str, str]] = []
    worst = 0
    for path in paths:
        status, result = _one(path, options, speed, tolerance, out)
        print(file=out)
        worst = max(worst, status)
        name = str(path.relative_to(root)) if path != root else path.name
        if result is None:
            rows.append((name, "-", "-", "-", "-", "ERROR"))
            continue
        diff = result.diff
        deltas = diff.latency_deltas()
        rows.append(
            (
                name,
                str(len(diff.turns)),
                str(len(diff.changed_turns(tolerance))),
                str(diff.heard_changes()),
                f"{statistics.median(deltas):+.0f} ms" if deltas else "n/a",
                "CHANGED" if status == 1 else "same",
            )
        )
    header = ("recording", "turns", "changed", "heard differently", "latency change (median)", "result")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out)
    same = sum(1 for r in rows if r[-1] == "same")
    print(f"{len(rows)} recording(s): {same} same, {len(rows) - same} changed or failed", file=out)
    return worst
