"""The free-space floor: under it, recordings pause (nothing is written) and the calls go on.

Rules:
- ``next_paused`` decides, pure: paused when the volume's free bytes are under the floor; resumed only
  once they are back over the floor plus ``resume_margin`` (a tenth of the floor, at least 1 MiB), so a
  disk hovering at the floor does not flap. A floor of 0 never pauses.
- ``SpaceFloor.writable()`` is asked before every write of every recording: it stats the volume
  (``shutil.disk_usage``, one ``statvfs``) at most once per ``check_interval_s`` (1 s), never per frame.
  A stat that fails keeps the last answer.
- One structlog warning ``recording_paused`` per pause, one info ``recording_resumed`` when it ends (with
  how long it lasted and the audio bytes dropped meanwhile), whatever the number of calls; ``on_change``
  and ``on_dropped`` feed the metrics (``bot.telemetry.metrics``): the dropped bytes are added up here and
  handed on when the disk is looked at (once a second at most), never per frame.
- Called from the event loop only (the recorder's writes are there).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import structlog

log = structlog.get_logger("bot.recording")

CHECK_INTERVAL_S: Final = 1.0
MIN_RESUME_MARGIN: Final = 1024 * 1024


def resume_margin(floor: int) -> int:
    return max(floor // 10, MIN_RESUME_MARGIN)


def next_paused(paused: bool, free: int, floor: int) -> bool:
    """Whether recordings are paused after seeing ``free`` bytes (see the module rules). Pure."""
    if floor <= 0:
        return False
    if paused:
        return free < floor + resume_margin(floor)
    return free < floor


class SpaceFloor:
    """Pauses recordings while the volume holding ``root`` has less than ``floor`` bytes free."""

    def __init__(
        self,
        root: Path,
        floor: int,
        *,
        check_interval_s: float = CHECK_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        free_bytes: Callable[[Path], int] | None = None,
        on_change: Callable[[bool], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        self.root = root
        self.floor = floor
        self._interval = check_interval_s
        self._clock = clock
        self._free_bytes = free_bytes or _free_bytes
        self._on_change = on_change
        self._on_dropped = on_dropped
        self._checked_at: float | None = None
        self._paused = False
        self._paused_at = 0.0
        self._dropped = 0  # audio bytes dropped in this pause
        self._unreported = 0  # not yet handed to on_dropped

    @property
    def paused(self) -> bool:
        return self._paused

    def writable(self) -> bool:
        """False while recordings are paused; looks at the disk at most once per interval."""
        if self.floor <= 0:
            return True
        now = self._clock()
        if self._checked_at is None or now - self._checked_at >= self._interval:
            self._checked_at = now
            self._report_dropped()
            self._check(now)
        return not self._paused

    def dropped(self, audio_bytes: int) -> None:
        """A recorder dropped this much audio because recordings are paused."""
        self._dropped += audio_bytes
        self._unreported += audio_bytes

    def _report_dropped(self) -> None:
        if self._unreported and self._on_dropped is not None:
            self._on_dropped(self._unreported)
        self._unreported = 0

    def _check(self, now: float) -> None:
        try:
            free = self._free_bytes(self.root)
        except OSError:
            return  # the folder is not there yet, or the volume hiccups: keep the last answer
        paused = next_paused(self._paused, free, self.floor)
        if paused == self._paused:
            return
        self._paused = paused
        if paused:
            self._paused_at, self._dropped = now, 0
            log.warning("recording_paused", free_bytes=free, floor_bytes=self.floor, folder=str(self.root))
        else:
            log.info(
                "recording_resumed",
                free_bytes=free,
                paused_s=round(now - self._paused_at, 1),
                dropped_audio_bytes=self._dropped,
            )
        if self._on_change is not None:
            self._on_change(paused)


def _free_bytes(root: Path) -> int:
    # The recordings folder may not exist yet (made by the first call): its nearest parent is on the volume.
    path = root
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free
