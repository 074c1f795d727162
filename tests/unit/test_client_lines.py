"""The Python client's lines: word-by-word pieces grouped by the browser page's rules
(``client/transcript.js``, ``Transcript.group``), the console that prints them as they close,
the subtitles and the WhisperLive callback made of them, and the ``commit_after`` it asks for.

The page's own cases (tests/browser/test_lines_browser.py) run here on the Python side, and
the same pieces go through the page's script in Node to show both sides draw the same lines."""

from __future__ import annotations

import asyncio
import io
import json
import math
import random
import shutil
import subprocess
from pathlib import Path

import pytest
import srt

from whisper_live.client import StreamOptions, Transcript, TranscriptionClient
from whisper_live.client.cli import build_parser
from whisper_live.client.console import Console, window_lines
from whisper_live.client.transcript import (
    LINE_CHARS,
    LINE_PAUSE,
    SERVER_QUIET,
    Line,
    Segment,
    StreamClock,
    Word,
    close_lines,
    group_lines,
)
from whisper_live.client.transcription import LineCloser
from whisper_live.faces.whisperlive import protocol

# The constants are the page's (the Node test below runs the page's rule itself).
assert (LINE_PAUSE, SERVER_QUIET) == (1.0, 2.0)

PAGE_SCRIPT = Path(__file__).resolve().parents[2] / "client" / "transcript.js"


def seg(start, end, text, speaker=None, words=None) -> Segment:
    return Segment(start, end, text, True, words, speaker)


def texts(lines: list[Line]) -> list[str]:
    return [line.text for line in lines]


# ----------------------------------------------------------------------------- the page's cases


def test_a_line_ends_at_a_sentence_end_with_closing_quotes_or_brackets():
    mixed = [seg(0, 1, "He said"), seg(1, 2, '"stop."'), seg(2, 3, "Then (quietly"), seg(3, 4, "it ended.)"),
             seg(4, 5, "Wait\u2026"), seg(5, 6, "Really?"), seg(6, 7, "Yes!"), seg(7, 8, "No")]  # fmt: skip
    lines = group_lines(mixed)
    assert texts(lines) == [
        'He said "stop."',
        "Then (quietly it ended.)",
        "Wait\u2026",
        "Really?",
        "Yes!",
        "No",
    ]
    assert [line.open for line in lines] == [False] * 5 + [True]
    assert [(line.start, line.end) for line in lines[:2]] == [(0, 2), (2, 4)]
    assert group_lines(group_lines(mixed)) == lines  # grouping lines again changes nothing


def test_a_line_ends_where_the_speaker_changes():
    lines = group_lines([seg(0, 1, "Good morning", "A"), seg(1.1, 2, "to you", "A"),
                         seg(2.1, 3, "Hi", "B"), seg(3.1, 4, "there", "B")])  # fmt: skip
    assert [(line.speaker, line.text) for line in lines] == [("A", "Good morning to you"), ("B", "Hi there")]


def test_a_line_ends_at_a_pause_of_a_second():
    assert texts(group_lines([seg(0, 1, "one"), seg(1.9, 2.5, "two"), seg(3.5, 4, "three")])) == [
        "one two",  # 0.9 s joins
        "three",  # 1.0 s splits
    ]


def test_a_line_is_at_most_a_caption_long_and_a_segment_is_never_cut():
    pieces = [seg(i * 0.5, i * 0.5 + 0.5, f"abcdefghi{i % 10}") for i in range(12)]
    assert [len(t) for t in texts(group_lines(pieces))] == [76, 54]  # the 8th piece would pass 84
    assert all(len(t) <= LINE_CHARS for t in texts(group_lines(pieces)))
    assert [len(t) for t in texts(group_lines([seg(0, 9, "x" * 100), seg(9, 10, "y")]))] == [100, 1]


def test_unspaced_scripts_join_without_a_space_and_their_full_stop_ends_a_sentence():
    lines = group_lines([seg(0, 1, "\u6211\u4eec"), seg(1, 2, "\u8d70\u5427\u3002"), seg(2, 3, "\u306f\u3044"),
                         seg(3, 4, "OK"), seg(4, 5, "then.")])  # fmt: skip
    assert texts(lines) == ["\u6211\u4eec\u8d70\u5427\u3002", "\u306f\u3044 OK then."]
    thai = group_lines([seg(0, 1, "\u0e2a\u0e27\u0e31\u0e2a"), seg(1, 2, "\u0e14\u0e35")])
    assert texts(thai) == ["\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35"]


