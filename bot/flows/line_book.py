"""``LineBook``: which ``LineConfig`` answers a call, by the number it called; replaced whole on reload.

Rules:
- ``route(to)`` never fails: an exact match on the called number, else the default line.
- A book is immutable. Reloading builds a new book and swaps it in (``LineDesk``); a live call keeps
  the ``LineConfig`` it was routed to, so a reload never changes a call in progress.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bot.flows.line import LineConfig


@dataclass(frozen=True)
class LineBook:
    lines: tuple[LineConfig, ...]
    by_number: Mapping[str, LineConfig] = field(default_factory=dict)
    default: LineConfig | None = None  # None: the first line

    @classmethod
    def single(cls, line: LineConfig) -> LineBook:
        """One line answers every number (a fixed line: the rig, tests)."""
        return cls((line,))

    @classmethod
    def of(cls, lines: Sequence[LineConfig], numbers: Mapping[str, str], default: str) -> LineBook:
        """``numbers`` maps a called number to a line name; ``default`` names the fallback line."""
        by_name = {line.name: line for line in lines}
        return cls(tuple(lines), {n: by_name[name] for n, name in numbers.items()}, by_name[default])

    def versions(self) -> dict[str, str]:
        """Each line's name and flow version (logs, ``/healthz``)."""
        return {line.name: line.version for line in self.lines}

    def route(self, to_number: str | None) -> LineConfig:
        line = self.by_number.get((to_number or "").strip())
        if line is not None:
            return line
        return self.default if self.default is not None else self.lines[0]


class LineDesk:
    """The server's current book; ``swap`` installs a reloaded one."""

    def __init__(self, book: LineBook, *, from_files: bool = False) -> None:
        self.book = book
        self.from_files = from_files  # False: a fixed line (tests); nothing to reload
        self.generation = 1

    def route(self, to_number: str | None) -> LineConfig:
        return self.book.route(to_number)

    def swap(self, book: LineBook, *, initial: bool = False) -> None:
        self.book = book
        if not initial:
            self.generation += 1
