"""The word-by-word measures of bench_longform.py: alignment, first appearances, erasure."""

from harness import longform_metrics as lm
from harness.longform_metrics import Display


def test_words_ignore_case_punctuation_and_spacing():
    assert lm.words(" Printing, in the ONLY sense—with which we’re") == [
        "printing",
        "in",
        "the",
        "only",
        "sense",
        "with",
        "which",
        "we're",
    ]


def test_align_pairs_equal_words_across_edits():
    a = lm.words("the cat sat on the mat")
    b = lm.words("a cat sat in on the mat today")
    # "the"->"a" substituted, "in" inserted, "today" inserted
    assert lm.align(a, b) == [(1, 1), (2, 2), (3, 4), (4, 5), (5, 6)]
    assert lm.align([], b) == []
    assert lm.align(a, []) == []
    assert lm.align(a, a) == [(i, i) for i in range(len(a))]


def test_align_repeated_words_line_up_in_order():
    assert lm.align(lm.words("to be or not to be"), lm.words("to be not to be")) == [
        (0, 0),
        (1, 1),
        (3, 2),
        (4, 3),
        (5, 4),
    ]


def test_first_committed_counts_words_of_growing_completed_text():
    final = lm.words("one two three four")
    shown = [
        Display(1.0, "", "one"),
        Display(2.0, " one two", " three"),
        Display(3.5, " one two three four", ""),
    ]
    assert lm.first_committed(final, shown) == [2.0, 2.0, 3.5, 3.5]


def test_first_displayed_takes_the_first_partial_that_lines_up():
    final = lm.words("one two three four five")
    shown = [
        Display(1.0, "", " one"),
        Display(2.0, "", " one too three"),  # "too" is not "two": two is not shown yet
        Display(3.0, " one", " two three for"),
        Display(4.0, " one two three", " four"),
        Display(5.0, " one two three four five", ""),
    ]
    assert lm.first_displayed(final, shown) == [1.0, 3.0, 2.0, 4.0, 5.0]


def test_emission_latencies_skip_spoken_words_the_final_lacks():
    spoken = [("one", 0.5), ("two", 1.0), ("three", 1.5), ("four", 2.0)]
    final = ["one", "three", "four", "extra"]
    latencies, missing = lm.emission_latencies(spoken, final, [1.0, 2.0, 3.0, 3.0])
    assert latencies == [0.5, 0.5, 1.0]
    assert missing == 1


def test_emission_latencies_of_a_word_never_seen_count_as_missing():
    latencies, missing = lm.emission_latencies([("one", 0.5)], ["one"], [None])
    assert latencies == [] and missing == 1


def test_erasure_counts_what_each_update_takes_back():
    # growing text costs nothing
    assert lm.erasure(["a", "a b", "a b c"]) == 0
    # "a bc" -> "a bd": one character taken back; "a bd" -> "x": four
    assert lm.erasure(["a bc", "a bd", "x"]) == 1 + 4
    assert lm.erasure([]) == 0 and lm.erasure(["only"]) == 0


def test_normalized_erasure_is_over_the_final_length():
    assert lm.normalized_erasure(["hello wor", "hello world"]) == 0.0
    assert lm.normalized_erasure(["hello word", "hello world"]) == 1 / 11
    assert lm.normalized_erasure([]) == 0.0
    assert lm.normalized_erasure(["gone", ""]) == 0.0