def test_a_lines_words_and_speaker_are_its_pieces():
    a = seg(0.9, 1.3, " The two", "SPEAKER_00", (Word(0.9, 1.1, " The", 0.9), Word(1.1, 1.3, " two", 0.8)))
    b = seg(
        1.3, 2.4, " stray kittens.", "SPEAKER_00", (Word(1.3, 1.8, " stray"), Word(1.8, 2.4, " kittens."))
    )
    (line,) = group_lines([a, b])
    assert line.text == "The two stray kittens." and line.speaker == "SPEAKER_00"
    assert line.words == a.words + b.words and line.segments == (a, b)
    assert not line.open and (line.start, line.end) == (0.9, 2.4)
    assert group_lines([seg(0, 1, "no"), seg(1, 2, "words")])[0].words is None


def test_the_partial_continues_the_open_line_only():
    t = Transcript()
    t.update([{"start": 0.9, "end": 1.3, "text": " The two", "completed": True},
              {"start": 1.3, "end": 2.0, "text": " stray kittens", "completed": False}])  # fmt: skip
    assert texts(t.lines_with_partial) == ["The two stray kittens"] and t.closed_lines == []
    assert t.text == "The two" and t.text_with_partial == "The two stray kittens"
    t.update([{"start": 0.9, "end": 1.3, "text": " The two", "completed": True},
              {"start": 1.3, "end": 3.9, "text": " stray kittens gradually make themselves at home.", "completed": True},
              {"start": 4.0, "end": 4.5, "text": " Somehow", "completed": False}])  # fmt: skip
    assert texts(t.lines_with_partial) == [
        "The two stray kittens gradually make themselves at home.",
        "Somehow",
    ]
    assert len(t.closed_lines) == 1  # a sentence's end closes its line at once
    t.update([{"start": 4.0, "end": 4.5, "text": " Somehow", "completed": True},
              {"start": 6.0, "end": 6.5, "text": " or other", "completed": False}])  # fmt: skip
    assert texts(t.lines_with_partial)[1:] == ["Somehow", "or other"]  # after a pause: a line of its own
    # the partial pending comes after a pause: "Somehow" can grow no more (close_lines)
    assert texts(t.closed_lines) == texts(t.lines) and not t.closed_lines[-1].open
    t.update([{"start": 4.0, "end": 4.5, "text": " Somehow", "completed": True},
              {"start": 4.6, "end": 5.0, "text": " or other", "completed": False}])  # fmt: skip
    assert texts(t.closed_lines) == texts(t.lines)[:1]  # a partial that continues it: still open
    t.final = True  # the stream is over: the open line closes
    assert texts(t.closed_lines) == texts(t.lines) and len(t.lines) == 2 and not t.closed_lines[-1].open
    spoken = Transcript()
    spoken.update([{"start": 0, "end": 1, "text": " Hello", "completed": True, "speaker": "SPEAKER_00"},
                   {"start": 1, "end": 2, "text": " there", "completed": False}])  # fmt: skip
    assert texts(spoken.lines_with_partial) == ["Hello", "there"]  # the partial has no speaker yet


def test_lines_are_grouped_as_segments_arrive_and_again_when_they_are_replaced():
    rng = random.Random(7)
    pieces = random_pieces(rng, 300)
    t = Transcript()
    for i in range(0, len(pieces), 3):  # every update re-sends some, as the server does
        window = pieces[max(0, i - 4) : i + 3]
        t.update([{"start": s.start, "end": s.end, "text": s.text, "completed": True, "speaker": s.speaker}
                  for s in window])  # fmt: skip
        assert t.lines == group_lines(t.segments)
    assert t.segments == pieces
    t.segments = pieces[:50]
    assert t.lines == group_lines(pieces[:50])
    t.segments = [*pieces[:49], pieces[60]]
    assert t.lines == group_lines(t.segments)


