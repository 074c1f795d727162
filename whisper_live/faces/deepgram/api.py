"""Deepgram's ``/v1/listen`` on the HTTP port: prerecorded (POST) and live (WebSocket), and ``/ping``.

A thin adapter: prerecorded audio goes through ``engine.files.transcribe`` on the shared
pool at upload priority, as the OpenAI face's does; live audio through the same
``StreamingSession`` and admission as the WhisperLive face (``live``). Errors come out in
Deepgram's shape (``err_code``, ``err_msg``, ``request_id``), which its SDK reports.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import numpy as np
from aiohttp import web

from ... import errors
from ...core.decodes import DecodeOptions
from ...core.pcm import SAMPLE_RATE
from ...engine.capabilities import check_task
from ...engine.diarization import diarize_upload
from ...engine.files import transcribe
from ...engine.pool import LoadedModel, ModelPool
from ...formats import to_srt, to_vtt
from ...media import load_audio, load_channels
from ..http.face import API_KEY, LIVE, MODEL_LISTS, POOL, SETTINGS, UPLOADS, add_face_routes
from ..http.fetch import fetch_url
from ..http.transcription import client_gone
from ..http.uploads import MIB, Form, read_body
from . import live, protocol
from .protocol import ChannelResult, ListenOptions

log = logging.getLogger(__name__)


async def _model(pool: ModelPool, options: ListenOptions) -> LoadedModel:
    loaded = await pool.acquire(options.model)
    check_task(loaded.info, "transcribe", options.language)
    return loaded


async def _fetch(request: web.Request, raw: bytes, limit: int) -> bytes:
    """What a JSON body's ``url`` points at."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise errors.InvalidRequest(f"the JSON body is not valid JSON: {exc}") from exc
    url = body.get("url") if isinstance(body, dict) else None
    if not isinstance(url, str) or not url:
        raise errors.InvalidRequest('a JSON body must be {"url": "https://..."}', param="url")
    return await fetch_url(url, limit, request.app[SETTINGS].listen_allow_private_urls)


def _url_request(data: bytes) -> bool:
    """A JSON ``{"url": ...}`` body sent without its Content-Type (curl ``-d``)."""
    if not data.lstrip().startswith(b"{") or len(data) > MIB:
        return False
    try:
        body = json.loads(data)
    except ValueError:
        return False
    return isinstance(body, dict) and "url" in body


async def _body(request: web.Request, limit: int) -> bytes:
    """The audio: the body itself, or what the JSON body's ``url`` points at.

    Like Deepgram's API, the Content-Type only decides JSON or not: any other body, one
    without a type or with curl's ``--data-binary`` default (form-urlencoded), ``text/plain``
    or a wrong ``audio/*``, is read as audio, its container told from its bytes; a body that
    is not audio is then a 400 ``INVALID_AUDIO`` from the decoder."""
    kind = request.content_type if request.headers.get("Content-Type") else ""
    if kind == "application/json":
        return await _fetch(request, await read_body(request, 1 * MIB), limit)
    data = await read_body(request, limit)
    if not data:
        raise errors.MissingAudio("the request body is empty: send the audio bytes", param="body")
    if _url_request(data):
        return await _fetch(request, data, limit)
    return data


def _decode(data: bytes, options: ListenOptions) -> np.ndarray:
    """The audio as (channels × samples) at 16 kHz; one downmixed channel unless multichannel.

    A container without multichannel takes exactly the OpenAI face's path (``load_audio``)."""
    if options.encoding is None and not options.multichannel:
        return load_audio(data)[None, :]
    channels = load_channels(
        data, encoding=options.encoding, sample_rate=options.sample_rate, channels=options.channels
    )
    return channels if options.multichannel else channels.mean(axis=0, keepdims=True)


def _crop(audio: np.ndarray, options: ListenOptions) -> np.ndarray:
    length = audio.shape[1] / SAMPLE_RATE
    if audio.shape[1] == 0:
        raise errors.InvalidAudio("the audio is empty (no samples decoded)", code="empty_audio")
    if options.start >= length:
        raise errors.InvalidRequest(
            f"start ({options.start * 1000:.0f} ms) is past the end of the audio ({length * 1000:.0f} ms)",
            param="start",
        )
    first = int(options.start * SAMPLE_RATE)
    last = audio.shape[1] if options.duration is None else first + int(options.duration * SAMPLE_RATE)
    return audio[:, first:last]


