"""Word error rate of a transcript against what the simulated caller actually said.

``conversation_error_rate`` scores a whole call: the caller's lines joined against the bot's turns
joined, because where one turn ends is the bot's choice (a turn cut by a barge-in before its transcript
carries its audio into the next one: two lines heard as one turn, rightly), not a hearing error.

Normalisation: lower case; commas, dots and dashes inside numbers dropped ("1,234" and "1-2-3-4" are
"1234"); other punctuation removed. WER = word-level edit distance / number of reference words.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.sim.replay.words import edit_distance, words

__all__ = ["conversation_error_rate", "edit_distance", "word_error_rate", "words"]


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER over pairs of (what was said, what was heard)."""
    errors = sum(edit_distance(words(r), words(h)) for r, h in zip(references, hypotheses, strict=True))
    total = sum(len(words(r)) for r in references)
    return errors / total if total else 0.0


def conversation_error_rate(said: Sequence[str], heard: Sequence[str]) -> float:
    """WER of everything heard in a call against everything said, whatever the turns (module rules)."""
    return word_error_rate([" ".join(said)], [" ".join(heard)])
