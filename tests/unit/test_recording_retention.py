"""Recordings' disk: retention (which folders go) and the free-space floor (when recordings pause).

Rules checked here: ``choose_deletions`` never picks a recording in progress, leaves every kept finished
one within the age limit, deletes by bytes oldest first and no more than needed, and gets under the cap
whenever the finished recordings allow it; ``next_paused`` pauses under the floor and resumes past the
margin only; ``SpaceFloor`` looks at the disk at most once a second and logs one line per pause and per
resume; a paused ``CallRecorder`` writes nothing, the call's later audio continuing at the end.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import structlog
from hypothesis import given
from hypothesis import strategies as st

from bot.recording import CallRecorder, LocalStore, Recording
from bot.recording.format import RESUMED_EVENT
from bot.recording.retention import (
    ABANDONED_AFTER_S,
    Deletion,
    RetentionPolicy,
    StoredRecording,
    choose_deletions,
    in_progress,
)
from bot.recording.space import MIN_RESUME_MARGIN, SpaceFloor, next_paused, resume_margin
from tests.support.clocks import STARTED, FakeClock

NOW = 1_000_000.0
DAY = 86_400.0


def rec(
    n: int, *, size: int = 100, age: float = 0.0, complete: bool = True, held: bool = False
) -> StoredRecording:
    return StoredRecording(f"2026-12-01/CA{n:03d}", size, NOW - age, complete, held)


recordings = st.lists(
    st.builds(
        StoredRecording,
        id=st.integers(0, 999).map(lambda n: f"2026-12-01/CA{n:03d}"),
        bytes=st.integers(0, 5_000),
        modified=st.floats(NOW - 40 * DAY, NOW + 60, allow_nan=False),
        complete=st.booleans(),
        held=st.booleans(),
    ),
    max_size=30,
    unique_by=lambda r: r.id,
)
policies = st.builds(
    RetentionPolicy,
    max_age_s=st.sampled_from([0.0, 60.0, DAY, 30 * DAY]),
    max_bytes=st.sampled_from([0, 1, 500, 5_000, 50_000]),
)


# --- which folders go (pure) ----------------------------------------------------------------------


@given(recordings, policies)
def test_deletions_respect_every_rule(found: list[StoredRecording], policy: RetentionPolicy) -> None:
    chosen = choose_deletions(found, NOW, policy)
    by_id = {r.id: r for r in found}
    ids = [d.id for d in chosen]
    assert len(ids) == len(set(ids)) and set(ids) <= set(by_id)
    for deletion in chosen:  # never a call in progress; each for its reason
        recording = by_id[deletion.id]
        assert not in_progress(recording, NOW, policy)
        assert deletion.bytes == (0 if deletion.reason == "empty" else recording.bytes)
        if deletion.reason == "age":
            assert NOW - recording.modified > policy.max_age_s > 0
        if deletion.reason == "empty":
            assert recording.bytes == 0
        if deletion.reason == "bytes":
            assert policy.max_bytes > 0
    kept = [r for r in found if r.id not in set(ids)]
    finished_kept = [r for r in kept if not in_progress(r, NOW, policy)]
    if policy.max_age_s > 0:
        assert all(NOW - r.modified <= policy.max_age_s for r in finished_kept)
    total = sum(r.bytes for r in kept)
    if policy.max_bytes > 0 and total > policy.max_bytes:
        assert all(r.bytes == 0 for r in finished_kept) or not finished_kept  # nothing more could go
    by_bytes = [by_id[d.id] for d in chosen if d.reason == "bytes"]
    if by_bytes:  # oldest first, and no more than needed: without the newest one it was still over
        newest = max(by_bytes, key=lambda r: (r.modified, r.id))
        assert all((r.modified, r.id) > (newest.modified, newest.id) for r in finished_kept if r.bytes)
        assert total + newest.bytes > policy.max_bytes
    assert [by_id[i].modified for i in ids] == sorted(by_id[i].modified for i in ids)  # oldest first


@given(recordings, policies, st.randoms(use_true_random=False))
def test_the_input_order_does_not_matter(
    found: list[StoredRecording], policy: RetentionPolicy, rnd: random.Random
) -> None:
    shuffled = list(found)
    rnd.shuffle(shuffled)
    assert choose_deletions(shuffled, NOW, policy) == choose_deletions(found, NOW, policy)


@given(recordings)
def test_no_limits_delete_only_empty_folders(found: list[StoredRecording]) -> None:
    chosen = choose_deletions(found, NOW, RetentionPolicy())
    assert all(d.reason == "empty" for d in chosen)


def test_oldest_finished_go_first_until_under_the_cap() -> None:
    found = [rec(1, age=300), rec(2, age=200), rec(3, age=100), rec(4, age=0)]
    chosen = choose_deletions(found, NOW, RetentionPolicy(max_bytes=250))
    assert chosen == [Deletion(found[0].id, "bytes", 100), Deletion(found[1].id, "bytes", 100)]


def test_a_live_recording_is_never_deleted_even_over_the_cap() -> None:
    live = rec(1, size=10_000, age=40 * DAY, complete=False, held=True)
    finished = rec(2, size=10, age=10)
    chosen = choose_deletions([live, finished], NOW, RetentionPolicy(max_age_s=DAY, max_bytes=100))
    assert chosen == [Deletion(finished.id, "bytes", 10)]


def test_age_is_counted_from_the_last_write() -> None:
    old, young = rec(1, age=31 * DAY), rec(2, age=29 * DAY)
    assert choose_deletions([young, old], NOW, RetentionPolicy(max_age_s=30 * DAY)) == [
        Deletion(old.id, "age", 100)
    ]


def test_incomplete_and_not_held_is_live_until_abandoned() -> None:
    policy = RetentionPolicy(max_bytes=1)
    between_close_and_meta = rec(1, complete=False, age=ABANDONED_AFTER_S - 1)
    killed = rec(2, complete=False, age=ABANDONED_AFTER_S + 1)
    assert in_progress(between_close_and_meta, NOW, policy) and not in_progress(killed, NOW, policy)
    assert [d.id for d in choose_deletions([between_close_and_meta, killed], NOW, policy)] == [killed.id]


def test_a_recording_that_never_started_is_cleared_away() -> None:
    empty = rec(1, size=0, complete=False, age=ABANDONED_AFTER_S + 1)
    assert choose_deletions([empty], NOW, RetentionPolicy()) == [Deletion(empty.id, "empty", 0)]


# --- the free-space floor (pure, then its shell) --------------------------------------------------


@given(st.booleans(), st.integers(0, 10**12), st.integers(0, 10**11))
def test_pause_under_the_floor_resume_past_the_margin(paused: bool, free: int, floor: int) -> None:
    after = next_paused(paused, free, floor)
    if floor == 0 or free >= floor + resume_margin(floor):
        assert not after
    elif free < floor:
        assert after
    else:  # between the floor and the margin: the state holds (no flapping)
        assert after == paused
    assert resume_margin(floor) >= MIN_RESUME_MARGIN


class Disk:
    def __init__(self, free: int) -> None:
        self.free = free
        self.stats = 0

    def __call__(self, _root: Path) -> int:
        self.stats += 1
        return self.free


def floor_with(disk: Disk, clock: Callable[[], float], changes: list[bool], dropped: list[int]) -> SpaceFloor:
    return SpaceFloor(
        Path("/rec"),
        100 * 2**20,
        clock=clock,
        free_bytes=disk,
        on_change=changes.append,
        on_dropped=dropped.append,
    )


def test_the_floor_stats_at_most_once_a_second_and_logs_once_per_pause() -> None:
    now = [0.0]
    disk, changes, dropped = Disk(10 * 2**30), list[bool](), list[int]()
    space = floor_with(disk, lambda: now[0], changes, dropped)
    with structlog.testing.capture_logs() as logs:
        for step in range(500):  # 10 s of 20 ms frames
            now[0] = step / 50  # exact seconds every 50 steps
            if step == 100:
                disk.free = 50 * 2**20  # under the floor
            if step == 300:
                disk.free = 105 * 2**20  # over the floor, under the margin: still paused
            if step == 400:
                disk.free = 200 * 2**20
            if not space.writable():
                space.dropped(160)
    assert disk.stats == 10
    assert changes == [True, False]
    assert [e["event"] for e in logs] == ["recording_paused", "recording_resumed"]
    assert logs[0]["log_level"] == "warning" and logs[0]["free_bytes"] == 50 * 2**20
    assert logs[1]["dropped_audio_bytes"] == sum(dropped) == 160 * 300  # steps 100..399
    assert len(dropped) == 6  # handed to the metric once a second (t = 3..8 s), not per frame


def test_a_floor_of_zero_never_looks_at_the_disk() -> None:
    disk = Disk(0)
    space = SpaceFloor(Path("/rec"), 0, free_bytes=disk)
    assert space.writable() and disk.stats == 0


def test_a_failed_stat_keeps_the_last_answer() -> None:
    def broken(_root: Path) -> int:
        raise OSError("gone")

    space = SpaceFloor(Path("/rec"), 1, free_bytes=broken)
    assert space.writable()


# --- a paused recorder --------------------------------------------------------------------------


def test_a_paused_recording_writes_nothing_and_resumes_at_the_end(tmp_path: Path) -> None:
    clock = FakeClock()
    disk, changes, dropped = Disk(10 * 2**30), list[bool](), list[int]()
    space = floor_with(disk, clock, changes, dropped)
    recorder = CallRecorder(LocalStore(tmp_path).create("CA1", STARTED), clock=clock, space=space)
    recorder.start(call_sid="CA1")
    frame = b"\x01" * 160

    def frames(first_ms: int, count: int) -> None:
        for i in range(count):
            clock.now = 1000.0 + (first_ms + i * 20) / 1000
            recorder.caller_audio(first_ms + i * 20, frame)

    frames(0, 50)  # 1 s recorded
    disk.free = 0
    clock.now += 1.0
    frames(2000, 100)  # 2 s while paused: dropped
    recorder.bot_audio(b"\x02" * 800, response_id=1, mark="m1")
    recorder.event("turn", n=1)
    disk.free = 10 * 2**30
    clock.now += 1.0
    frames(5000, 50)  # back: placed right after the first second, not 4 s later
    recorder.finalize(ended_by="caller")

    recording = Recording.load(tmp_path / recorder.recording_id)
    assert recording.caller_ulaw() == frame * 100
    assert recording.bot_sent_ulaw() == b"" and not recording.events_of("turn")
    [resumed] = recording.events_of(RESUMED_EVENT)
    assert resumed["dropped_events"] == 1 and resumed["dropped_audio_bytes"] == 160 * 100 + 800
    assert (
        recording.complete and recording.meta["paused_dropped_audio_bytes"] == resumed["dropped_audio_bytes"]
    )
    assert sum(dropped) == resumed["dropped_audio_bytes"] and changes == [True, False]
