"""``bot flows check [FILES...]``: validate flow files before deploying them.

Rules:
- No arguments: every ``*.yaml`` / ``*.yml`` file in ``./flows/``. Arguments may be files or folders.
- Every problem of every file is printed, one line each (``file:line: field: reason``), followed by
  a count; exit status 1. The files are checked alone and together (names, numbers, one default),
  exactly as ``load_flows`` does for the server.
- The models the flows will use are checked (``bot.flows.model_check``) with the server's models as
  the environment sets them (``LLM_MODEL``, ``STT_MODEL``, else their defaults): settings a model
  rejects and models past their shutdown are errors; a model within 60 days of its shutdown is a
  ``warning:`` line (with its date, at the flow's line) that does not fail the check.
- All valid: the warnings, then one summary line, exit status 0.
- Output goes to stdout (like a linter); nothing is imported or called from the flows' tools.
- Importing this module is cheap (``bot.cli`` imports it for every command): the loader, and through
  it pydantic and the speech providers' types, is imported only when a check runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
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


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def check(
    files: Sequence[str],
    out: TextIO,
    *,
    env: Mapping[str, str] | None = None,
    today: date | None = None,
) -> int:
    """Check ``files`` (default: the flows folder), print the result to ``out``; the exit status.

    The models are checked as ``env`` (default: this process's environment) configures the server's
    (``LLM_MODEL``, ``STT_MODEL``; unset: the defaults), on ``today`` (default: today, UTC).
    """
    from bot.flows.loader import FlowError, load_flows
    from bot.flows.model_check import check_models
    from bot.providers.llm.models import DEFAULT_CHAT_MODEL, DEFAULT_TRANSCRIBE_MODEL

    try:
        flows = load_flows(list(files) if files else DEFAULT_FOLDER)
    except FlowError as exc:
        for problem in exc.problems:
            print(problem, file=out)
        broken = {problem.file for problem in exc.problems if problem.file is not None}
        print(f"{_plural(len(exc.problems), 'error')} in {len(broken)} file(s)", file=out)
        return 1
    env = os.environ if env is None else env
    report = check_models(
        flows,
        llm_model=env.get("LLM_MODEL") or DEFAULT_CHAT_MODEL,
        stt_model=env.get("STT_MODEL") or DEFAULT_TRANSCRIBE_MODEL,
        today=today or datetime.now(UTC).date(),
    )
    for problem in report.warnings:
        print(replace(problem, reason=f"warning: {problem.reason}"), file=out)
    if report.errors:
        for problem in sorted(report.errors, key=lambda p: (p.file or "", p.line or 0)):
            print(problem, file=out)
        broken = {problem.file for problem in report.errors if problem.file is not None}
        print(f"{_plural(len(report.errors), 'error')} in {len(broken)} file(s)", file=out)
        return 1
    warned = f"; {_plural(len(report.warnings), 'warning')}" if report.warnings else ""
    print(summary(flows) + warned, file=out)
    return 0


def run(args: argparse.Namespace) -> int:
    """``bot flows check``: the entry point for ``bot.cli``."""
    return check(args.files, sys.stdout)
