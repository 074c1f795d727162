"""LocalAgreement-2 on its own: which words of a hypothesis are settled."""

from __future__ import annotations

from whisper_live.core.agreement import Committed, LocalAgreement
from whisper_live.core.decodes import Word


def words(text: str, start: float = 0.0, step: float = 0.5) -> list[Word]:
    """One word every ``step`` seconds from ``start``, each lasting 0.4 s."""
    return [Word(start + i * step, start + i * step + 0.4, " " + w) for i, w in enumerate(text.split())]


def said(committed: list[Word]) -> str:
    return "".join(w.word for w in committed)


def test_commits_the_prefix_two_hypotheses_share():
    agreement = LocalAgreement()
    assert agreement.settled(words("Hello there how")) == [], "nothing to agree with yet"
    assert said(agreement.settled(words("Hello there how are you"))) == " Hello there how"
    assert said(agreement.pending) == " are you"


def test_case_and_punctuation_do_not_break_agreement():
    agreement = LocalAgreement()
    agreement.settled(words("hello, there. how"))
    assert said(agreement.settled(words("Hello there. How are"))) == " Hello there. How"


def test_no_commit_past_a_disagreement():
    agreement = LocalAgreement()
    agreement.settled(words("Hello there how"))
    assert agreement.settled(words("Hallo there now you")) == [], "two words changed"
    # the next hypothesis is compared with the last one, not the first
    assert said(agreement.settled(words("Hallo there now you doing"))) == " Hallo there now you"


def test_one_changed_word_does_not_stall_agreement_when_the_words_after_it_agree():
    agreement = LocalAgreement()
    agreement.settled(words("the aforesaid Gutenberg Bible is"))
    committed = agreement.settled(words("the aforementioned Gutenberg Bible is printed"))
    assert said(committed) == " the aforementioned Gutenberg Bible is", "the newer reading is taken"
    assert said(agreement.pending) == " printed"
    # a word dropped or added counts as one change too
    agreement = LocalAgreement()
    agreement.settled(words("block books which were the immediate"))
    assert said(agreement.settled(words("block books were the immediate predecessors"))) == (
        " block books were the immediate"
    )
    agreement = LocalAgreement()
    agreement.settled(words("a b c d"))
    assert said(agreement.settled(words("a x c e"))) == " a", "one word agreeing after a change is not enough"


def test_the_next_hypothesis_is_compared_with_what_was_not_committed():
    agreement = LocalAgreement()
    agreement.settled(words("One two three"))
    assert said(agreement.settled(words("One two three four"))) == " One two three"
    # the same window decoded again: the committed words are recognised by their times
    assert said(agreement.settled(words("One two three four five"))) == " four"
    assert said(agreement.pending) == " five"


def test_committed_words_in_the_window_are_recognised_by_text_not_time():
    committed = Committed()
    committed.add(words("One two three"))  # ends at 1.4 s
    # word times jitter: this decode puts "three" after the committed end, "four" before it
    restated = [
        Word(0.0, 0.4, " One"),
        Word(0.5, 0.9, " two"),
        Word(1.45, 1.6, " three,"),
        Word(1.3, 2.0, " four"),
    ]
    assert said(committed.new_words(restated)) == " four"
    # a hypothesis that heard one committed word differently still restates them all
    assert said(committed.new_words(words("One too three four five"))) == " four five"


def test_after_a_cut_a_restatement_of_the_last_committed_words_is_dropped():
    committed = Committed()
    committed.add(words("It was. Then"))  # ends at 1.4 s
    committed.cut(0.9)  # the window starts after "was."
    assert said(committed.new_words([Word(1.0, 1.4, " Then"), Word(1.5, 1.8, " more")])) == " more"
    committed.cut(1.4)
    assert said(committed.new_words([Word(1.5, 1.8, " then"), Word(1.9, 2.2, " more")])) == " more"


def test_after_a_cut_words_that_merely_resemble_the_committed_ones_are_new():
    committed = Committed()
    committed.add(words("it was"))  # ends at 0.9 s
    committed.cut(0.9)
    # "was" again, 3 s later: a new word, not a restatement
    later = [Word(4.0, 4.3, " was"), Word(4.4, 4.8, " good")]
    assert said(committed.new_words(later)) == " was good"


def test_reset_forgets_the_previous_hypothesis_and_the_commits():
    agreement = LocalAgreement()
    agreement.settled(words("Hello there how"))
    agreement.settled(words("Hello there how are"))
    agreement.reset()
    assert agreement.settled(words("Hello there how are")) == []
    assert said(agreement.settled(words("Hello there how are"))) == " Hello there how are"


def test_observe_takes_a_hypothesis_without_committing():
    agreement = LocalAgreement()
    agreement.observe(words("One two"))
    assert said(agreement.settled(words("One two three"))) == " One two"


