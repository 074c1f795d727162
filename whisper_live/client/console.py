"""What a person sees while a stream runs: the text on the console, in lines.

The stream comes word by word (a completed segment every few words); the console shows lines
(``Transcript.lines``: sentences, or speech up to a pause, at most a caption long), never
the pieces. Two shapes. The log (the default, and always when stdout is not a terminal):
each line once, when it closes (``Transcript.closed_lines``: its sentence ended, or the next
piece started a new line, or its utterance is over: the stream ended, or it paused and the
server went quiet, see ``close_lines``), so the output can be piped or kept and the last
words of an utterance show within about two seconds of its end, not when the speaker talks
again; with ``show_partial`` the line still open, the partial on it, on one rewritten stderr
line. Silence brings no message, so the client re-checks on a timer (``TranscriptionClient``).
In the rare case a late piece continues a line already printed (it started within
``LINE_PAUSE`` of its end), the piece is printed as a line of its own that starts with
``...``: a terminal cannot take back a printed line, and the words are not lost.

The window (WhisperLive's ``display_segments``, on a terminal): the last N lines, the open
one and the partial included, redrawn in place like subtitles; unlike WhisperLive it does not
clear the screen, so what was on the terminal before stays.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import textwrap
from typing import TextIO

from .transcript import Line, Segment, Transcript, group_lines


def segment_line(segment: Line | Segment, timestamps: bool = False) -> str:
    """One line as printed: ``[12.340 -> 14.020] SPEAKER_00: text`` (the parts asked for)."""
    text = segment.text.strip()
    if segment.speaker:
        text = f"{segment.speaker}: {text}"
    if timestamps:
        text = f"[{segment.start:.3f} -> {segment.end:.3f}] {text}"
    return text


# What a printed line's continuation starts with (see the module's docstring).
CONTINUED = "... "


def continuation(line: Line, pieces: int) -> Line | None:
    """The part of ``line`` after its first ``pieces`` segments (those already printed), as a
    line starting with ``CONTINUED``; None if it has no more."""
    rest = group_lines(line.segments[pieces:]) if pieces else []
    if not rest:
        return None
    first, last = rest[0], rest[-1]
    text = " ".join(part.text for part in rest)  # one line: they joined one line before
    return dataclasses.replace(first, end=last.end, text=CONTINUED + text, open=line.open)


def window_lines(transcript: Transcript, size: int, timestamps: bool = False, width: int = 80) -> list[str]:
    """The last ``size`` lines of the transcript, partial included, wrapped at ``width``
    (WhisperLive's display: ``display_segments`` segments, at most that many lines)."""
    shown = transcript.lines_with_partial[-size:] if size > 0 else []
    rows: list[str] = []
    for line in shown:
        text = segment_line(line, timestamps)
        indent = " " * (text.index("] ") + 2) if timestamps else ""
        rows.extend(textwrap.wrap(text, max(10, width), subsequent_indent=indent) or [""])
    return rows[-size:] if size > 0 else []


class Console:
    """Prints a stream's lines as they close (see the module's docstring for the two shapes).

    ``update(transcript)`` after every message, ``finish()`` at the end (the open line then
    closes and is printed)."""

    def __init__(
        self,
        timestamps: bool = False,
        display_segments: int | None = None,
        show_partial: bool = False,
        out: TextIO | None = None,
    ):
        self.timestamps = timestamps
        self.out = out or sys.stdout
        self.window = display_segments if display_segments and self.out.isatty() else None
        self.show_partial = show_partial and self.window is None
        self._transcript: Transcript | None = None
        self._printed = 0  # lines printed (a line before the last never changes: a count will do)
        self._pieces = 0  # segments of the last line printed (it may continue: see continuation)
        self._tail = ""  # what the rewritten stderr line shows
        self._window_height = 0

    def update(self, transcript: Transcript, now: float | None = None) -> None:
        """After every message, and on a timer while the server is quiet: print the lines that
        closed (and redraw the open one), or redraw the window. ``now``: the time to judge
        closing at (``time.monotonic()``; a test gives its own)."""
        self._transcript = transcript
        if self.window is not None:
            self._draw_window(transcript)
            return
        self._print(transcript.closed_lines_at(now))
        if self.show_partial:
            shown = transcript.lines_with_partial
            tail = [line.text for line in shown[self._printed :]]
            if self._printed and len(shown) >= self._printed:  # a printed line that goes on
                more = continuation(shown[self._printed - 1], self._pieces)
                tail[:0] = [more.text] if more is not None else []
            self._show_tail(" ".join(tail))

    def finish(self, transcript: Transcript | None = None) -> None:
        """The stream is over: the open line closes (the window keeps what it shows)."""
        transcript = transcript or self._transcript
        self._show_tail("")
        if transcript is not None and self.window is None:
            self._print(transcript.lines)

    def _print(self, lines: list[Line]) -> None:
        """Print the closed ``lines`` not printed yet, and what the last printed one gained."""
        rows = [] if len(lines) < self._printed else lines[self._printed :]
        if self._printed and len(lines) >= self._printed:
            more = continuation(lines[self._printed - 1], self._pieces)
            rows = [more, *rows] if more is not None else rows
        if not rows:
            return
        self._show_tail("")
        from tqdm import tqdm

        for line in rows:
            tqdm.write(segment_line(line, self.timestamps), file=self.out)  # keeps a progress bar intact
        self._printed = len(lines)
        self._pieces = len(lines[-1].segments)
        self.out.flush()

    def _show_tail(self, text: str) -> None:
        if text == self._tail:
            return
        width = shutil.get_terminal_size((80, 20)).columns - 1
        sys.stderr.write("\r\033[K" + text[-width:])  # one row: \r can only go back to its start
        sys.stderr.flush()
        self._tail = text

    def _draw_window(self, transcript: Transcript) -> None:
        width = shutil.get_terminal_size((80, 20)).columns - 1
        rows = window_lines(transcript, self.window, self.timestamps, width)
        # Back to the window's first line, clear to the end of the screen, draw it again.
        up = f"\033[{self._window_height}F" if self._window_height else "\r"
        self.out.write(up + "\033[J" + "".join(row + "\n" for row in rows))
        self.out.flush()
        self._window_height = len(rows)