def test_the_last_line_closes_once_its_utterance_is_over():
    """The page's cases (tests/browser/test_lines_browser.py, ``close``): nothing pending, the
    stream a second past the line's end and the server quiet for two; or the partial pending
    after a pause; or the stream ended. Only the last line, only an open one."""
    lines = group_lines([seg(0, 1, "Good"), seg(1, 2, "morning")])
    pending = Segment(2.1, 2.5, "everyone", False)

    def last_open(**state) -> bool:
        return close_lines(lines, **state)[-1].open

    assert last_open()  # nothing known yet
    assert last_open(position=2.9, quiet=5)  # 0.9 s past its end
    assert last_open(position=9, quiet=1.9)  # the server spoke 1.9 s ago: maybe mid-utterance
    assert not last_open(position=3.0, quiet=2)  # LINE_PAUSE past it, quiet SERVER_QUIET, nothing pending
    assert last_open(partial=pending, position=9, quiet=9)  # a partial may still continue it
    assert not last_open(partial=Segment(3.0, 3.5, "everyone", False))  # it comes after a pause
    assert not last_open(position=3.0, quiet=2, partial=Segment(2.5, 3, " ", False))  # an empty one is none
    assert not last_open(partial=pending, ended=True)  # the stream ended: nothing more comes
    assert not close_lines(group_lines([seg(0, 1, "Good morning.")]))[-1].open  # a sentence's end
    assert close_lines([]) == []
    # only the last line; the lines given are not changed (they are the transcript's cache)
    two = group_lines([seg(0, 1, "one"), seg(3, 4, "two")])
    closed = close_lines(two, position=9, quiet=9)
    assert [line.open for line in closed] == [True, False] and two[-1].open
    # closing never changes the grouping: a piece that continues the line joins it again
    again = group_lines([*closed, seg(4.5, 5, "three")])
    assert [(line.text, line.open) for line in again] == [("one", True), ("two three", True)]
    assert again == group_lines([*two, seg(4.5, 5, "three")])


def test_the_stream_clock_is_what_the_server_showed_plus_the_time_since_at_most_the_audio_sent():
    clock = StreamClock()
    assert clock.read(100.0) == (None, None)  # nothing heard yet
    clock.heard([seg(0, 1, "Good"), Segment(1, 2, "morning", False)], now=100.0)
    assert clock.read(100.5) == (2.5, 0.5)  # the furthest end shown, and on as fast as the clock
    clock.heard([seg(0, 1, "Good")], now=101.0)  # an older end proves nothing new
    assert clock.read(103.0) == (5.0, 2.0)
    clock.cap = 4.2  # the client sent 4.2 s of audio: the stream can be no further
    assert clock.read(110.0) == (4.2, 9.0)
    clock.heard([Segment(0, math.inf, "bad", False)], now=111.0)  # a nonsense time is ignored
    assert clock.read(111.0)[0] == 4.2
    real = StreamClock()
    real.heard([seg(0, 2, "x")])  # time.monotonic() by default
    position, quiet = real.read()
    assert 2.0 <= position < 3.0 and 0 <= quiet < 1.0


def test_a_transcript_closes_its_last_line_by_its_clock():
    t = Transcript()
    t.update([{"start": 0, "end": 1, "text": " Good", "completed": True},
              {"start": 1, "end": 2, "text": " morning", "completed": True}])  # fmt: skip
    heard = t.clock.last
    assert t.closed_lines_at(heard + 0.5) == []  # just heard
    assert t.closed_lines_at(heard + SERVER_QUIET - 0.01) == []  # not quiet long enough
    assert texts(t.closed_lines_at(heard + SERVER_QUIET)) == ["Good morning"]  # the utterance is over
    t.clock.cap = 2.5  # only 2.5 s of audio went out: the stream cannot be a second past the line
    assert t.closed_lines_at(heard + 60) == []
    t.final = True
    assert texts(t.closed_lines_at(heard)) == ["Good morning"]


# ----------------------------------------------------------------------------- the page itself

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "\u6211\u4eec",
    "\u8d70\u5427",
    "\u0e14\u0e35",
    "OK",
    "x" * 30,
]
ENDS = ["", "", "", ".", "?", "!", "\u2026", '."', ".)", "\u3002", "\uff1f", ".\u300d", ","]


