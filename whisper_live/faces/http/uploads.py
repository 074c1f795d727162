"""Reading requests, for every HTTP face: uploads within a size limit, and typed fields.

A body is read chunk by chunk and refused as soon as it passes the limit, so an oversized
upload costs at most the limit in memory. Errors are domain errors (``whisper_live.errors``);
each face renders them in its own shape.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from multidict import MultiDict

from ... import errors
from ...booleans import SPELLINGS, as_bool

MIB = 1 << 20
FIELD_LIMIT = 1 * MIB  # a form field that is not the audio is a few bytes; refuse abuse


@dataclass
class Upload:
    """What a transcription request carried: the audio bytes and every other field."""

    data: bytes | None = None
    filename: str = ""
    fields: MultiDict = field(default_factory=MultiDict)


def _too_large(limit: int) -> errors.AudioTooLarge:
    return errors.AudioTooLarge(
        f"audio upload is larger than this server's limit of {limit / MIB:g} MiB (max_upload_mb)",
        param="file",
    )


async def _read_limited(read_chunk: Callable, limit: int, error: errors.WhisperLiveError) -> bytes:
    """Read a body or part chunk by chunk, stopping as soon as it passes ``limit``."""
    buffer = bytearray()
    while chunk := await read_chunk():
        buffer += chunk
        if len(buffer) > limit:
            raise error
    return bytes(buffer)


async def read_multipart(request: web.Request, limit: int, file_fields: tuple[str, ...]) -> Upload:
    upload = Upload()
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if part.name in file_fields and upload.data is None:
            upload.data = await _read_limited(part.read_chunk, limit, _too_large(limit))
            upload.filename = part.filename or ""
        else:
            raw = await _read_limited(
                part.read_chunk, FIELD_LIMIT, errors.InvalidRequest(f"form field {part.name!r} is too long")
            )
            upload.fields.add(part.name or "", raw.decode("utf-8", "replace"))
    return upload


async def read_json(request: web.Request, limit: int) -> Upload:
    """A JSON body with base64 audio (``audio_data`` or ``file``), as transcriber servers take."""
    # Base64 is 4/3 the size of what it encodes; allow for that plus the other fields.
    body = await _read_limited(request.content.readany, limit * 4 // 3 + FIELD_LIMIT, _too_large(limit))
    try:
        values = json.loads(body)
    except ValueError as exc:
        raise errors.InvalidRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(values, dict):
        raise errors.InvalidRequest("the JSON body must be an object")
    upload = Upload()
    encoded = values.pop("audio_data", None) or values.pop("file", None)
    if encoded is not None:
        if not isinstance(encoded, str):
            raise errors.InvalidRequest("audio_data must be a base64 string", param="audio_data")
        try:
            upload.data = base64.b64decode(
                encoded.split(",", 1)[-1] if encoded.startswith("data:") else encoded
            )
        except (binascii.Error, ValueError) as exc:
            raise errors.InvalidRequest(f"audio_data is not valid base64: {exc}", param="audio_data") from exc
        if len(upload.data) > limit:
            raise _too_large(limit)
    upload.filename = str(values.pop("filename", ""))
    for key, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            upload.fields.add(key, json.dumps(item) if isinstance(item, bool) else str(item))
    return upload


async def read_body(request: web.Request, limit: int) -> bytes:
    """A raw body (audio bytes as they are), refused as soon as it passes ``limit``."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    return await _read_limited(request.content.readany, limit, _too_large(limit))


async def read_json_object(request: web.Request, limit: int) -> dict:
    """A small JSON request body (settings, not audio) as an object; an empty body is ``{}``."""
    raw = await read_body(request, limit)
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise errors.InvalidRequest(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise errors.InvalidRequest("the body must be a JSON object")
    return body


async def read_upload(
    request: web.Request, limit: int, file_fields: tuple[str, ...] = ("file", "audio")
) -> Upload:
    """The audio and the other fields of a multipart form or a JSON body with base64 audio."""
    # Refuse an announced oversize body before reading it (base64 JSON may be 4/3 larger).
    if request.content_length is not None and request.content_length > limit * 4 // 3 + FIELD_LIMIT:
        raise _too_large(limit)
    if request.content_type == "multipart/form-data":
        try:
            upload = await read_multipart(request, limit, file_fields)
        except (ValueError, AssertionError, web.HTTPBadRequest) as exc:  # aiohttp's malformed-body errors
            raise errors.InvalidRequest(f"malformed multipart body: {exc}") from exc
    elif request.content_type == "application/json":
        upload = await read_json(request, limit)
    else:
        raise errors.InvalidRequest(
            "send multipart/form-data (as OpenAI's API) or a JSON body with base64 audio_data"
        )
    if upload.data is None:
        raise errors.MissingAudio("the request has no audio: send it as the 'file' field", param="file")
    return upload


async def read_param(request: web.Request, name: str) -> str:
    """One named value from the query, a JSON body or a form (model management calls)."""
    value = request.query.get(name)
    if value is None and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError as exc:
                raise errors.InvalidRequest(f"request body is not valid JSON: {exc}") from exc
            value = body.get(name) if isinstance(body, dict) else None
        else:
            try:
                value = (await request.post()).get(name)
            except (ValueError, AssertionError, web.HTTPBadRequest) as exc:
                raise errors.InvalidRequest(f"malformed form body: {exc}") from exc
    if not value or not isinstance(value, str):
        raise errors.InvalidRequest(
            f"say which {name}: {name!r} in the query, a JSON body or a form", param=name
        )
    return value


class Form:
    """Typed access to request fields; a bad value is a 400 that names the parameter."""

    def __init__(self, fields: MultiDict):
        self.fields = fields

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.fields.get(name)
        return value.strip() if value is not None and value.strip() else default

    def list(self, name: str) -> list[str]:
        """OpenAI's SDK sends arrays as repeated ``name[]`` fields; accept ``name`` and commas too."""
        values = [*self.fields.getall(name + "[]", []), *self.fields.getall(name, [])]
        items = []
        for value in values:
            with contextlib.suppress(ValueError):
                parsed = json.loads(value)
                if isinstance(parsed, list):
                    items += [str(v) for v in parsed]
                    continue
            items += [v.strip() for v in value.split(",") if v.strip()]
        return items

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise errors.InvalidRequest(
                f"{name} must be one of {', '.join(choices)}, not {value!r}", param=name
            )
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.text(name)
        if value is None:
            return default
        parsed = as_bool(value)
        if parsed is None:
            raise errors.InvalidRequest(
                f"{name} must be true or false ({SPELLINGS}), not {value!r}", param=name
            )
        return parsed

    def number(self, name: str, default, low: float, high: float, kind: type = float):
        value = self.text(name)
        if value is None:
            return default
        try:
            number = kind(float(value)) if kind is int and float(value).is_integer() else kind(value)
        except ValueError:
            raise errors.InvalidRequest(f"{name} must be a number, not {value!r}", param=name) from None
        if not (low <= number <= high) or (isinstance(number, float) and math.isnan(number)):
            raise errors.InvalidRequest(f"{name} must be between {low:g} and {high:g}", param=name)
        return number
