"""``bot flows check [FILES...]``: validate flow files before deploying them.

Rules:
- No arguments: every ``*.yaml`` / ``*.yml`` file in ``./flows/``. Arguments may be files or folders.
- Every problem of every file is printed, one line each (``file:line: field: reason``), followed by
  a count; exit status 1. The files are checked alone and together (names, numbers, one default),
  exactly as ``load_flows`` does for the server.
- All valid: one summary line, exit status 0.
- Output goes to stdout (like a linter); nothing is imported or called from the flows' tools.
- Importing this module is cheap (``bot.cli`` imports it for every command): the loader, and through
  it pydantic and the speech providers' types, is imported only when a check runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from bot.flows.loader import FlowSet
    from bot.flows.model import Flow

DEFAULT_FOLDER = "flows"  # relative to the working directory, like bot.flows.loader.DEFAULT_FLOW_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="*", help=f"flow files or folders (default: every *.yaml in ./{DEFAULT_FOLDER}/)"
    )


def summary(flows: FlowSet) -> str:
    def one(flow: Flow) -> str:
        count = len(flow.numbers)
        served = f"{count} number{'s' if count != 1 else ''}"
        return f"{flow.name} ({'default, ' if flow.default else ''}{served})"

    count = len(flows.flows)
    return f"OK: {count} flow{'s' if count != 1 else ''}: " + ", ".join(map(one, flows.flows))


def check(files: Sequence[str], out: TextIO) -> int:
    """Check ``files`` (default: the flows folder), print the result to ``out``; the exit status."""
    from bot.flows.loader import FlowError, load_flows

    try:
        flows = load_flows(list(files) if files else DEFAULT_FOLDER)
    except FlowError as exc:
        for problem in exc.problems:
            print(problem, file=out)
        broken = {problem.file for problem in exc.problems if problem.file is not None}
        count = len(exc.problems)
        print(f"{count} error{'s' if count != 1 else ''} in {len(broken)} file(s)", file=out)
        return 1
    print(summary(flows), file=out)
    return 0


def run(args: argparse.Namespace) -> int:
    """``bot flows check``: the entry point for ``bot.cli``."""
    return check(args.files, sys.stdout)
