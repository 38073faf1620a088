"""The simulated phone's ear: what the caller hears of the bot's media, marks and clears, tick by tick."""

from __future__ import annotations

import pytest

from emulators.phone_ear import Ear
from emulators.playback import FRAME_BYTES
from emulators.twilio_wire import BotClear, BotMark, BotMedia

AUDIO = b"\x10" * FRAME_BYTES  # one 20 ms frame


class Heard:
    """The ear's event log and the mark echoes it asked for; ``socket_open=False``: echoes fail."""

    def __init__(self, *, socket_open: bool = True) -> None:
        self.events: list[tuple[str, float, str]] = []
        self.echoes: list[str] = []
        self.socket_open = socket_open

    def record(self, kind: str, t: float, detail: str) -> None:
        self.events.append((kind, t, detail))

    async def echo(self, name: str) -> bool:
        self.echoes.append(name)
        return self.socket_open

    def ear(self) -> Ear:
        return Ear(self.record, self.echo)


async def play(ear: Ear, ticks: range) -> None:
    for n in ticks:
        await ear.tick(n * 0.02, n * 0.02)


async def test_audio_plays_a_frame_per_tick_and_its_mark_is_echoed_once_it_has_played() -> None:
    log = Heard()
    ear = log.ear()
    await ear.hear(BotMedia(AUDIO * 2), at=0.0, now=0.0)
    await ear.hear(BotMark("r1-p1"), at=0.0, now=0.0)
    await play(ear, range(4))
    assert ear.frames[:2] == [AUDIO, AUDIO]
    assert len(ear.frames) == 4
    assert ear.marks_echoed == ["r1-p1"]
    kinds = [(kind, detail) for kind, _, detail in log.events]
    assert kinds == [("mark_received", "r1-p1"), ("bot_audio_start", ""), ("mark_echoed", "r1-p1"),
                     ("bot_audio_end", "")]  # fmt: skip
    start, end = (t for kind, t, _ in log.events if kind.startswith("bot_audio"))
    assert (start, end) == (0.0, pytest.approx(0.04))
    assert ear.quiet_for(0.015, now=0.06)
    assert not ear.quiet_for(0.05, now=0.06)


async def test_clear_cuts_playback_and_echoes_every_pending_mark_at_once_in_order() -> None:
    log = Heard()
    ear = log.ear()
    for name in ("a", "b"):
        await ear.hear(BotMedia(AUDIO * 10), at=0.0, now=0.0)
        await ear.hear(BotMark(name), at=0.0, now=0.0)
    await play(ear, range(3))
    await ear.hear(BotClear(), at=0.05, now=0.05)
    assert ear.marks_echoed == ["a", "b"]
    assert ear.playback.is_empty and not ear.playing
    assert ("bot_audio_end", 0.05, "") in log.events
    assert [e for e in log.events if e[0] == "mark_echoed"] == [("mark_echoed", 0.05, "a"),
                                                                ("mark_echoed", 0.05, "b")]  # fmt: skip


async def test_an_echo_that_never_reached_the_wire_is_not_counted() -> None:
    log = Heard(socket_open=False)
    ear = log.ear()
    await ear.hear(BotMark("bye"), at=0.0, now=0.0)
    await play(ear, range(2))
    assert log.echoes == ["bye"]
    assert ear.marks_echoed == []
    assert all(kind != "mark_echoed" for kind, _, _ in log.events)


async def test_the_stream_ending_cuts_playback_at_that_instant() -> None:
    log = Heard()
    ear = log.ear()
    await ear.hear(BotMedia(AUDIO * 50), at=0.0, now=0.0)
    await play(ear, range(5))
    ear.stop(0.07)
    assert not ear.playing
    assert log.events[-1] == ("bot_audio_end", 0.07, "")
    ear.stop(0.5)  # already ended: nothing more
    assert log.events[-1] == ("bot_audio_end", 0.07, "")
