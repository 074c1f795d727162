"""WhisperKit's local server (``whisperkit-cli serve``): OpenAI's audio API with its defaults.

Its clients (the Python client, the test scripts and the curl scripts in WhisperKit's
repository) post OpenAI's forms to ``{server}/v1/audio/...``; pointed at
``http://host:8001/whisperkit`` they get what WhisperKit's server would make of the fields
they leave out: ``verbose_json``. The model they hard-code, ``tiny``, is an alias the pool
resolves (``--model-alias``), and every answer says which model served. Their connection
test posts the 4 bytes ``test``, which WhisperKit answers without an error: here too, an
upload too short to be any audio is no speech. Errors keep OpenAI's envelope, which
WhisperKit's server also uses.
"""

from __future__ import annotations

from aiohttp import web

from ..http.face import add_face_routes
from ..openai.api import FaceDefaults, audio_routes, error_response, model_routes

PREFIX = "/whisperkit"
WHISPERKIT = FaceDefaults("WhisperKit", PREFIX + "/v1", response_format="verbose_json", probe_is_empty=True)


def add_routes(app: web.Application) -> None:
    add_face_routes(app, [*audio_routes(WHISPERKIT), *model_routes(WHISPERKIT.prefix)], error_response)
