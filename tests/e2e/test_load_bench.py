"""``bench/load.py`` still runs end to end: two concurrent calls through a real ``bot serve`` process.

Not a performance test (the figures are not checked against targets here, only that the run works):
every call completes, its recording is finalized, nothing is dropped, and every figure is printed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 600.0  # ~100 s on a quiet machine; the rig runs at nice 5, so a busy one slows it most


def test_two_calls_run_through_the_load_bench_and_are_all_counted() -> None:
    result = subprocess.run(
        [sys.executable, "bench/load.py", "--calls", "2", "--duration", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("|") for line in result.stdout.splitlines() if line.strip().startswith("2 |")]
    assert len(rows) == 1, result.stdout
    row = [cell.split() for cell in rows[0]]
    calls, failed = row[1]
    assert (calls, failed) == ("2", "0"), result.stdout
    dropped, provider_errors, lost = row[7]
    assert (dropped, provider_errors, lost) == ("0", "0", "0"), result.stdout
    assert "cores used: bot" in result.stdout