def random_pieces(rng: random.Random, n: int) -> list[Segment]:
    pieces, at = [], 0.0
    for _ in range(n):
        at += rng.choice([0.0, 0.0, 0.05, 0.5, 0.99, 1.0, 1.01, 2.0])
        end = at + rng.uniform(0.1, 2.0)
        text = " " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5))) + rng.choice(ENDS)
        pieces.append(
            seg(round(at, 3), round(end, 3), text, rng.choice([None, None, "SPEAKER_00", "SPEAKER_01"]))
        )
        at = end
    return pieces


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the page's script")
def test_the_page_draws_the_same_lines():
    """Random pieces (sentence ends of every kind, pauses either side of a second, speakers,
    CJK and Thai, long words) through client/transcript.js in Node and through group_lines."""
    rng = random.Random(2026)
    pieces = random_pieces(rng, 2000)
    script = PAGE_SCRIPT.read_text(encoding="utf-8") + (
        "\nlet input = ''; process.stdin.on('data', (d) => (input += d));"
        "\nprocess.stdin.on('end', () => process.stdout.write(JSON.stringify(Transcript.group(JSON.parse(input)))));"
    )
    raw = [{"start": s.start, "end": s.end, "text": s.text, **({"speaker": s.speaker} if s.speaker else {})}
           for s in pieces]  # fmt: skip
    out = subprocess.run(
        ["node", "-e", script], input=json.dumps(raw), capture_output=True, text=True, check=True
    )
    page = json.loads(out.stdout)
    ours = group_lines(pieces)
    assert len(page) > 200 and len(ours) < len(pieces)  # the case mixes joins and breaks
    assert [(p["start"], p["end"], p["text"], p.get("speaker"), p["open"]) for p in page] == [
        (line.start, line.end, line.text, line.speaker, line.open) for line in ours
    ]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the page's script")
def test_the_page_closes_the_same_lines():
    """Random last lines and states (partials either side of a pause, positions and quiet
    either side of the limits, ended) through the page's Transcript.close and close_lines."""
    rng = random.Random(7)
    cases = []
    for _ in range(2000):
        lines = group_lines(random_pieces(rng, rng.randint(1, 4)))
        end = lines[-1].end
        partial = rng.choice(
            [None, None, (end + rng.choice([0.0, 0.5, 0.99, 1.0, 1.5]), " more"), (end, " ")]
        )
        state = {
            "partial": None
            if partial is None
            else {"start": partial[0], "end": partial[0] + 1, "text": partial[1]},
            "position": rng.choice([None, end + rng.choice([0.0, 0.5, 0.99, 1.0, 3.0])]),
            "quiet": rng.choice([None, 0.5, 1.99, 2.0, 5.0]),
            "ended": rng.random() < 0.1,
        }
        cases.append((lines, state))
    script = PAGE_SCRIPT.read_text(encoding="utf-8") + (
        "\nlet input = ''; process.stdin.on('data', (d) => (input += d));"
        "\nprocess.stdin.on('end', () => process.stdout.write(JSON.stringify(JSON.parse(input).map("
        "([lines, state]) => Transcript.close(lines, state).map((l) => l.open)))));"
    )
    raw = [([{"start": x.start, "end": x.end, "text": x.text, "open": x.open} for x in lines], state)
           for lines, state in cases]  # fmt: skip
    out = subprocess.run(
        ["node", "-e", script], input=json.dumps(raw), capture_output=True, text=True, check=True
    )
    ours = []
    for lines, state in cases:
        p = state["partial"]
        partial = None if p is None else Segment(p["start"], p["end"], p["text"], False)
        closed = close_lines(lines, partial, state["position"], state["quiet"], state["ended"])
        ours.append([line.open for line in closed])
    page = json.loads(out.stdout)
    assert page == ours
    closes = sum(lines[-1].open and not o[-1] for (lines, _), o in zip(cases, ours, strict=True))
    stays = sum(lines[-1].open and o[-1] for (lines, _), o in zip(cases, ours, strict=True))
    assert closes > 100 and stays > 100, (closes, stays)  # the cases exercise both outcomes


# ----------------------------------------------------------------------------- what is shown

UPDATES = [
    [(0.9, 1.3, "The two", False)],
    [(0.9, 1.3, "The two", True), (1.3, 2.0, "stray kittens", False)],
    [(0.9, 1.3, "The two", True), (1.3, 2.4, "stray kittens gradually", True), (2.4, 3.0, "make", False)],
    [(1.3, 2.4, "stray kittens gradually", True), (2.4, 3.9, "make themselves at home.", True)],
    [
        (2.4, 3.9, "make themselves at home.", True),
        (5.0, 5.6, "Somehow or other", True),
        (5.6, 6.0, "cat", False),
    ],
    [(5.0, 5.6, "Somehow or other", True), (7.0, 7.4, "Hello", False)],
    [(5.0, 5.6, "Somehow or other", True), (7.0, 7.4, "Hello", True)],
]
LINES = ["The two stray kittens gradually make themselves at home.", "Somehow or other", "Hello"]


def play(console: Console | None = None, callback=None) -> Transcript:
    t = Transcript()
    for update in UPDATES:
        t.update([{"start": a, "end": b, "text": f" {x}", "completed": c} for a, b, x, c in update])
        if console is not None:
            console.update(t)
        if callback is not None:
            callback(t)
    t.final = True
    return t


