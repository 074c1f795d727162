"""LocalAgreement on its own: which words of a hypothesis are settled."""

from __future__ import annotations

from whisper_live.core.agreement import LocalAgreement
from whisper_live.core.decodes import Word


def words(text: str, start: float = 0.0, step: float = 0.5) -> list[Word]:
    """One word every ``step`` seconds from ``start``, each lasting 0.4 s."""
    return [Word(start + i * step, start + i * step + 0.4, " " + w) for i, w in enumerate(text.split())]


def settle(agreement: LocalAgreement, *hypotheses: str, window: float = 5.0) -> int:
    cut = 0
    for text in hypotheses:
        cut = agreement.settled(words(text), window, window)
    return cut


def test_commits_up_to_the_last_sentence_end_both_hypotheses_share():
    agreement = LocalAgreement(max_window=24.0)
    assert agreement.settled(words("Hello there. How are"), 2.0, 2.0) == 0, "nothing to agree with yet"
    assert agreement.settled(words("Hello there. How are you? Fine"), 3.0, 3.0) == 2


def test_the_last_sentence_end_in_the_agreement_wins():
    assert settle(LocalAgreement(24.0), "A. B. C! D", "A. B. C! E F") == 3


def test_case_and_punctuation_do_not_break_agreement():
    assert settle(LocalAgreement(24.0), "hello, there. how", "Hello there. How are") == 2


def test_no_commit_past_a_disagreement():
    assert settle(LocalAgreement(24.0), "Hello there. How are", "Hallo there. How are you") == 0


def test_the_last_word_is_never_committed():
    """It may be cut off mid-word, even when both hypotheses end in it with a full stop."""
    assert settle(LocalAgreement(24.0), "Hello there.", "Hello there.") == 0
    assert settle(LocalAgreement(24.0), "One. Two.", "One. Two.") == 1


def test_the_next_hypothesis_is_compared_with_what_was_not_committed():
    agreement = LocalAgreement(24.0)
    assert settle(agreement, "One. Two three", "One. Two three four") == 1
    # the window now starts at "Two": its next hypothesis agrees with "Two three" (compared
    # with the whole previous hypothesis "One. Two three four" it would agree on nothing)
    assert agreement.settled(words("Two three. Five", start=1.0), 5.0, 5.0) == 2


def test_reset_forgets_the_previous_hypothesis():
    agreement = LocalAgreement(24.0)
    settle(agreement, "Hello there. How")
    agreement.reset()
    assert settle(agreement, "Hello there. How are") == 0


def test_a_window_at_the_max_commits_its_older_half_without_a_sentence_end():
    agreement = LocalAgreement(max_window=10.0)
    text = " ".join(f"w{i}" for i in range(20))  # words every 0.5 s, the last ends at 9.9 s
    assert agreement.settled(words(text), 9.9, 9.9) == 0, "below the max window: wait"
    agreement.reset()
    # window end 10.0, horizon 5.0: the words ending by then (w0..w9) go, with no agreement
    assert agreement.settled(words(text), 10.0, 10.0) == 10


def test_at_the_max_window_agreed_words_go_except_the_last_two():
    agreement = LocalAgreement(max_window=10.0)
    text = " ".join(f"w{i}" for i in range(20))
    agreement.settled(words(text), 9.9, 9.9)
    # horizon at 5.0 would give 10 words; all 20 agree, and all but the last two go
    assert agreement.settled(words(text), 10.0, 10.0) == 18


def test_a_forced_commit_never_takes_the_only_word():
    agreement = LocalAgreement(max_window=1.0)
    assert agreement.settled(words("w0"), 2.0, 2.0) == 0
    assert agreement.settled(words("w0"), 2.0, 2.0) == 0
    assert agreement.settled([], 2.0, 2.0) == 0