async def _prerecorded(request: web.Request, request_id: str) -> web.Response:
    pool, jobs = request.app[POOL], request.app[UPLOADS]
    jobs.check()
    options = protocol.parse_options(Form(request.query), live=False)
    body = await _body(request, int(request.app[SETTINGS].max_upload_mb * MIB))
    loaded = await _model(pool, options)
    audio = await asyncio.to_thread(_decode, body, options)
    duration = audio.shape[1] / SAMPLE_RATE
    audio = _crop(audio, options)
    decode = DecodeOptions(
        language=options.language,
        initial_prompt=options.prompt,
        hotwords=options.hotwords,
        word_timestamps=True,
    )
    job = jobs.open(loaded.name, "transcribe", audio.size / SAMPLE_RATE)
    channels: list[ChannelResult] = []
    try:
        for samples in audio:
            try:
                result = await transcribe(
                    pool, loaded, samples, decode, job, jobs, client_gone=lambda: client_gone(request)
                )
            except errors.WhisperLiveError:
                raise
            except Exception as exc:
                log.exception("transcription failed")
                raise errors.DecodeFailed(f"transcription failed: {exc}") from exc
            if options.diarize:
                result.segments = (await diarize_upload(pool, samples, result.segments)).segments
            channels.append(ChannelResult(result.segments, result.language, result.language_probability))
    finally:
        jobs.close(job)
    headers = {"dg-request-id": request_id}
    if options.response_format == "srt":
        text = to_srt(protocol.subtitle_segments(channels, options.start))
        return web.Response(text=text, content_type="application/x-subrip", headers=headers)
    if options.response_format == "vtt":
        text = to_vtt(protocol.subtitle_segments(channels, options.start))
        return web.Response(text=text, content_type="text/vtt", headers=headers)
    body_json = protocol.prerecorded_json(request_id, body, loaded.info, duration, channels, options)
    return web.json_response(body_json, headers=headers)


async def _live(request: web.Request, request_id: str) -> web.StreamResponse:
    """Refusals (WAIT as 429, the key's stream slot as 429) come before the upgrade; the
    stream's life is the engine's ``LiveStreams``, as on every live face."""
    app = request.app
    streams = app[LIVE]
    options = protocol.parse_options(Form(request.query), live=True)
    if options.multichannel and options.channels > 1:
        raise errors.Unsupported("multichannel live streams are not supported yet", param="multichannel")
    key = request.get(API_KEY)
    wait = streams.full()
    if wait is not None:
        streams.refused(live.FACE, request.remote or "?", "wait", uid=request_id, key=key)
        exc = errors.WhisperLiveError(
            f"this server is at its limit of concurrent streams; retry in about {wait:.1f} minutes",
            code="too_many_requests",
        )
        return web.json_response(
            protocol.error_body(exc, request_id), status=429, headers={"dg-request-id": request_id}
        )
    model = await _model(app[POOL], options)
    try:
        stream = streams.open(live.FACE, request.remote or "?", key, request_id, model.name)
    except errors.LimitReached:
        streams.refused(live.FACE, request.remote or "?", "limit reached", uid=request_id, key=key)
        raise  # 429 before the upgrade
    try:
        return await live.serve(
            request, request_id, live.LiveContext(app[POOL], app[SETTINGS], stream), model, options
        )
    finally:
        stream.close()


async def listen(request: web.Request) -> web.StreamResponse:
    """POST: prerecorded; GET with a WebSocket upgrade: live."""
    request_id = str(uuid.uuid4())
    try:
        if request.method == "POST":
            return await _prerecorded(request, request_id)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise errors.InvalidRequest(
                "GET /v1/listen is the live WebSocket: connect with a WebSocket client, or POST audio"
            )
        return await _live(request, request_id)
    except errors.WhisperLiveError as exc:
        exc.request_id = request_id  # the error renderer puts it in the body
        raise


async def ping(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "message": "pong"})


def add_routes(app: web.Application) -> None:
    app[MODEL_LISTS]["stt"] = lambda pool, info: protocol.stt_model(info)  # Deepgram's SDK reads ``stt``
    add_face_routes(
        app,
        [web.post("/v1/listen", listen), web.get("/v1/listen", listen), web.get("/ping", ping)],
        protocol.error_response,
    )
