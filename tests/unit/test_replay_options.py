"""``bot replay``'s options: what cannot run is refused with a clear line and exit status 2, before any
server starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.sim.replay.cli import find_recordings
from bot.sim.replay.runner import ReplayError, ReplayOptions, _settings


def test_live_model_needs_its_settings_and_a_real_transcriber(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ReplayError, match="OPENAI_API_KEY or OPENAI_BASE_URL"):
        _settings(ReplayOptions(llm="live"), tmp_path)
    with pytest.raises(ReplayError, match="--stt emulated"):
        _settings(ReplayOptions(llm="live", stt="emulated"), tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    config = _settings(ReplayOptions(llm="live", stt="embedded"), tmp_path)
    assert config["openai_base_url"] == "http://127.0.0.1:9/v1" and config["stt_provider"] == "whisper"


def test_recorded_and_emulated_sources_use_the_local_emulators(tmp_path: Path) -> None:
    config = _settings(ReplayOptions(stt="emulated"), tmp_path)
    assert config == {
        "recordings_dir": str(tmp_path),
        "recording_max_age_days": 0,  # a replay never prunes the folder it is given (--keep)
        "recording_max_bytes": 0,
        "stt_provider": "openai",
        "vad": "energy",
        "tts_provider": "google",
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["replay"],  # neither a recording nor --all
        ["replay", "rec", "--all", "dir"],  # both
        ["replay", "rec", "--tolerance", "1.5"],
        ["replay", "rec", "--speed", "0"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.strip()


def test_an_unreadable_recording_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "meta.json").write_text('{"format": 99}')
    assert main(["replay", str(tmp_path)]) == 2
    assert f"cannot replay {tmp_path}" in capsys.readouterr().out
    assert main(["replay", "--all", str(tmp_path / "nothing")]) == 2


def test_find_recordings_takes_every_folder_with_a_meta(tmp_path: Path) -> None:
    for name in ("2026-01-02/CA2", "2026-01-01/CA1"):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "meta.json").write_text("{}")
    (tmp_path / "2026-01-01" / "notes").mkdir()
    assert find_recordings(tmp_path) == [tmp_path / "2026-01-01/CA1", tmp_path / "2026-01-02/CA2"]


def test_live_tools_warn_that_side_effects_repeat_and_recorded_ones_are_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ReplayOptions().tools == "recorded"
    (tmp_path / "meta.json").write_text('{"format": 99}')
    assert main(["replay", str(tmp_path)]) == 2
    assert "WARNING" not in capsys.readouterr().err
    assert main(["replay", str(tmp_path), "--tools", "live"]) == 2
    err = capsys.readouterr().err
    assert "WARNING: --tools live runs the flow's http and python tools for real" in err
    assert "side effects" in err