def test_the_console_prints_each_line_once_when_it_closes(capsys):
    out = io.StringIO()
    console = Console(out=out)
    printed = []
    t = Transcript()
    for update in UPDATES:
        t.update([{"start": a, "end": b, "text": f" {x}", "completed": c} for a, b, x, c in update])
        console.update(t)
        printed.append(out.getvalue().splitlines())
    assert printed[2] == []  # "The two", "stray kittens gradually": pieces of an open line
    assert printed[3] == LINES[:1]  # the sentence ended
    assert printed[4] == LINES[:1]  # a partial continuing the line: its words may still join it
    assert printed[5] == LINES[:2]  # "Somehow or other" closed: the partial "Hello" comes after a pause
    assert printed[6] == LINES[:2]
    t.final = True
    console.finish(t)
    assert out.getvalue().splitlines() == LINES  # the open line closes at the end
    assert capsys.readouterr().err == ""  # no partial asked for


def message(*pieces) -> list[dict]:
    return [{"start": a, "end": b, "text": f" {x}", "completed": c} for a, b, x, c in pieces]


def test_the_console_prints_a_line_without_a_full_stop_once_the_server_is_quiet(capsys):
    """The defect this fixes: "Good morning" (no full stop) printed only when the speaker talks
    again. Now once the stream is a second past it and the server quiet for two."""
    out = io.StringIO()
    console = Console(timestamps=True, out=out)
    t = Transcript()
    t.update(message((0, 1, "Good", True), (1, 2, "morning", True)))
    heard = t.clock.last
    console.update(t, now=heard)
    console.update(t, now=heard + 1.5)  # a second past its end, but the server may still be in it
    assert out.getvalue() == ""
    console.update(t, now=heard + SERVER_QUIET)
    assert out.getvalue().splitlines() == ["[0.000 -> 2.000] Good morning"]
    console.update(t, now=heard + 10)  # printed once
    # The rare late piece that continues it (within LINE_PAUSE of its end): printed as a
    # continuation, since a terminal cannot take back the line; the next line as usual.
    t.update(message((2.5, 3, "everyone", True), (5, 5.5, "Next", False)))
    console.update(t, now=t.clock.last)
    t.update(message((5, 5.5, "Next.", True)))
    console.update(t, now=t.clock.last)
    t.final = True
    console.finish(t)
    assert out.getvalue().splitlines() == [
        "[0.000 -> 2.000] Good morning",
        "[2.500 -> 3.000] ... everyone",
        "[5.000 -> 5.500] Next.",
    ]
    assert capsys.readouterr().err == ""


def test_the_partial_line_shows_a_continuation_and_clears_when_the_line_is_printed(capsys):
    console = Console(show_partial=True, out=io.StringIO())
    t = Transcript()
    t.update(message((0, 1, "Good", True), (1, 2, "morning", False)))
    console.update(t, now=t.clock.last)
    t.update(message((0, 1, "Good", True), (1, 2, "morning", True)))
    console.update(t, now=t.clock.last)
    console.update(t, now=t.clock.last + 5)  # closed by the quiet: printed, the rewritten line cleared
    t.update(message((2.5, 3, "every", False)))
    console.update(t, now=t.clock.last)
    shown = [part for part in capsys.readouterr().err.split("\r\033[K")]
    assert shown[1:] == ["Good morning", "", "... every"]
    assert console.out.getvalue().splitlines() == ["Good morning"]


def test_the_line_closer_notifies_when_the_quiet_closes_a_line():
    """The timer ``TranscriptionClient`` runs beside the stream: a notification when the last
    line closes with no message, once; none while nothing changes."""
    calls = []
    closer = LineCloser(lambda t: calls.append(len(t.closed_lines)))
    closer.INTERVAL = 0.01
    t = Transcript()

    async def run() -> None:
        task = asyncio.create_task(closer.run(t))
        t.update(message((0, 1, "Good", True), (1, 2, "morning", True)))
        closer.updated(t)  # the message, as the stream calls it
        await asyncio.sleep(0.1)
        assert calls == [0]  # the server spoke just now
        t.clock.heard(t.segments, now=t.clock.last - SERVER_QUIET)  # as if that was 2 s ago
        await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(run())
    assert calls == [0, 1]
    client = TranscriptionClient(transcription_callback=lambda text, segments: calls.append(segments))
    closer = LineCloser(client._segments)
    closer.updated(t)  # the callback's lines: the last one completed, the utterance over
    assert [(s["text"], s["completed"]) for s in calls[-1]] == [("Good morning", True)]


