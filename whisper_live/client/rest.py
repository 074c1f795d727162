"""Whole files through the REST API (``POST /v1/audio/transcriptions``) instead of a stream.

The server transcribes an uploaded file in pieces at full speed with the whole context, so a
file gets REST's accuracy in seconds rather than its duration; the answer (``verbose_json``)
becomes the same ``Transcript`` a stream gives, so subtitles and the console work alike.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

from ..faces.whisperlive.wire import DEFAULT_PORT
from .stream import ClientError, ModelNotServed, ServerError
from .transcript import Segment, Transcript, Word

DEFAULT_HTTP_PORT = 8001


def http_url_for(ws_url: str, http_port: int = DEFAULT_HTTP_PORT) -> str:
    """The REST API beside a WebSocket URL: same host, the HTTP port (8001 unless given)."""
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"  # IPv6
    return f"{scheme}://{host}:{http_port}"


def _transcript(body: dict) -> Transcript:
    segments = [
        Segment(
            float(s["start"]),
            float(s["end"]),
            str(s.get("text", "")),
            True,
            None
            if s.get("words") is None
            else tuple(
                Word(float(w["start"]), float(w["end"]), str(w["word"]), w.get("probability"))
                for w in s["words"]
            ),
            s.get("speaker"),
        )
        for s in body.get("segments") or []
    ]
    return Transcript(segments=segments, language=body.get("language"), final=True)


async def transcribe_file(
    http_url: str,
    path: str | Path,
    *,
    model: str | None = None,
    language: str | None = None,
    translate: bool = False,
    prompt: str | None = None,
    hotwords: str | None = None,
    word_timestamps: bool = False,
    timeout: float = 3600.0,
) -> tuple[Transcript, float | None]:
    """Upload one file; returns its transcript and the audio's duration (seconds) as the
    server measured it. Errors come back as ClientError with the server's own message."""
    import aiohttp

    path = Path(path)
    if not path.is_file():
        raise ClientError(f"{path}: no such file")
    endpoint = f"{http_url.rstrip('/')}/v1/audio/{'translations' if translate else 'transcriptions'}"
    fields = {
        "model": model,
        "language": None if translate else language,
        "prompt": prompt,
        "hotwords": hotwords,
        "response_format": "verbose_json",
        "word_timestamps": "true" if word_timestamps else None,
    }
    form = aiohttp.FormData()
    for name, value in fields.items():
        if value is not None:
            form.add_field(name, value)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            with path.open("rb") as audio:
                form.add_field("file", audio, filename=path.name)
                async with session.post(endpoint, data=form) as response:
                    if response.content_type != "application/json":
                        text = (await response.text())[:200]
                        raise ClientError(
                            f"{endpoint} answered HTTP {response.status} ({text!r}): not the REST API?"
                        )
                    body = await response.json()
    except aiohttp.ClientConnectionError as exc:
        raise ClientError(
            f"cannot connect to {http_url}: {exc} (the REST API listens on port {DEFAULT_HTTP_PORT} by default;"
            f" port {DEFAULT_PORT} is the WebSocket)"
        ) from exc
    except asyncio.TimeoutError as exc:
        raise ClientError(f"{endpoint}: no answer within {timeout:g} s") from exc
    error = body.get("error") if isinstance(body, dict) else None
    if error:
        kind = ModelNotServed if error.get("code") == "model_not_found" else ServerError
        raise kind(str(error.get("message")))
    return _transcript(body), body.get("duration")
