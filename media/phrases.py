"""PhraseBuffer: streaming LLM text in, TTS-ready phrases out.

Rules:
- Text arrives in pieces split anywhere (per token, even per character). A cut is only ever made
  at whitespace that follows a word, so the output never depends on how the text was split: a
  punctuation mark at the very end of the buffer is not a boundary until the next character is
  seen ("3." + "5" stays "3.5"; "1,000" has no whitespace after the comma, so it is never cut).
- Emitted chunks are stripped of surrounding whitespace (inner whitespace is kept) and are never
  empty. Joining the chunks gives the input text, up to whitespace.
- Strategies:
  - WORD: every word as soon as whitespace follows it.
  - SENTENCE: cut after a word ending in ``.``, ``!`` or ``?`` (closing quotes/brackets after the
    mark are allowed: ``said."``).
  - PHRASE: as SENTENCE but also after ``,``, ``:`` and ``;``, and only once the phrase is at least
    ``min_phrase_length`` characters long (measured stripped, up to and including the mark). The
    first boundary at or after that length is the cut.
- The first phrase of an answer (since construction, ``flush`` or ``reset``) is special, so the
  caller hears something sooner:
  - PHRASE uses ``first_phrase_min_length`` instead of ``min_phrase_length``. The default 0 means
    the first phrase ends at the very first boundary ("Sure," is spoken while the rest streams).
  - ``first_phrase_max_words`` > 0 (SENTENCE and PHRASE): the first phrase is also cut after that
    many words, even without punctuation. A punctuation boundary that comes first still wins.
- A period is not a boundary after these abbreviations (case-insensitive, opening quotes or
  brackets ignored): Dr. Mr. Mrs. Ms. St. e.g. i.e. vs. etc. — nor after a single capital
  letter (an initial, "J. R. Smith"), except the pronoun "I". "etc." is treated as an
  abbreviation too, because it is usually followed by more of the same sentence; it therefore
  ends a chunk only where the text ends (``flush``).
- ``flush`` returns the remainder (if any) and starts a new answer; ``reset`` drops it (barge-in).
- Each character is scanned once: ``push`` resumes at a saved position and the buffer only holds
  the phrase in progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

_SENTENCE_MARKS = frozenset(".!?")
_PHRASE_MARKS = frozenset(",.:;!?")
_CLOSERS = "\"')]}»”’"
_OPENERS = "\"'([{«“‘"
_ABBREVIATIONS = frozenset({"dr.", "mr.", "mrs.", "ms.", "st.", "e.g.", "i.e.", "etc.", "vs."})


class PhraseStrategy(StrEnum):
    WORD = "word"
    SENTENCE = "sentence"
    PHRASE = "phrase"


@dataclass(frozen=True)
class PhraseConfig:
    strategy: PhraseStrategy = PhraseStrategy.PHRASE
    min_phrase_length: int = 20  # PHRASE: only cut once the phrase is at least this long
    first_phrase_min_length: int = 0  # PHRASE: the same, for the first phrase of an answer
    first_phrase_max_words: int = 0  # 0 = off; else cut the first phrase after this many words

    def __post_init__(self) -> None:
        # Accept plain strings ("sentence") from settings files.
        object.__setattr__(self, "strategy", PhraseStrategy(self.strategy))
        for name in ("min_phrase_length", "first_phrase_min_length", "first_phrase_max_words"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")


def _is_abbreviation(word: str) -> bool:
    """True if ``word`` (ending in a period) is an abbreviation or initial, not a sentence end."""
    core = word.lstrip(_OPENERS)
    if core.lower() in _ABBREVIATIONS:
        return True
    return len(core) == 2 and core[0].isupper() and core[0] != "I"


class PhraseBuffer:
    """Cuts streamed text into phrases for TTS (see the module docstring for the rules)."""

    def __init__(self, config: PhraseConfig = PhraseConfig()) -> None:
        self.config = config
        self._marks = _SENTENCE_MARKS if config.strategy is PhraseStrategy.SENTENCE else _PHRASE_MARKS
        self.reset()

    def reset(self) -> None:
        """Drop everything buffered; the next phrase is the first of a new answer."""
        self._text = ""  # the phrase in progress (may start with whitespace)
        self._scan = 0  # next index of _text to look at
        self._word_start = -1  # index where the current word began; -1 between words
        self._phrase_start = -1  # index of the phrase's first non-space character; -1 if none yet
        self._words = 0  # complete words in the phrase in progress
        self._first = True

    def push(self, text: str) -> list[str]:
        """Add streamed text; return the phrases it completes (zero or more)."""
        if not text:
            return []
        buffer = self._text + text
        phrases: list[str] = []
        cut = 0  # everything before this index has been emitted
        for i in range(self._scan, len(buffer)):
            if not buffer[i].isspace():
                if self._word_start < 0:
                    self._word_start = i
                    if self._phrase_start < 0:
                        self._phrase_start = i
                continue
            if self._word_start < 0:
                continue  # whitespace after whitespace
            word = buffer[self._word_start : i]
            self._word_start = -1
            self._words += 1
            if self._ends_phrase(word, phrase_length=i - self._phrase_start):
                phrases.append(buffer[self._phrase_start : i])
                self._phrase_start = -1
                self._words = 0
                self._first = False
                cut = i
        # Keep only the phrase in progress, and shift the saved indices with it.
        self._text = buffer[cut:]
        self._scan = len(self._text)
        if self._word_start >= 0:
            self._word_start -= cut
        if self._phrase_start >= 0:
            self._phrase_start -= cut
        return phrases

    def flush(self) -> list[str]:
        """Return the remainder (unless whitespace-only) and start a new answer."""
        remainder = self._text.strip()
        self.reset()
        return [remainder] if remainder else []

    def _ends_phrase(self, word: str, phrase_length: int) -> bool:
        """Decide, at the whitespace after ``word``, whether the phrase in progress ends here."""
        config = self.config
        if config.strategy is PhraseStrategy.WORD:
            return True
        if self._first and 0 < config.first_phrase_max_words <= self._words:
            return True
        core = word.rstrip(_CLOSERS)
        if not core or core[-1] not in self._marks:
            return False
        if core[-1] == "." and _is_abbreviation(core):
            return False
        if config.strategy is PhraseStrategy.PHRASE:
            minimum = config.first_phrase_min_length if self._first else config.min_phrase_length
            return phrase_length >= minimum
        return True
