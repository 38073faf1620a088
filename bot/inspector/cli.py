"""``bot inspect RECORDING [-o FILE]``: write a recorded call's inspector page to one HTML file.

Rules:
- RECORDING is a recording folder (the one holding ``meta.json``). The page goes to ``-o FILE``, or by
  default to ``./<call sid>.html`` in the current directory (the sid sanitized like the store does, so it
  is always a plain file name); the path written is printed on stdout.
- An unreadable recording (``RecordingError``) or a file that cannot be written: one line on stderr,
  exit status 1. Nothing is written then.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.inspector.page import render_page
from bot.inspector.timeline import build_timeline
from bot.recording.format import sanitize_call_sid
from bot.recording.reader import Recording, RecordingError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", help="a recording folder, e.g. recordings/2025-01-31/CA0123...")
    parser.add_argument("-o", "--output", help="the HTML file to write (default: ./<call sid>.html)")


def run(args: argparse.Namespace) -> int:
    try:
        recording = Recording.load(args.recording)
        page = render_page(build_timeline(recording))
    except RecordingError as exc:
        print(f"bot inspect: {exc}", file=sys.stderr)
        return 1
    sid = recording.meta.get("call_sid")
    name = sanitize_call_sid(sid if isinstance(sid, str) and sid else recording.path.resolve().name)
    output = Path(args.output) if args.output else Path(f"{name}.html")
    try:
        output.write_text(page, encoding="utf-8")
    except OSError as exc:
        print(f"bot inspect: cannot write {output}: {exc}", file=sys.stderr)
        return 1
    print(output)
    return 0
