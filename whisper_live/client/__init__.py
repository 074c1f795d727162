"""Python clients for a whisper-live (or WhisperLive) server.

- ``TranscriptionClient``: WhisperLive's API: files, microphone, RTSP, HLS; SRT/VTT output.
- ``StreamingClient`` / ``AsyncStreamingClient``: send your own bytes or NumPy arrays.
- ``Transcript``: what a stream said; word by word (``StreamOptions.commit_after`` 0, the
  default) its ``segments`` are pieces of a few words, its ``lines`` what a person reads.
- ``main``: the ``whisper-live-client`` command.
"""

from .cli import main
from .stream import (
    AsyncStreamingClient,
    ClientError,
    ModelNotServed,
    RetryPolicy,
    ServerBusy,
    ServerError,
    StreamingClient,
    StreamOptions,
)
from .transcript import Line, Segment, Transcript, group_lines
from .transcription import Callbacks, OutputOptions, RunOptions, TranscriptionClient

__all__ = [
    "AsyncStreamingClient",
    "Callbacks",
    "ClientError",
    "Line",
    "ModelNotServed",
    "OutputOptions",
    "RetryPolicy",
    "RunOptions",
    "Segment",
    "ServerBusy",
    "ServerError",
    "StreamOptions",
    "StreamingClient",
    "Transcript",
    "TranscriptionClient",
    "group_lines",
    "main",
]
