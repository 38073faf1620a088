"""`bot demo` as a user runs it: a whole call on the embedded engines, exit status and word error rate."""

from __future__ import annotations

import re
import subprocess
import sys
import wave
from pathlib import Path

import pytest

pytest.importorskip("faster_whisper", reason="the demo's embedded engines need the offline extra")
pytest.importorskip("espeakng_loader", reason="the demo's caller voice needs the offline extra")


def test_demo_runs_a_whole_call_and_whisper_understands_the_caller(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "SCRIPTED" in out  # the scripted model is labelled as such
    assert out.count("bot heard:") == 6  # every caller turn was heard and reported
    assert "bot heard:  keypad '(typed on the keypad: 1001)'" in out  # the keypad entry became a turn
    assert "{'Status': 'completed'}" in out  # the bot hung up through (emulated) Twilio REST
    assert "filler said while the tool ran" in out
    assert "cut off by the caller" in out
    wer = float(re.search(r"Word error rate .*: ([\d.]+)%", out).group(1))  # type: ignore[union-attr]
    assert wer <= 35.0, out
    with wave.open(str(tmp_path / "demo-call.wav")) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        assert wav.getnframes() > 8000 * 20  # the call lasted more than 20 s
    log = (tmp_path / "demo-bot.log").read_text()
    assert log.count('"event": "turn"') == 6
    assert '"ended_by": "end_call"' in log
