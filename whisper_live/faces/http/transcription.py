"""What every REST face does with an upload once it has read its own fields.

Load the model, decode the bytes to audio, run ``engine.files.transcribe`` as a job that
/status shows, and turn a crash into a domain error. The faces differ only in the fields
they read and the shapes they answer in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import numpy as np
from aiohttp import web

from ... import errors
from ...core.decodes import DecodeOptions, DecodeResult, Segment
from ...core.pcm import SAMPLE_RATE
from ...engine.files import transcribe
from ...engine.pool import LoadedModel, ModelPool
from ...media import load_audio
from .face import POOL, UPLOADS
from .uploads import Upload

log = logging.getLogger(__name__)


async def acquire(
    pool: ModelPool, name: str | None, compute_type: str | None = None, device: str | None = None
) -> LoadedModel:
    """Load (or find) a model; unknown names are ModelNotFound, a failed load ModelLoadFailed."""
    try:
        return await pool.acquire(name, compute_type, device)
    except errors.ModelNotFound as exc:
        exc.param = "model"
        raise
    except errors.ModelLoadFailed as exc:
        log.warning("%s", exc.message)
        raise
    except Exception as exc:
        log.exception("loading model %r failed", name)
        raise errors.ModelLoadFailed(f"model {name or pool.default_model!r} failed to load: {exc}") from exc


# Says which model served a request, whatever name it asked for (an alias, whisper-1).
SERVED_MODEL_HEADER = "Whisper-Live-Model"


def served_model_header(name: str) -> dict[str, str]:
    return {SERVED_MODEL_HEADER: name}


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def upload_audio(upload: Upload, **how) -> np.ndarray:
    """The upload's bytes as 16 kHz float32 (``how``: ``media.load_audio``'s options)."""
    audio = (
        await asyncio.to_thread(load_audio, upload.data, filename=upload.filename, **how)
        if upload.data
        else []
    )
    if len(audio) == 0:
        raise errors.InvalidAudio("the audio is empty (no samples decoded)", param="file", code="empty_audio")
    return audio


@contextlib.asynccontextmanager
async def upload_job(
    request: web.Request, loaded: LoadedModel, audio: np.ndarray, options: DecodeOptions
) -> AsyncIterator[Callable]:
    """Yields ``run(on_segment=None) -> DecodeResult`` for the audio, counted as an upload
    job (``/status``) until the block ends."""
    pool, queue = request.app[POOL], request.app[UPLOADS]
    job = queue.open(loaded.name, options.task, len(audio) / SAMPLE_RATE)

    async def run(on_segment: Callable[[Segment], object] | None = None) -> DecodeResult:
        try:
            return await transcribe(
                pool, loaded, audio, options, job, queue, on_segment, lambda: client_gone(request)
            )
        except errors.WhisperLiveError:
            raise
        except Exception as exc:
            log.exception("transcription failed")
            raise errors.DecodeFailed(f"transcription failed: {exc}") from exc

    try:
        yield run
    finally:
        queue.close(job)
