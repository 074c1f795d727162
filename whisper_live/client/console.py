"""What a person sees while a stream runs: the text on the console.

Two shapes. The log (the default, and always when stdout is not a terminal): each completed
segment once, on its own line, so the output can be piped or kept; the unfinished text on one
rewritten stderr line. The window (WhisperLive's ``display_segments``, on a terminal): the
last N lines, partial included, redrawn in place like subtitles; unlike WhisperLive it does
not clear the screen, so what was on the terminal before stays.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from typing import TextIO

from .transcript import Segment, Transcript


def segment_line(segment: Segment, timestamps: bool = False) -> str:
    """One segment as printed: ``[12.340 -> 14.020] SPEAKER_00: text`` (the parts asked for)."""
    text = segment.text.strip()
    if segment.speaker:
        text = f"{segment.speaker}: {text}"
    if timestamps:
        text = f"[{segment.start:.3f} -> {segment.end:.3f}] {text}"
    return text


def window_lines(transcript: Transcript, size: int, timestamps: bool = False, width: int = 80) -> list[str]:
    """The last ``size`` lines of the transcript, partial included, wrapped at ``width``
    (WhisperLive's display: ``display_segments`` segments, at most that many lines)."""
    shown = transcript.segments[-size:] if size > 0 else []
    if transcript.partial is not None and transcript.partial.text.strip():
        shown = [*shown, transcript.partial]
    lines: list[str] = []
    for segment in shown:
        line = segment_line(segment, timestamps)
        indent = " " * (line.index("] ") + 2) if timestamps else ""
        lines.extend(textwrap.wrap(line, max(10, width), subsequent_indent=indent) or [""])
    return lines[-size:] if size > 0 else []


class Console:
    """Prints a stream's text as it arrives (see the module's docstring for the two shapes)."""

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
        self._partial_shown = False
        self._window_height = 0

    def completed(self, segment: Segment) -> None:
        if self.window is not None:
            return  # the window is redrawn from the transcript in update()
        if self._partial_shown:
            sys.stderr.write("\r\033[K")
            self._partial_shown = False
        from tqdm import tqdm

        tqdm.write(segment_line(segment, self.timestamps), file=self.out)  # keeps a progress bar intact
        self.out.flush()

    def partial(self, text: str) -> None:
        if self.show_partial:
            sys.stderr.write("\r\033[K" + text[-200:])
            sys.stderr.flush()
            self._partial_shown = bool(text)

    def update(self, transcript: Transcript) -> None:
        """After every message: redraw the window (nothing to do for the log)."""
        if self.window is None:
            return
        width = shutil.get_terminal_size((80, 20)).columns - 1
        lines = window_lines(transcript, self.window, self.timestamps, width)
        # Back to the window's first line, clear to the end of the screen, draw it again.
        up = f"\033[{self._window_height}F" if self._window_height else "\r"
        self.out.write(up + "\033[J" + "".join(line + "\n" for line in lines))
        self.out.flush()
        self._window_height = len(lines)

    def finish(self) -> None:
        if self._partial_shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._partial_shown = False
