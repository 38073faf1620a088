"""media.phrases: the PhraseBuffer for each strategy, abbreviations, first-phrase options, properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.phrases import PhraseBuffer, PhraseConfig, PhraseStrategy

WORD = PhraseConfig(strategy=PhraseStrategy.WORD)
SENTENCE = PhraseConfig(strategy=PhraseStrategy.SENTENCE)
PHRASE = PhraseConfig(strategy=PhraseStrategy.PHRASE, first_phrase_min_length=20)  # no early first cut


def feed(config: PhraseConfig, *pieces: str, flush: bool = True) -> list[str]:
    buffer = PhraseBuffer(config)
    out: list[str] = []
    for piece in pieces:
        out.extend(buffer.push(piece))
    if flush:
        out.extend(buffer.flush())
    return out


def per_char(config: PhraseConfig, text: str) -> list[str]:
    return feed(config, *text)


# --- WORD ----------------------------------------------------------------------------------------


def test_word_emits_each_word_once_whitespace_follows() -> None:
    buffer = PhraseBuffer(WORD)
    assert buffer.push("Hel") == []
    assert buffer.push("lo wor") == ["Hello"]
    assert buffer.push("ld") == []
    assert buffer.push("\n\n how  are") == ["world", "how"]
    assert buffer.flush() == ["are"]


def test_word_keeps_punctuation_with_the_word() -> None:
    assert feed(WORD, "Hi, Dr. Who! 3.5 ") == ["Hi,", "Dr.", "Who!", "3.5"]


# --- SENTENCE ------------------------------------------------------------------------------------


def test_sentence_cuts_after_sentence_marks_followed_by_whitespace() -> None:
    text = "Hello there. How are you? I am fine! Thanks"
    expected = ["Hello there.", "How are you?", "I am fine!", "Thanks"]
    assert feed(SENTENCE, text) == expected
    assert per_char(SENTENCE, text) == expected


def test_sentence_ignores_commas_and_colons() -> None:
    assert feed(SENTENCE, "Well, yes: no; maybe. Ok") == ["Well, yes: no; maybe.", "Ok"]


def test_sentence_mark_at_buffer_end_waits_for_the_next_character() -> None:
    buffer = PhraseBuffer(SENTENCE)
    assert buffer.push("It costs 3.") == []
    assert buffer.push("5 dollars. ") == ["It costs 3.5 dollars."]
    buffer = PhraseBuffer(SENTENCE)
    assert buffer.push("Done.") == []
    assert buffer.push(" Next") == ["Done."]


def test_numbers_are_not_boundaries() -> None:
    assert feed(SENTENCE, "Pi is 3.14159 and 1,000 is big. Yes") == ["Pi is 3.14159 and 1,000 is big.", "Yes"]
    assert feed(PHRASE, "We shipped 1,000,000 units to 3.5 million people, wow") == [
        "We shipped 1,000,000 units to 3.5 million people,",
        "wow",
    ]


def test_closing_quotes_and_brackets_after_the_mark() -> None:
    assert feed(SENTENCE, 'He said "stop." Then he left (quickly!) and ran. End') == [
        'He said "stop."',
        "Then he left (quickly!)",
        "and ran.",
        "End",
    ]


def test_newlines_count_as_whitespace() -> None:
    assert feed(SENTENCE, "First line.\nSecond line!\n\nThird") == ["First line.", "Second line!", "Third"]


def test_ellipsis_and_repeated_marks() -> None:
    assert feed(SENTENCE, "Well... Really?! Yes") == ["Well...", "Really?!", "Yes"]


# --- abbreviations -------------------------------------------------------------------------------


@pytest.mark.parametrize("abbreviation", ["Dr.", "Mr.", "Mrs.", "Ms.", "St.", "e.g.", "i.e.", "vs.", "etc."])
def test_abbreviations_do_not_end_a_sentence(abbreviation: str) -> None:
    text = f"Ask about {abbreviation} Something else. Next"
    assert feed(SENTENCE, text) == [f"Ask about {abbreviation} Something else.", "Next"]
    assert per_char(SENTENCE, text) == [f"Ask about {abbreviation} Something else.", "Next"]


def test_abbreviations_are_case_insensitive_and_may_follow_an_opener() -> None:
    assert feed(SENTENCE, "See DR. Who (e.g. this one). Ok") == ["See DR. Who (e.g. this one).", "Ok"]


def test_abbreviation_not_a_boundary_in_phrase_strategy_either() -> None:
    config = PhraseConfig(min_phrase_length=5, first_phrase_min_length=5)
    assert feed(config, "Call Mrs. Robinson today, please") == ["Call Mrs. Robinson today,", "please"]


def test_etc_ends_a_chunk_only_at_the_end_of_text() -> None:
    assert feed(SENTENCE, "Apples, pears, etc. Are fruit. ") == ["Apples, pears, etc. Are fruit."]
    assert feed(SENTENCE, "Apples, pears, etc.") == ["Apples, pears, etc."]


def test_initials_are_not_boundaries_but_the_pronoun_i_is() -> None:
    assert feed(SENTENCE, "J. R. R. Tolkien wrote it. Yes") == ["J. R. R. Tolkien wrote it.", "Yes"]
    assert feed(SENTENCE, "So did I. Then we left") == ["So did I.", "Then we left"]


def test_comma_after_abbreviation_is_still_a_phrase_boundary() -> None:
    config = PhraseConfig(min_phrase_length=5, first_phrase_min_length=5)
    assert feed(config, "Fruit, e.g., apples") == ["Fruit,", "e.g.,", "apples"]


# --- PHRASE --------------------------------------------------------------------------------------


def test_phrase_cuts_at_first_boundary_at_or_after_min_length() -> None:
    text = "Yes, of course, I can help you with that: first, open the app. Then wait"
    assert feed(PHRASE, text) == [
        "Yes, of course, I can help you with that:",
        "first, open the app.",
        "Then wait",
    ]


def test_phrase_min_length_is_measured_stripped_and_inclusive() -> None:
    config = PhraseConfig(min_phrase_length=10, first_phrase_min_length=10)
    # "abcd efgh," is exactly 10 characters: cut; leading whitespace does not count.
    assert feed(config, "   abcd efgh, ijk lmn, op") == ["abcd efgh,", "ijk lmn, op"]
    assert feed(config, "abcd efg, ijk lmn, op") == ["abcd efg, ijk lmn,", "op"]


def test_phrase_without_boundary_waits_for_flush() -> None:
    buffer = PhraseBuffer(PHRASE)
    assert buffer.push("a long run of words without any punctuation at all ") == []
    assert buffer.flush() == ["a long run of words without any punctuation at all"]


def test_default_config_cuts_the_first_phrase_at_the_first_boundary() -> None:
    assert PhraseConfig().strategy is PhraseStrategy.PHRASE
    assert feed(PhraseConfig(), "Sure, I can do that, no problem at all. Bye") == [
        "Sure,",
        "I can do that, no problem at all.",
        "Bye",
    ]


def test_first_phrase_min_length_applies_only_to_the_first_phrase() -> None:
    config = PhraseConfig(min_phrase_length=30, first_phrase_min_length=8)
    text = "Ok, well, let me see, here is the plan, step one, step two, done. "
    assert feed(config, text) == [
        "Ok, well,",
        "let me see, here is the plan, step one,",
        "step two, done.",
    ]


def test_first_phrase_max_words_cuts_without_punctuation() -> None:
    config = PhraseConfig(first_phrase_max_words=3, first_phrase_min_length=20)
    buffer = PhraseBuffer(config)
    assert buffer.push("let me chec") == []
    assert buffer.push("k that for you, please wait. ") == [
        "let me check",
        "that for you, please wait.",  # later phrases use min_phrase_length (20) again
    ]
    assert buffer.flush() == []


def test_first_phrase_max_words_cut_only_once_whitespace_follows() -> None:
    buffer = PhraseBuffer(PhraseConfig(first_phrase_max_words=2, first_phrase_min_length=50))
    assert buffer.push("one tw") == []
    assert buffer.push("o") == []
    assert buffer.push(" three four five six") == ["one two"]


def test_punctuation_before_max_words_wins() -> None:
    config = PhraseConfig(strategy=PhraseStrategy.SENTENCE, first_phrase_max_words=5)
    assert feed(config, "Hi. How are you doing today my friend? Good") == [
        "Hi.",
        "How are you doing today my friend?",
        "Good",
    ]


def test_sentence_with_first_phrase_max_words() -> None:
    config = PhraseConfig(strategy=PhraseStrategy.SENTENCE, first_phrase_max_words=2)
    assert feed(config, "I will look that up now. One moment please. ") == [
        "I will",
        "look that up now.",
        "One moment please.",
    ]


def test_first_phrase_options_return_after_flush_and_reset() -> None:
    config = PhraseConfig(first_phrase_max_words=1, min_phrase_length=100)
    buffer = PhraseBuffer(config)
    assert buffer.push("Hello there my friend ") == ["Hello"]
    assert buffer.flush() == ["there my friend"]
    assert buffer.push("Again and again ") == ["Again"]
    buffer.reset()
    assert buffer.push("Third time ") == ["Third"]


# --- flush and reset -----------------------------------------------------------------------------


def test_flush_returns_stripped_remainder_and_starts_over() -> None:
    buffer = PhraseBuffer(SENTENCE)
    assert buffer.push("  trailing words  \n") == []
    assert buffer.flush() == ["trailing words"]
    assert buffer.flush() == []
    assert buffer.push("New.") == []
    assert buffer.push(" answer") == ["New."]


def test_flush_of_whitespace_only_is_empty() -> None:
    buffer = PhraseBuffer(PHRASE)
    buffer.push(" \n\t ")
    assert buffer.flush() == []


def test_reset_drops_everything() -> None:
    buffer = PhraseBuffer(PhraseConfig())  # first phrase: cut at the first boundary
    buffer.push("this was being said when the caller interrupted")
    buffer.reset()
    assert buffer.flush() == []
    assert buffer.push("Fresh start, ") == ["Fresh start,"]


def test_empty_and_whitespace_pushes_emit_nothing() -> None:
    buffer = PhraseBuffer(WORD)
    assert buffer.push("") == []
    assert buffer.push("   ") == []
    assert buffer.push("\n") == []
    assert buffer.flush() == []


def test_many_phrases_in_one_push() -> None:
    assert feed(SENTENCE, "One. Two! Three? Four. Fi", flush=False) == ["One.", "Two!", "Three?", "Four."]
    assert feed(SENTENCE, "A. B! C? D. ", flush=False) == ["A. B!", "C?"]  # "A.", "D." look like initials


# --- config --------------------------------------------------------------------------------------


def test_config_accepts_strategy_strings() -> None:
    assert PhraseConfig(strategy="sentence").strategy is PhraseStrategy.SENTENCE  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PhraseConfig(strategy="paragraph")  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["min_phrase_length", "first_phrase_min_length", "first_phrase_max_words"])
def test_config_rejects_negative_values(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        PhraseConfig(**{field: -1})  # type: ignore[arg-type]


# --- properties ----------------------------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        "Dr.",
        "Mr.",
        "e.g.",
        "etc.",
        "vs.",
        "I.",
        "J.",
        "3.5",
        "1,000",
        "3.",
        "ok",
        "yes,",
        "wait:",
        "so;",
        "end.",
        "what?",
        "wow!",
        '"hi."',
        "(no)",
        "...",
        ".",
        ",",
        "a",
        "word",
        " ",
        "  ",
        "\n",
        "\t",
    ]
)
TEXT = st.one_of(
    st.text(alphabet=st.sampled_from(list("abXY .,:;!?\n\t\"'()3")), max_size=120),
    st.lists(TOKENS, max_size=40).map(" ".join),
    st.lists(TOKENS, max_size=40).map("".join),
    st.text(max_size=60),  # any unicode, including exotic whitespace
)
CONFIGS = st.builds(
    PhraseConfig,
    strategy=st.sampled_from(list(PhraseStrategy)),
    min_phrase_length=st.integers(0, 40),
    first_phrase_min_length=st.integers(0, 40),
    first_phrase_max_words=st.integers(0, 4),
)


def split_at(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted(c % (len(text) + 1) for c in cuts), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def no_whitespace(text: str) -> str:
    return "".join(text.split())


@settings(max_examples=300, deadline=None)
@given(config=CONFIGS, text=TEXT, cuts=st.lists(st.integers(0, 10_000), max_size=15))
def test_output_is_the_input_and_independent_of_chunking(
    config: PhraseConfig, text: str, cuts: list[int]
) -> None:
    whole = feed(config, text)
    chunked = feed(config, *split_at(text, cuts))
    assert chunked == whole
    assert per_char(config, text) == whole
    assert no_whitespace("".join(whole)) == no_whitespace(text)
    for phrase in whole:
        assert phrase and phrase == phrase.strip()


@settings(max_examples=200, deadline=None)
@given(config=CONFIGS, text=TEXT)
def test_strategy_shapes(config: PhraseConfig, text: str) -> None:
    buffer = PhraseBuffer(config)
    pushed = buffer.push(text)
    if config.strategy is PhraseStrategy.WORD:
        assert all(len(p.split()) == 1 for p in pushed)
    elif config.first_phrase_max_words == 0:
        marks = ".!?" if config.strategy is PhraseStrategy.SENTENCE else ",.:;!?"
        for i, phrase in enumerate(pushed):
            assert phrase.rstrip("\"')]}»”’")[-1] in marks
            if config.strategy is PhraseStrategy.PHRASE:
                minimum = config.first_phrase_min_length if i == 0 else config.min_phrase_length
                assert len(phrase) >= minimum
    else:
        assert len(pushed[0].split()) <= config.first_phrase_max_words if pushed else True
