"""Command line: ``bot serve`` (the server), ``bot demo`` (a whole simulated call), ``bot flows check``,
``bot replay`` (recorded calls through today's bot).

Rules:
- ``bot demo`` and ``bot replay`` need the simulation layer (``bot/sim/`` and ``emulators/``), which the
  production image leaves out. Without it they print one line naming what is missing and how to get it,
  and exit 2, never a traceback; every other command works without it.
- Only a missing ``bot.sim`` or ``emulators`` module means that: any other missing module (an extra's
  engine, say) is a real error and propagates.
- The simulation layer is imported per command, so ``bot serve`` never loads the emulators.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from types import ModuleType
from typing import Any

from bot.flows import check as flows_check
from bot.inspector import cli as inspector_cli
from bot.local_llm import model as local_llm
from bot.server.settings import SettingsError, load_settings

SIMULATION_PACKAGES = ("bot.sim", "emulators")
SIMULATION_MISSING = (
    "bot {command}: the simulation layer (bot/sim/ and emulators/) is not in this install (the production "
    "image leaves it out); run it from a checkout: pip install -e '.[offline]' (see the README)"
)


def is_simulation_missing(exc: ModuleNotFoundError) -> bool:
    """Whether ``exc`` is the simulation layer being absent, rather than any other missing module."""
    name = exc.name or ""
    return any(name == package or name.startswith(package + ".") for package in SIMULATION_PACKAGES)


def replay_cli() -> ModuleType | None:
    """``bot.sim.replay.cli`` (the replay's arguments and run), or None in an install without the simulation
    layer."""
    try:
        from bot.sim.replay import cli
    except ModuleNotFoundError as exc:
        if not is_simulation_missing(exc):
            raise
        return None
    return cli


def run_simulation(args: argparse.Namespace) -> int:
    """``bot demo`` or ``bot replay``; without the simulation layer, one line saying how to get it."""
    try:
        if args.command == "demo":
            from bot.sim.demo import run_demo

            return run_demo(out_dir=args.out, emulated=args.emulated)
        from bot.sim.replay import cli

        return cli.run(args)
    except ModuleNotFoundError as exc:
        if not is_simulation_missing(exc):
            raise
        print(SIMULATION_MISSING.format(command=args.command), file=sys.stderr)
        return 2


def run_server(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    """On uvloop unless ``event_loop`` is "asyncio" or uvloop is not installed (it is a dependency except
    on Windows): the same asyncio API, with less CPU per call under load (bench/load.py)."""
    try:
        import uvloop
    except ImportError:
        uvloop = None  # type: ignore[assignment]
    if uvloop is None or event_loop == "asyncio":
        asyncio.run(main)
    else:
        uvloop.run(main)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bot", description="Telephony voice bot")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the server (configuration from the environment)")
    demo = sub.add_parser("demo", help="a whole simulated call against local emulators, on 127.0.0.1")
    demo.add_argument("--out", default="out", help="folder for the call's WAV and the bot's log")
    demo.add_argument(
        "--emulated",
        action="store_true",
        help="use the cloud-provider emulators and a tone-coded caller instead of the embedded engines",
    )
    local = sub.add_parser("local-llm", help="serve the packaged offline model on 127.0.0.1 (opt-in extra)")
    local_llm.add_arguments(local)
    flows = sub.add_parser("flows", help="call-flow files")
    flows_sub = flows.add_subparsers(dest="flows_command", required=True)
    flows_check.add_arguments(flows_sub.add_parser("check", help="validate flow files; exit 1 on any error"))
    replay = sub.add_parser(
        "replay", help="replay recorded calls through today's bot; exit 1 when answers changed"
    )
    replay_arguments = replay_cli()
    if replay_arguments is not None:
        replay_arguments.add_arguments(replay)
    else:  # its options live with the replay: take any, and say how to get it
        replay.description = SIMULATION_MISSING.format(command="replay")
    inspector_cli.add_arguments(
        sub.add_parser("inspect", help="write a recorded call's inspector page (one HTML file)")
    )
    args, unknown = parser.parse_known_args(argv)
    if unknown and not (args.command == "replay" and replay_arguments is None):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")  # as parse_args says it
    if args.command == "local-llm":
        return local_llm.run(args)
    if args.command == "flows":
        return flows_check.run(args)
    if args.command in ("demo", "replay"):
        return run_simulation(args)
    if args.command == "inspect":
        return inspector_cli.run(args)

    # the one command left: serve
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    from bot.flows.loader import FlowError
    from bot.server.serve import serve
    from media.errors import ProviderError

    try:
        run_server(serve(settings), settings.event_loop)
    except ProviderError as exc:
        print(f"start-up error: {exc}", file=sys.stderr)
        return 2
    except FlowError as exc:  # the same lines as ``bot flows check``
        count = len(exc.problems)
        print(
            f"start-up error: {count} problem{'s' if count != 1 else ''} in the call flows:",
            file=sys.stderr,
        )
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
