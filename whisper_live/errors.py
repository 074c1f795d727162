"""What can go wrong for a client, said once, in domain terms.

The engine and the media code raise these; each face maps them to its own wire shape
(OpenAI's error envelope and an HTTP status, a WhisperLive ``ERROR`` message, ...). Nothing
here knows HTTP: a status code is a face's decision, made in one table per face.
"""

from __future__ import annotations


class WhisperLiveError(Exception):
    """A failure the client should be told about. ``code`` is stable and machine-readable;
    ``param`` names the request field at fault, where there is one."""

    code = "error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(WhisperLiveError):
    """A parameter or body the client has to change."""

    code = "invalid_request"


class InvalidAudio(InvalidRequest):
    """Bytes that are not audio we can read, or audio with nothing in it."""

    code = "invalid_audio"


class MissingAudio(InvalidRequest):
    """A request that carries no audio at all."""

    code = "missing_audio"


class AudioTooLarge(InvalidRequest):
    """More audio than this server accepts in one request."""

    code = "file_too_large"


class UnsupportedMediaType(InvalidRequest):
    """A body whose declared type is not audio (nor a request this endpoint reads)."""

    code = "unsupported_media_type"


class Unsupported(InvalidRequest):
    """A valid request this model or server cannot honour (e.g. translating with an
    English-only model)."""

    code = "unsupported"


class Unauthorized(WhisperLiveError):
    """No API key, or one that is wrong or revoked, where keys are required."""

    code = "unauthorized"


class OriginNotAllowed(WhisperLiveError):
    """A browser page from an origin this server does not serve (see --cors-origins)."""

    code = "origin_not_allowed"


class LimitReached(WhisperLiveError):
    """A per-key limit (concurrent streams or uploads) is reached; try again later."""

    code = "limit_reached"


class ModelNotFound(WhisperLiveError, LookupError):
    """A model name that is neither bundled, a local directory, nor downloadable, or one this
    server does not offer."""

    code = "model_not_found"


class ModelLoadFailed(WhisperLiveError):
    """A model that exists but could not be loaded (corrupt files, out of memory, no GPU)."""

    code = "model_load_failed"


class DecodeFailed(WhisperLiveError):
    """The model raised while transcribing."""

    code = "decode_failed"


class ShuttingDown(WhisperLiveError):
    """The server is draining: no new work is taken."""

    code = "shutting_down"


class ClientGone(WhisperLiveError):
    """The client hung up; the work stops instead of holding a worker for nobody."""

    code = "client_closed_request"
