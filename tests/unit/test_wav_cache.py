"""The WAV cache's pure parts: the streamed WAV is the in-memory one byte for byte; keys follow content;
the cache folder is used only if it is private."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import pytest

from bot.inspector.wav_cache import BLOCK_SECONDS, _private_folder, recording_key, write_stereo_wav
from media.codec import ulaw_to_pcm16
from media.wav import interleave_stereo, pcm16_wav

BLOCK = BLOCK_SECONDS * 8000


def in_memory(left: bytes, right: bytes) -> bytes:
    """What ``Recording.stereo_wav`` does with the two tracks."""
    return pcm16_wav(
        interleave_stereo(ulaw_to_pcm16(left), ulaw_to_pcm16(right)), sample_rate=8000, channels=2
    )


@pytest.mark.parametrize(
    ("left_size", "right_size"),
    [(0, 0), (1, 0), (0, 1), (BLOCK - 1, BLOCK), (BLOCK, BLOCK + 1), (2 * BLOCK + 7, 5), (3, 2 * BLOCK + 1)],
)
def test_the_streamed_wav_is_the_in_memory_one(left_size: int, right_size: int) -> None:
    left = bytes(i * 7 % 256 for i in range(left_size))
    right = bytes(i * 13 % 251 for i in range(right_size))
    out = io.BytesIO()
    write_stereo_wav(out, left, right)
    assert out.getvalue() == in_memory(left, right)


def test_keys_follow_content_and_id(tmp_path: Path) -> None:
    folder = tmp_path / "call"
    folder.mkdir()
    (folder / "caller.ulaw").write_bytes(b"\x01" * 100)
    first = recording_key("2026-12-03/CA1", folder)
    os.utime(folder / "caller.ulaw", (0, 0))
    assert recording_key("2026-12-03/CA1", folder) == first  # a re-download with new times: same WAV
    assert recording_key("2026-12-03/CA2", folder).split("-")[1] != first.split("-")[1]
    (folder / "bot.ulaw").write_bytes(b"")
    assert recording_key("2026-12-03/CA1", folder) != first  # an empty file is not a missing one
    (folder / "bot.ulaw").unlink()
    (folder / "caller.ulaw").write_bytes(b"\x01" * 99 + b"\x02")
    changed = recording_key("2026-12-03/CA1", folder)
    assert changed != first and changed.split("-")[0] == first.split("-")[0]  # same call, new version
    assert "CA1" not in changed


def test_only_a_private_folder_of_ours_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where a refused folder's mkdtemp goes
    made = _private_folder(tmp_path / "wav")
    assert made == tmp_path / "wav" and made.stat().st_mode & 0o777 == 0o700
    assert _private_folder(made) == made
    made.chmod(0o755)  # others may read it: not for call audio
    assert _private_folder(made) != made
    (tmp_path / "link").symlink_to(made)
    made.chmod(0o700)
    assert _private_folder(tmp_path / "link") != tmp_path / "link"
