"""Progress lines, the pure part: WHEN the next line is due and WHICH one, for one turn.

Rules:
- ``ProgressPlan`` says when the next progress line is due and which one, from what the turn told it.
  It is armed by a filler (the silence filler or a tool filler) or by a follow-up model request (tools
  are done, the rest of the answer is awaited); an answer phrase disarms it, so a progress line
  continues a filler and never cuts into an answer.
- A line is due ``first_after_s`` of quiet after the caller heard the last thing the bot said (the
  filler), the next ones ``every_s`` of quiet after the previous line; at most ``max_lines`` per turn.
- Never the same line twice in a row, also across turns (``last_text`` carries over): texts are taken
  in their order, starting after the last one said; with one text, a turn says it at most once.
- ``ProgressConfig`` is a flow's setting (``fillers`` section); the asyncio driver is
  ``bot.call.progress.Companion``.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TEXTS = (
    "Still checking, one moment.",
    "Thanks for waiting, I'm nearly there.",
    "Just a moment longer, please.",
)


@dataclass(frozen=True)
class ProgressConfig:
    """Progress lines of one flow (``fillers`` section); see the module rules."""

    texts: tuple[str, ...] = DEFAULT_TEXTS
    # 1.5 s of quiet after the filler was heard: the caller is never left more than ~2 s wondering,
    # but a first token at 1-2 s (the common case after tools) still comes before any progress line.
    first_after_s: float = 1.5
    every_s: float = 2.0
    max_lines: int = 3  # about 9 s of company after the filler; then the turn budget decides

    def __post_init__(self) -> None:
        if self.first_after_s < 0 or self.every_s < 0 or self.max_lines < 0:
            raise ValueError("progress line delays and max_lines must be >= 0")


class ProgressPlan:
    def __init__(self, config: ProgressConfig, last_text: str | None = None) -> None:
        self.config = config
        self.last_text = last_text  # the last progress line said on this call (never repeated next)
        self.said = 0  # progress lines said in this turn
        self.armed = False
        self.stopped = False

    def filler(self) -> None:
        """A filler was said, or the model was asked again after tools: the caller is waiting."""
        self.armed = True

    def answer(self) -> None:
        """A phrase of the answer was said: no progress line until the next filler."""
        self.armed = False

    def stop(self) -> None:
        self.stopped = True

    def next_text(self) -> str | None:
        """The line that would be said next, or None when none may be (max reached, no text left)."""
        texts = self.config.texts
        if self.said >= self.config.max_lines or not texts:
            return None
        start = texts.index(self.last_text) + 1 if self.last_text in texts else 0
        for offset in range(len(texts)):
            text = texts[(start + offset) % len(texts)]
            if text != self.last_text:
                return text
        return None  # a single text, said last: never twice in a row

    def due(self, quiet_since: float) -> float | None:
        """When the next line is due if nothing is said from ``quiet_since`` on; None: no line is."""
        if self.stopped or not self.armed or self.next_text() is None:
            return None
        return quiet_since + (self.config.first_after_s if self.said == 0 else self.config.every_s)

    def take(self) -> str | None:
        """Say the next line now: the text, counted; None if none may be said."""
        text = None if self.stopped or not self.armed else self.next_text()
        if text is not None:
            self.said += 1
            self.last_text = text
        return text
