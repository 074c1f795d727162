"""Python clients for a whisper-live (or WhisperLive) server.

- ``TranscriptionClient``: WhisperLive's API: files, microphone, RTSP, HLS; SRT/VTT output.
- ``StreamingClient`` / ``AsyncStreamingClient``: send your own bytes or NumPy arrays.
- ``main``: the ``whisper-live-client`` command.
"""

from .cli import main
from .stream import (
    AsyncStreamingClient,
    ClientError,
    RetryPolicy,
    ServerBusy,
    ServerError,
    StreamingClient,
    StreamOptions,
)
from .transcript import Segment, Transcript
from .transcription import TranscriptionClient

__all__ = [
    "AsyncStreamingClient",
    "ClientError",
    "RetryPolicy",
    "Segment",
    "ServerBusy",
    "ServerError",
    "StreamOptions",
    "StreamingClient",
    "Transcript",
    "TranscriptionClient",
    "main",
]
