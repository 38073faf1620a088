"""Child process for test_recording_crash: records a fake call in a loop until it is killed.

Usage: ``python recording_child.py <root> <call_sid> <max_seconds>``. Each iteration i records one caller
frame at timestamp i*20 ms and a ``tick`` event; every 10th iteration a 400-byte bot chunk; every 50th a
clear. It never finalizes: the parent SIGKILLs it. It exits by itself after ``max_seconds`` so that a
broken parent cannot leave it running.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.recording import CallRecorder, LocalStore

FRAME = 160
BOT_CHUNK = 400


def main() -> None:
    root, call_sid, max_seconds = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    recorder = CallRecorder(LocalStore(root).create(call_sid, datetime.now(UTC)))
    recorder.start(call_sid=call_sid, flow="crash-test")
    deadline = time.monotonic() + max_seconds
    i = 0
    while time.monotonic() < deadline:
        recorder.caller_audio(i * 20, bytes([i % 250]) * FRAME)
        recorder.event("tick", i=i, caller_end=(i + 1) * FRAME)
        if i % 10 == 0:
            recorder.bot_audio(bytes([i % 250]) * BOT_CHUNK, response_id=i // 10, mark=f"m{i}")
        if i % 50 == 49:
            recorder.clear()
        i += 1
        if i % 20 == 0:
            time.sleep(0.001)  # let the parent look in; the loop still writes thousands of lines a second


if __name__ == "__main__":
    main()