def test_the_console_shows_the_open_line_with_the_partial(capsys):
    out = io.StringIO()
    console = Console(timestamps=True, show_partial=True, out=out)
    t = play(console)
    console.finish(t)
    err = capsys.readouterr().err
    shown = [part for part in err.split("\r\033[K") if part]
    assert shown[:4] == ["The two", "The two stray kittens", "The two stray kittens gradually make",
                         "Somehow or other cat"]  # fmt: skip
    assert out.getvalue().splitlines() == [
        "[0.900 -> 3.900] The two stray kittens gradually make themselves at home.",
        "[5.000 -> 5.600] Somehow or other",
        "[7.000 -> 7.400] Hello",
    ]
    assert err.endswith("\r\033[K")  # the rewritten line is cleared at the end


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_window_shows_the_last_lines_with_the_partial_on_the_open_one():
    t = Transcript()
    for update in UPDATES[:3]:
        t.update([{"start": a, "end": b, "text": f" {x}", "completed": c} for a, b, x, c in update])
    assert window_lines(t, 2) == ["The two stray kittens gradually make"]
    t = play()
    assert window_lines(t, 2) == LINES[1:]
    assert window_lines(t, 1, timestamps=True) == ["[7.000 -> 7.400] Hello"]
    screen = Terminal()
    console = Console(display_segments=2, out=screen)
    play(console)
    console.finish()
    assert screen.getvalue().rsplit("\033[J", 1)[1].splitlines() == LINES[1:]


def test_subtitles_and_text_are_lines():
    t = play()
    cues = list(srt.parse(t.to_srt()))
    assert [c.content for c in cues] == LINES
    assert [(c.start.total_seconds(), c.end.total_seconds()) for c in cues] == [
        (0.9, 3.9),
        (5.0, 5.6),
        (7.0, 7.4),
    ]
    assert t.to_vtt().count(" --> ") == 3 and "WEBVTT" in t.to_vtt()
    assert t.text == " ".join(LINES) and len(t.segments) == 5


def test_whisperlive_callback_gets_lines_the_open_one_not_completed():
    calls = []
    client = TranscriptionClient(transcription_callback=lambda text, segments: calls.append((text, segments)))
    t = play(callback=client._segments)
    client._segments(t)  # the run's last call, the stream over
    text, segments = calls[2]
    assert text == "The two stray kittens gradually make"
    assert [(s["text"], s["completed"]) for s in segments] == [
        ("The two stray kittens gradually make", False)
    ]
    assert set(segments[0]) == {"start", "end", "text", "completed", "words", "speaker"}
    assert [(s["text"], s["completed"]) for s in calls[3][1]] == [(LINES[0], True)]
    assert [(s["text"], s["completed"]) for s in calls[4][1]] == [
        (LINES[0], True),
        ("Somehow or other cat", False),  # the partial continues the open line
    ]
    assert [(s["text"], s["completed"]) for s in calls[5][1]] == [
        (LINES[0], True),
        (LINES[1], True),  # the partial pending comes after a pause: the line is over
        ("Hello", False),
    ]
    assert [(s["text"], s["completed"]) for s in calls[-1][1]] == [(line, True) for line in LINES]


# ----------------------------------------------------------------------------- asking for it


def test_the_client_asks_for_word_by_word_unless_told_otherwise():
    assert StreamOptions().config()["commit_after"] == 0
    assert "commit_after" not in StreamOptions(commit_after=None).config()
    assert TranscriptionClient().options.config()["commit_after"] == 0
    assert TranscriptionClient(commit_after=8).options.config()["commit_after"] == 8
    assert build_parser().parse_args(["a.wav"]).commit_after == 0
    assert build_parser().parse_args(["a.wav", "--commit-after", "8"]).commit_after == 8
    with pytest.raises(SystemExit):  # a usage error, before any connection
        build_parser().parse_args(["a.wav", "--commit-after", "-1"])
    # the server takes it (WhisperLive's protocol, our extension), and its default is 8 s
    config = protocol.parse_config(json.dumps({"uid": "u", **StreamOptions().config()}))
    assert config.session.commit_after == 0
    assert protocol.parse_config(json.dumps({"uid": "u"})).session.commit_after == 8
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_config(json.dumps({"uid": "u", "commit_after": -1}))
