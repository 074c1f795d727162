"""Python clients for a whisper-live (or WhisperLive) server.

- ``TranscriptionClient``: WhisperLive's API: files, microphone, RTSP, HLS; SRT/VTT output.
- ``StreamingClient`` / ``AsyncStreamingClient``: send your own bytes or NumPy arrays.
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
from .transcript import Segment, Transcript
from .transcription import Callbacks, OutputOptions, RunOptions, TranscriptionClient

__all__ = [
    "AsyncStreamingClient",
    "Callbacks",
    "ClientError",
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
    "main",
]
