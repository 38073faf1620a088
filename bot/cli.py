"""Command line: ``bot serve`` (the server), ``bot demo`` (a whole simulated call), ``bot flows check``,
``bot replay`` (recorded calls through today's bot)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

from bot import local_llm
from bot.flows import check as flows_check
from bot.inspector import cli as inspector_cli
from bot.settings import SettingsError, load_settings
from bot.sim.replay import cli as replay_cli


def run_server(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    """On uvloop unless ``event_loop`` is "asyncio" or uvloop is not installed (it is a dependency except
    on Windows): the same asyncio API, with about 12% less CPU per call under load (bench/load.py)."""
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
    replay_cli.add_arguments(
        sub.add_parser(
            "replay", help="replay recorded calls through today's bot; exit 1 when answers changed"
        )
    )
    inspector_cli.add_arguments(
        sub.add_parser("inspect", help="write a recorded call's inspector page (one HTML file)")
    )
    args = parser.parse_args(argv)
    if args.command == "local-llm":
        return local_llm.run(args)
    if args.command == "flows":
        return flows_check.run(args)
    if args.command == "replay":
        return replay_cli.run(args)
    if args.command == "inspect":
        return inspector_cli.run(args)

    if args.command == "serve":
        try:
            settings = load_settings()
        except SettingsError as exc:
            print(exc, file=sys.stderr)
            return 2
        from bot.flows.loader import FlowError
        from bot.server import serve
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
    from bot.sim.demo import run_demo

    return run_demo(out_dir=args.out, emulated=args.emulated)


if __name__ == "__main__":
    raise SystemExit(main())
