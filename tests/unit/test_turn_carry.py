"""Audio carried from turns cut before their transcript: capped at the utterance limit (issue 14)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from bot.call.turn_taking import TurnTaking, carried
from bot.sim.store_line import store_line

MS = 16  # PCM16 bytes per millisecond at 8 kHz


def test_audio_under_the_limit_is_carried_whole() -> None:
    audio = bytes(range(256)) * 10
    assert carried(audio, 1000) == audio
    assert carried(b"", 1000) == b""


def test_audio_over_the_limit_keeps_its_most_recent_part() -> None:
    audio = b"\x01\x00" * 8000 + b"\x02\x00" * 8000  # 2 s
    assert carried(audio, 1000) == b"\x02\x00" * 8000


@given(st.binary(max_size=4000).map(lambda b: b[: len(b) // 2 * 2]), st.integers(0, 200))
def test_carried_is_a_whole_sample_suffix_within_the_limit(audio: bytes, max_ms: int) -> None:
    kept = carried(audio, max_ms)
    assert len(kept) == min(len(audio), max_ms * MS) and audio.endswith(kept) and len(kept) % 2 == 0


async def _never(_turn: object) -> None:
    raise AssertionError("no turn runs here")


def test_turns_cut_again_and_again_carry_no_more_than_the_utterance_limit() -> None:
    # The attack: a caller who keeps cutting in while STT is slow. Each cut turn carried all of its audio,
    # its own and everything carried before it: 12 cuts of 30 s utterances made a 5.76 MB STT upload.
    line = store_line()
    line = replace(line, endpointing=replace(line.endpointing, max_utterance_ms=30_000))
    taking = TurnTaking(_never, _never, lambda: 0.0)
    utterance = b"\x10\x00" * (30_000 * MS // 2)
    audio = b""
    for _ in range(12):
        audio = taking.pending_audio + utterance  # what the next turn would upload (``Turn.audio``)
        taking.carry(audio, line)
    assert len(taking.pending_audio) == 30_000 * MS
    assert len(taking.pending_audio + utterance) == 2 * 30_000 * MS  # 960 KB at most: carried + its own
