"""What a person sees while a stream runs: the text on the console, in lines.

The stream comes word by word (a completed segment every few words); the console shows lines
(``Transcript.lines``: sentences, or speech up to a pause, at most a caption long), never
the pieces. Two shapes. The log (the default, and always when stdout is not a terminal):
each line once, when it closes (its sentence ended, or the next piece started a new line, or
the stream ended), so the output can be piped or kept; with ``show_partial`` the line still
open, the partial on it, on one rewritten stderr line. The window (WhisperLive's
``display_segments``, on a terminal): the last N lines, the open one and the partial
included, redrawn in place like subtitles; unlike WhisperLive it does not clear the screen,
so what was on the terminal before stays.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from typing import TextIO

from .transcript import Line, Segment, Transcript


def segment_line(segment: Line | Segment, timestamps: bool = False) -> str:
    """One line as printed: ``[12.340 -> 14.020] SPEAKER_00: text`` (the parts asked for)."""
    text = segment.text.strip()
    if segment.speaker:
        text = f"{segment.speaker}: {text}"
    if timestamps:
        text = f"[{segment.start:.3f} -> {segment.end:.3f}] {text}"
    return text


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
        self._printed = 0  # lines printed (closed lines never change, so a count will do)
        self._tail = ""  # what the rewritten stderr line shows
        self._window_height = 0

    def update(self, transcript: Transcript) -> None:
        """After every message: print the lines that closed (and redraw the open one), or
        redraw the window."""
        self._transcript = transcript
        if self.window is not None:
            self._draw_window(transcript)
            return
        self._print(transcript.closed_lines)
        if self.show_partial:
            tail = " ".join(line.text for line in transcript.lines_with_partial[self._printed :])
            self._show_tail(tail)

    def finish(self, transcript: Transcript | None = None) -> None:
        """The stream is over: the open line closes (the window keeps what it shows)."""
        transcript = transcript or self._transcript
        self._show_tail("")
        if transcript is not None and self.window is None:
            self._print(transcript.lines)

    def _print(self, lines: list[Line]) -> None:
        if len(lines) <= self._printed:
            return
        self._show_tail("")
        from tqdm import tqdm

        for line in lines[self._printed :]:
            tqdm.write(segment_line(line, self.timestamps), file=self.out)  # keeps a progress bar intact
        self._printed = len(lines)
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