def test_force_commits_the_new_words_before_the_horizon_but_never_the_last():
    agreement = LocalAgreement()
    # words end at 0.4, 0.9, 1.4, 1.9
    assert said(agreement.force(words("a b c d"), horizon=1.0)) == " a b"
    assert said(agreement.force(words("a b c d"), horizon=10.0)) == " c"
    assert agreement.force(words("x"), horizon=10.0) == []


def test_a_doubtful_word_is_held_until_it_is_old_enough():
    agreement = LocalAgreement()
    heard = words("the cat sat down")  # ends 0.4, 0.9, 1.4, 1.9
    heard[1].probability = 0.2  # "cat": the beam final may read it better
    for w in heard[:1] + heard[2:]:
        w.probability = 0.8
    agreement.settled(heard, end=2.0)
    assert said(agreement.settled(heard, end=2.5)) == " the", "held: it ends within 2 s of the audio's end"
    assert said(agreement.settled(heard, end=3.0)) == " cat sat down", "old enough: committed all the same"


def test_a_sure_word_heard_whole_is_settled_by_one_hypothesis():
    agreement = LocalAgreement()
    heard = words("It was a dark night")  # ends 0.4, 0.9, 1.4, 1.9, 2.4
    for w in heard:
        w.probability = 0.95
    heard[3].probability = 0.8  # "dark": sure enough to show, not to settle alone
    new, count, agreed = agreement.agreed(heard, end=2.5)
    assert (count, agreed) == (3, 3), "up to the first word not sure enough, nothing to agree with"
    # a sure word that ends within SURE_BEFORE (0.8 s) of the audio's end may be cut off
    cut = words("It was", step=0.8)  # ends 0.4, 1.2
    for w in cut:
        w.probability = 0.95
    assert agreement.agreed(cut, end=1.9)[1] == 1
    assert said(agreement.settled(heard, end=2.5)) == " It was a"
    # only right after the agreed words: a sure word after a disagreement waits
    later = words("dark night, the wind blew", start=1.5)
    for w in later:
        w.probability = 0.95
    later[0].word = " stark"
    assert agreement.settled(later, end=10.0) == []


def test_a_held_doubtful_word_is_settled_by_a_beam_reading_of_it():
    agreement = LocalAgreement()
    greedy = words("and there for far pleasanter")  # ends 0.4, 0.9, 1.4, 1.9, 2.4
    for w in greedy:
        w.probability = 0.8
    greedy[1].probability = 0.3  # "there": the greedy reading of "therefore"
    agreement.settled(greedy[:4], end=2.0)
    new, count, agreed = agreement.agreed(greedy, end=2.5)
    assert (count, agreed) == (1, 4), '"there" is held: it ends within DOUBT_HOLD of the end'
    assert said(agreement.commit(new, count)) == " and"
    beam = [
        Word(0.0, 0.4, " and", 0.9),
        Word(0.5, 1.4, " therefore", 0.6),
        Word(1.5, 1.9, " far", 0.9),
        Word(2.0, 2.4, " pleasanter", 0.9),
    ]
    committed, disputed = agreement.confirmed(beam, new[count:agreed])
    assert said(committed) == " therefore far", "the beam's reading of the held words, whatever their count"
    assert disputed == []
    assert said(agreement.pending) == " pleasanter"
    assert agreement.confirmed(beam, []) == ([], []), "nothing held: nothing to confirm"


def test_a_beam_reading_unlike_every_earlier_one_is_not_committed():
    greedy = words("with the thousands of spectators")  # ends 0.4, 0.9, 1.4, 1.9, 2.4
    held = greedy[1:4]
    beam = words("with thousands of spectators")
    readings = [["the", "thousands", "of"]]
    agreement = LocalAgreement()
    agreement.commit(greedy[:4], 1)
    committed, disputed = agreement.confirmed(beam, held, readings)
    assert committed == [] and said(disputed) == " thousands of", "one reading against another"
    assert said(agreement.pending) == " thousands of spectators", "the next is compared with the beam's"
    committed, disputed = agreement.confirmed(greedy, disputed, [*readings, ["thousands", "of"]])
    assert (said(committed), disputed) == (" the thousands of", []), "as the greedy agreement read it"
    agreement = LocalAgreement()
    agreement.commit(greedy[:4], 1)
    assert said(agreement.confirmed(beam, held)[0]) == " thousands of", "no readings: the beam's, whatever"


def test_agreement_past_one_changed_word_says_where_and_how_the_previous_hypothesis_read_it():
    agreement = LocalAgreement()
    agreement.settled(words("with the thousands of"))
    new, count, agreed = agreement.agreed(words("with thousands of spectators"))
    assert (count, agreed) == (3, 3), "one word dropped, two agree after it"
    assert agreement.change == (1, ["the", "thousands", "of"])
    agreement = LocalAgreement()
    agreement.settled(words("with the thousands"))
    agreement.agreed(words("with the thousands of"))
    assert agreement.change is None, "word for word"
