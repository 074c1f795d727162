"""The HTTP port described as OpenAPI 3.1: every face's paths, tagged by face.

Written by hand (aiohttp has no schema generator). The OpenAI handlers appear once per base
URL they are mounted under (``/v1``, ``/whisperkit/v1``, ``/whisperx/v1``), each with its
face's defaults, read from the same ``FaceDefaults`` the handlers use. ``docs.py`` serves
it to Swagger UI and ReDoc; ``FALLBACK_HTML`` renders it when their assets are missing.
"""

from __future__ import annotations

from ... import __version__
from ..openai.api import OPENAI, FaceDefaults
from ..whisperkit.api import WHISPERKIT
from ..whisperx.api import PREFIX as WHISPERX_PREFIX
from ..whisperx.api import WHISPERX

_ERROR = {"$ref": "#/components/schemas/Error"}


def _param(name: str, kind: str, description: str, **extra) -> tuple[str, dict]:
    return name, {"type": kind, "description": description, **extra}


_AUDIO_FIELDS = dict(
    [
        _param(
            "file",
            "string",
            "Audio in any container/codec PyAV reads (wav, flac, mp3, m4a, ogg/opus, "
            "webm, mp4), a NumPy .npy file, or raw PCM (audio_format=pcm). Also accepted as 'audio'.",
            format="binary",
        ),
        _param(
            "model",
            "string",
            "'whisper-1' (the server default), or a model name or alias from GET /v1/models (e.g. WhisperKit's"
            " 'tiny'); the model that served is in the answer.",
            default="whisper-1",
        ),
        _param("prompt", "string", "Text to steer style or vocabulary (Whisper's initial prompt)."),
        _param(
            "response_format",
            "string",
            "Output format.",
            default="json",
            enum=["json", "text", "srt", "vtt", "verbose_json", "vtt_json", "aud"],
        ),
        _param(
            "temperature",
            "number",
            "0 = greedy with Whisper's temperature fallback; >0 samples.",
            default=0,
            minimum=0,
            maximum=1,
        ),
        (
            "timestamp_granularities[]",
            {
                "type": "array",
                "items": {"type": "string", "enum": ["segment", "word"]},
                "description": "verbose_json only; ['word'] alone gives words without segments.",
            },
        ),
        (
            "include[]",
            {
                "type": "array",
                "items": {"type": "string", "enum": ["logprobs"]},
                "description": "'logprobs': one log probability per decoded token (json, verbose_json;"
                " also on each transcript.text.delta when streaming).",
            },
        ),
        _param(
            "stream",
            "boolean",
            "Server-sent events: transcript.text.delta ... transcript.text.done.",
            default=False,
        ),
        _param("beam_size", "integer", "Beam width.", default=5, minimum=1, maximum=20),
        _param("vad_filter", "boolean", "Drop non-speech with Silero VAD before decoding.", default=False),
        _param("hotwords", "string", "Words to favour (faster-whisper hotwords)."),
        _param(
            "condition_on_previous_text",
            "boolean",
            "Prompt each window with the previous text.",
            default=True,
        ),
        _param(
            "batch_size",
            "integer",
            ">1 uses faster-whisper's BatchedInferencePipeline (VAD forced on).",
            default=1,
            minimum=1,
            maximum=128,
        ),
        _param("word_timestamps", "boolean", "Word timings inside each verbose_json segment.", default=False),
        _param("align", "boolean", "WhisperX: word timings (from Whisper's cross-attention).", default=False),
        _param(
            "suppress_numerals",
            "boolean",
            "WhisperX: numbers spelled out (digit tokens suppressed).",
            default=False,
        ),
        _param(
            "highlight_words",
            "boolean",
            "WhisperX: word-by-word <u>highlighted</u> cues (srt, vtt, vtt_json).",
            default=False,
        ),
        _param(
            "chunk_size",
            "integer",
            "WhisperX: most seconds of speech merged into one VAD chunk.",
            minimum=1,
            maximum=30,
        ),
        _param(
            "diarize",
            "boolean",
            "WhisperX: speaker labels (400 while this server has no diarization).",
            default=False,
        ),
        _param("min_speakers", "integer", "WhisperX: with diarize.", minimum=1),
        _param("max_speakers", "integer", "WhisperX: with diarize.", minimum=1),
        _param("speaker_embeddings", "boolean", "WhisperX: with diarize.", default=False),
        _param(
            "diarize",
            "boolean",
            "Speaker labels (SPEAKER_00, ...) on verbose_json segments and words; offline, on the CPU.",
            default=False,
        ),
        _param(
            "min_speakers", "integer", "With diarize: at least this many speakers.", minimum=1, maximum=32
        ),
        _param("max_speakers", "integer", "With diarize: at most this many speakers.", minimum=1, maximum=32),
        _param(
            "audio_format",
            "string",
            "How to read the bytes; auto detects .npy and torch.save tensors by their magic.",
            default="auto",
            enum=["auto", "file", "numpy", "tensor", "pcm"],
        ),
        _param(
            "sample_rate", "integer", "Rate of raw PCM or NumPy input; resampled to 16 kHz.", default=16000
        ),
        _param(
            "dtype",
            "string",
            "Sample type of raw PCM; omitted: int16 or float32, told apart from the bytes.",
            enum=["int16", "int32", "float32", "float64"],
        ),
    ]
)


_FACE_DEFAULTS = {
    "response_format": "response_format",
    "suppress_numerals": "suppress_numerals",
    "align": "align",
}
_TRANSCRIPTION_EXAMPLE = {
    "text": "And so, my fellow Americans, ask not what your country can do for you.",
    "usage": {"type": "duration", "seconds": 11},
    "model": "tiny.en",
}


def _audio_operation(summary: str, with_language: bool, face: FaceDefaults = OPENAI) -> dict:
    fields = dict(_AUDIO_FIELDS)
    for name, attribute in _FACE_DEFAULTS.items():
        fields[name] = {**fields[name], "default": getattr(face, attribute)}
    if not face.streams:
        fields["stream"] = {**fields["stream"], "description": "Accepted and ignored (as WhisperX's server)."}
    if with_language:
        fields["language"] = {"type": "string", "description": "ISO-639-1 code; omit to detect."}
    json_fields = {k: v for k, v in fields.items() if k != "file"}
    json_fields["audio_data"] = {"type": "string", "description": "Base64 audio (file, .npy or PCM bytes)."}
    return {
        "tags": [face.name],
        "summary": summary,
        "description": f"{face.name}'s defaults: response_format={face.response_format},"
        f" suppress_numerals={str(face.suppress_numerals).lower()}, align={str(face.align).lower()}."
        " The model that served is in the Whisper-Live-Model header and JSON bodies' model.",
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": ["file"], "properties": fields}
                },
                "application/json": {
                    "schema": {"type": "object", "required": ["audio_data"], "properties": json_fields}
                },
            },
        },
        "responses": {
            "200": {
                "description": "Transcript in the requested format.",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/Transcription"},
                        "example": _TRANSCRIPTION_EXAMPLE,
                    },
                    "text/plain": {"schema": {"type": "string"}},
                    "text/vtt": {"schema": {"type": "string"}},
                    "application/x-subrip": {"schema": {"type": "string"}},
                    "text/event-stream": {"schema": {"type": "string"}},
                },
            },
            **{
                code: {"description": text, "content": {"application/json": {"schema": _error_schema(face)}}}
                for code, text in {
                    "400": "Bad parameter, or undecodable or empty audio.",
                    "404": "Unknown model.",
                    "413": "Upload larger than max_upload_mb.",
                    "422": "No audio file in the request.",
                    "500": "The model failed to load or decode.",
                    "503": "The server is shutting down.",
                }.items()
            },
        },
    }


def _error_schema(face: FaceDefaults) -> dict:
    return _DETAIL if face is WHISPERX else _ERROR


def _simple(summary: str, tag: str = "Server", **extra) -> dict:
    return {"tags": [tag], "summary": summary, "responses": {"200": {"description": "OK"}}, **extra}


_DETAIL = {"$ref": "#/components/schemas/Detail"}


_MODEL_BODY = {
    "parameters": [{"name": "model", "in": "query", "schema": {"type": "string"}}],
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "object", "properties": {"model": {"type": "string"}}}}
        }
    },
}
_MODEL_PATH = [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}]


_DETAIL_ERRORS = {
    code: {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Detail"}}},
    }
    for code, text in {
        "400": "Bad model, language, task, parameter or audio ({'detail': '...'}).",
        "413": "Upload larger than max_upload_mb.",
        "422": "No audio: detail is a list of validation errors.",
        "500": "The model failed to load or decode.",
        "503": "The server is shutting down.",
    }.items()
}
_TRANSCRIBER_FIELDS = dict(
    [
        _param("model", "string", "A model name from GET /models; omitted: the server default."),
        _param(
            "quantization",
            "string",
            "CTranslate2 compute type to load the model in.",
            enum=["float32", "float16", "bfloat16", "int8", "int8_float16", "int8_bfloat16", "int8_float32"],
        ),
        _param("device", "string", "cpu, or cuda where the server has a GPU.", enum=["cpu", "cuda"]),
        _param("language", "string", "ISO-639-1 code; omit (or 'auto') to detect."),
        _param(
            "task_mode",
            "string",
            "Transcribe, or translate to English.",
            default="transcribe",
            enum=["transcribe", "translate"],
        ),
        _param(
            "include_timestamps", "boolean", "Segments with timings; otherwise segments is [].", default=False
        ),
        _param("word_timestamps", "boolean", "Word timings inside each segment.", default=False),
        _param("beam_size", "integer", "Beam width.", default=5, minimum=1, maximum=20),
        _param("vad_filter", "boolean", "Silero VAD first (forced on when batch_size > 1).", default=False),
        _param(
            "condition_on_previous_text",
            "boolean",
            "Prompt each window with the previous text.",
            default=True,
        ),
        _param(
            "batch_size",
            "integer",
            ">1: faster-whisper's batched pipeline.",
            default=1,
            minimum=1,
            maximum=128,
        ),
        ("audio_format", _AUDIO_FIELDS["audio_format"]),
        ("sample_rate", _AUDIO_FIELDS["sample_rate"]),
        ("dtype", _AUDIO_FIELDS["dtype"]),
    ]
)


def _transcriber_operation(summary: str, content_type: str, audio: str, description: str) -> dict:
    fields = {audio: {"type": "string", "description": description}, **_TRANSCRIBER_FIELDS}
    if content_type == "multipart/form-data":
        fields[audio]["format"] = "binary"
    return {
        "tags": ["Transcriber"],
        "summary": summary,
        "requestBody": {
            "required": True,
            "content": {
                content_type: {"schema": {"type": "object", "required": [audio], "properties": fields}}
            },
        },
        "responses": {
            "200": {
                "description": "text, segments, language, duration, task, model_used, processing_time_seconds",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/TranscriberResult"}}
                },
            },
            **_DETAIL_ERRORS,
        },
    }


_TAGS = {
    "OpenAI": "OpenAI's audio API at /v1 (base_url http://host:8001/v1), with WhisperX's extras.",
    "WhisperKit": "WhisperKit's local server at /whisperkit/v1 (its clients: --server http://host:8001/whisperkit):"
    " verbose_json by default; the model 'tiny' is an alias.",
    "WhisperX": "WhisperX's API server at /whisperx (suppress_numerals and align on, stream ignored);"
    " its management paths also at the root.",
    "Transcriber": "The Faster-Whisper Transcriber's server: /transcribe, /transcribe/raw, /models.",
    "Deepgram": "Deepgram's /v1/listen, prerecorded (POST) and live (WebSocket), and /ping.",
    "Realtime": "OpenAI's Realtime API in transcription mode (/v1/realtime) and its client secrets.",
    "Captions": "Live captions of a running stream for viewers (OBS browser sources), with viewer tokens.",
    "Server": "Health, readiness, status, metrics and these docs.",
}


def _openai_paths(face: FaceDefaults, with_models: bool) -> dict:
    prefix, tag = face.prefix, face.name
    paths = {
        f"{prefix}/audio/transcriptions": {"post": _audio_operation(f"{tag}: transcribe audio", True, face)},
        f"{prefix}/audio/translations": {
            "post": _audio_operation(f"{tag}: translate audio to English", False, face)
        },
    }
    if with_models:
        paths.update(
            {
                f"{prefix}/models": {
                    "get": _simple("List models (OpenAI's data, Deepgram's stt) and aliases", tag)
                },
                f"{prefix}/models/{{model}}": {
                    "get": _simple("One model", tag, parameters=_MODEL_PATH),
                    "delete": _simple("Unload a model", tag, parameters=_MODEL_PATH),
                },
                f"{prefix}/models/load": {"post": _simple("Load a model into the pool", tag, **_MODEL_BODY)},
                f"{prefix}/models/unload": {
                    "post": _simple("Unload a model from the pool", tag, **_MODEL_BODY)
                },
            }
        )
    return paths


def _whisperx_paths(prefix: str) -> dict:
    form = {
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": {"model": {"type": "string"}}}
                }
            }
        }
    }
    return {
        f"{prefix}/healthcheck": {"get": _simple("{'status': 'healthy'}", "WhisperX")},
        f"{prefix}/models/list": {"get": _simple("Loaded transcription models", "WhisperX")},
        f"{prefix}/models/load": {"post": _simple("Load a model (form field model)", "WhisperX", **form)},
        f"{prefix}/models/unload": {"post": _simple("Unload a model (form field model)", "WhisperX", **form)},
        f"{prefix}/align_models/list": {
            "get": _simple("[]: word timings need no separate model", "WhisperX")
        },
        f"{prefix}/align_models/load": {
            "post": _simple("400: there is no alignment model to load", "WhisperX")
        },
        f"{prefix}/align_models/unload": {"post": _simple("400: there is no alignment model", "WhisperX")},
        f"{prefix}/diarize_models/list": {"get": _simple("Diarization models in memory", "WhisperX")},
        f"{prefix}/diarize_models/load": {
            "post": _simple("Load the speaker model (resemblyzer)", "WhisperX", **form)
        },
        f"{prefix}/diarize_models/unload": {"post": _simple("Unload the speaker model", "WhisperX", **form)},
    }


def _query(name: str, kind: str, description: str, **extra) -> dict:
    return {"name": name, "in": "query", "schema": {"type": kind, **extra}, "description": description}


_LISTEN_QUERY = [
    _query("model", "string", "A model name from GET /v1/models (default: the server's)."),
    _query("language", "string", "Language code (default en, as Deepgram's)."),
    _query("detect_language", "boolean", "Detect the language instead."),
    _query("punctuate", "boolean", "Punctuation and capitals (else the plain lower-case transcript)."),
    _query("smart_format", "boolean", "As punctuate."),
    _query("utterances", "boolean", "Utterances (utt_split: seconds of pause between them)."),
    _query("paragraphs", "boolean", "Paragraphs."),
    _query("diarize", "boolean", "Speaker numbers on words and utterances."),
    _query("keywords", "string", "Words to favour (hotwords); also keyterm."),
    _query("start", "integer", "Crop: first millisecond (times stay in file time)."),
    _query("duration", "integer", "Crop: milliseconds from start."),
    _query("response_format", "string", "srt or vtt instead of JSON.", enum=["srt", "vtt"]),
    _query("multichannel", "boolean", "Each channel transcribed on its own."),
    _query(
        "encoding",
        "string",
        "Raw audio: linear16, linear32, mulaw, alaw.",
        enum=["linear16", "linear32", "mulaw", "alaw"],
    ),
    _query("sample_rate", "integer", "Raw audio's rate."),
    _query("channels", "integer", "Raw audio's channels."),
    _query("interim_results", "boolean", "Live: partial results."),
    _query("endpointing", "string", "Live: milliseconds of silence that end speech, or false."),
    _query("utterance_end_ms", "integer", "Live: UtteranceEnd after this many ms without words."),
    _query("vad_events", "boolean", "Live: SpeechStarted events."),
]
_DEEPGRAM_ERROR = {
    "type": "object",
    "properties": {
        "err_code": {"type": "string"},
        "err_msg": {"type": "string"},
        "request_id": {"type": "string"},
    },
}


def _deepgram_paths() -> dict:
    errors_ = {
        code: {"description": text, "content": {"application/json": {"schema": _DEEPGRAM_ERROR}}}
        for code, text in {
            "400": "Bad parameter, or a body that is not audio (INVALID_AUDIO).",
            "413": "Body larger than max_upload_mb.",
            "422": "Empty body.",
            "429": "Too many streams (live).",
            "503": "The server is shutting down.",
        }.items()
    }
    return {
        "/v1/listen": {
            "post": {
                "tags": ["Deepgram"],
                "summary": "Prerecorded: transcribe the body's audio, or the JSON body's url",
                "description": "Any body but JSON is read as audio whatever its Content-Type (none, curl's"
                " form-urlencoded default, audio/*): the container is told from the bytes.",
                "parameters": _LISTEN_QUERY,
                "requestBody": {
                    "required": True,
                    "content": {
                        "audio/*": {"schema": {"type": "string", "format": "binary"}},
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["url"],
                                "properties": {"url": {"type": "string"}},
                            },
                            "example": {"url": "https://example.com/speech.mp3"},
                        },
                    },
                },
                "responses": {
                    "200": {"description": "Deepgram's results (metadata, results.channels)."},
                    **errors_,
                },
            },
            "get": {
                "tags": ["Deepgram"],
                "summary": "Live: a WebSocket (Upgrade) carrying audio in, Results/Metadata/UtteranceEnd out",
                "parameters": _LISTEN_QUERY,
                "responses": {"101": {"description": "Switching to the WebSocket."}, **errors_},
            },
        },
        "/ping": {"get": _simple("{'status': 'ok', 'message': 'pong'}", "Deepgram")},
    }


def _realtime_paths() -> dict:
    error = {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "object"}}}}}
    return {
        "/v1/realtime": {
            "get": {
                "tags": ["Realtime"],
                "summary": "OpenAI's Realtime WebSocket, transcription sessions (the openai SDK's"
                " client.realtime.connect with websocket_base_url ws://host:8001/v1)",
                "description": "Client events: session.update (or the beta transcription_session.update),"
                " input_audio_buffer.append/commit/clear. Server events: session.created/updated,"
                " input_audio_buffer.speech_started/speech_stopped/committed/cleared,"
                " conversation.item.input_audio_transcription.delta/completed, error. Browsers send a"
                " client secret as the subprotocols 'realtime, openai-insecure-api-key.<secret>'."
                " Our extension: audio.input.transcription.diarize true (optional max_speakers) puts a"
                " speaker (SPEAKER_00, ...) on each completed event; without the speaker model it is an"
                " error with code unsupported.",
                "parameters": [
                    {
                        "name": "intent",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["transcription"]},
                    },
                    {"name": "model", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "101": {"description": "Switching to the WebSocket."},
                    "401": {
                        "description": "Missing, wrong, revoked or expired key or client secret.",
                        "content": error,
                    },
                },
            }
        },
        "/v1/realtime/client_secrets": {
            "post": {
                "tags": ["Realtime"],
                "summary": "A short-lived client secret for a browser, bound to the caller's API key",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "expires_after": {
                                        "type": "object",
                                        "properties": {
                                            "anchor": {"type": "string", "enum": ["created_at"]},
                                            "seconds": {"type": "integer", "minimum": 10, "maximum": 7200},
                                        },
                                    },
                                    "session": {"type": "object"},
                                },
                            }
                        }
                    }
                },
                "responses": {
                    "200": {"description": "{value, expires_at, session}"},
                    "400": {"description": "A bad field.", "content": error},
                    "401": {
                        "description": "No API key (a client secret cannot mint secrets).",
                        "content": error,
                    },
                },
            }
        },
    }


def _captions_paths() -> dict:
    error = {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "object"}}}}}
    stream_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "The stream's id: WhisperLive's uid, Deepgram's request_id, the Realtime session id.",
        "schema": {"type": "string"},
    }
    return {
        "/v1/streams/{id}/viewer_tokens": {
            "post": {
                "tags": ["Captions"],
                "summary": "A viewer token for one running stream (its owner's API key; anyone on an open server)",
                "parameters": [stream_id],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "expires_in": {
                                        "type": "integer",
                                        "minimum": 10,
                                        "maximum": 86400,
                                        "default": 14400,
                                        "description": "Seconds the token may (re)connect a viewer.",
                                    }
                                },
                            }
                        }
                    }
                },
                "responses": {
                    "200": {"description": "{stream, token, expires_at, url} (url: the /captions page)"},
                    "400": {"description": "A bad field.", "content": error},
                    "401": {
                        "description": "No API key, another key's stream, or a client secret / viewer token.",
                        "content": error,
                    },
                    "404": {"description": "No stream of that id is running.", "content": error},
                },
            }
        },
        "/v1/streams/{id}/captions": {
            "get": {
                "tags": ["Captions"],
                "summary": "The stream's captions as server-sent events (EventSource), until it ends",
                "description": "Each data line is JSON: {type: 'captions', segments: [{start, end, text,"
                " completed, speaker?}]} (the last completed segments and the partial), then"
                " {type: 'end', how}. The token goes in the query (EventSource sends no headers).",
                "parameters": [
                    stream_id,
                    {
                        "name": "token",
                        "in": "query",
                        "description": "A viewer token of this stream (or the owner's API key).",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {"description": "Server-sent events.", "content": {"text/event-stream": {}}},
                    "401": {
                        "description": "No token, or one of another stream, expired or forged.",
                        "content": error,
                    },
                    "404": {"description": "No stream of that id is running.", "content": error},
                    "429": {"description": "The stream has its limit of viewers.", "content": error},
                },
            }
        },
    }


def _paths() -> dict:
    return {
        **_openai_paths(OPENAI, with_models=True),
        **_openai_paths(WHISPERKIT, with_models=True),
        **_openai_paths(WHISPERX, with_models=False),
        **_whisperx_paths(WHISPERX_PREFIX),
        **_whisperx_paths(""),
        "/transcribe": {
            "post": _transcriber_operation(
                "Transcriber: transcribe an uploaded file",
                "multipart/form-data",
                "audio",
                "Audio file, .npy array, torch.save tensor (.pt) or raw PCM.",
            )
        },
        "/transcribe/raw": {
            "post": _transcriber_operation(
                "Transcriber: transcribe base64 audio in a JSON body",
                "application/json",
                "audio_data",
                "Base64 of a file, .npy, .pt or raw PCM (audio_format says which).",
            )
        },
        "/models": {"get": _simple("Transcriber: models by name, with supports_translation", "Transcriber")},
        **_deepgram_paths(),
        **_realtime_paths(),
        **_captions_paths(),
        "/health": {"get": _simple("Liveness")},
        "/ready": {"get": _simple("Readiness: 200 while another stream is admitted, else 503")},
        "/status": {
            "get": _simple(
                "Active streams, decode queue depth, batch jobs; server_running and"
                " transcription_active for Transcriber clients"
            )
        },
        "/metrics": {"get": _simple("Prometheus metrics")},
        "/openapi.json": {"get": _simple("This document")},
        "/docs": {"get": _simple("Swagger UI")},
        "/redoc": {"get": _simple("ReDoc")},
    }


def spec() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "whisper-live REST API",
            "version": __version__,
            "description": "Every HTTP face of one speech-to-text server (port 8001), tagged by face:"
            " OpenAI's audio API and the same handlers under WhisperKit's and WhisperX's base URLs with"
            " their defaults, the Transcriber's server, Deepgram's /v1/listen. All share one model pool"
            " with the WebSocket streams (port 9090, WhisperLive's protocol), which keep priority.",
        },
        "tags": [{"name": name, "description": text} for name, text in _TAGS.items()],
        "security": [{"apiKey": []}, {}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A key from 'whisper-live-server keys create' (Authorization: Bearer KEY,"
                    " or Deepgram's 'Token KEY'); not needed while the server has no keys.",
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "message": {"type": "string"},
                                "type": {"type": "string"},
                                "param": {"type": ["string", "null"]},
                                "code": {"type": ["string", "null"]},
                            },
                        }
                    },
                },
                "Detail": {"type": "object", "properties": {"detail": {"type": ["string", "array"]}}},
                "TranscriberResult": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "segments": {"type": "array", "items": {"type": "object"}},
                        "language": {"type": "string"},
                        "duration": {"type": "number"},
                        "task": {"type": "string"},
                        "model_used": {"type": "string"},
                        "processing_time_seconds": {"type": "number"},
                    },
                },
                "TokenLogprob": {
                    "type": "object",
                    "properties": {
                        "token": {"type": "string"},
                        "logprob": {"type": "number"},
                        "bytes": {"type": "array", "items": {"type": "integer"}},
                    },
                },
                "Transcription": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "task": {"type": "string"},
                        "language": {"type": "string"},
                        "duration": {"type": "number"},
                        "segments": {"type": "array", "items": {"type": "object"}},
                        "words": {"type": "array", "items": {"type": "object"}},
                        "logprobs": {"type": "array", "items": {"$ref": "#/components/schemas/TokenLogprob"}},
                        "usage": {"type": "object"},
                        "model": {"type": "string", "description": "The model that served the request."},
                    },
                },
            },
        },
    }


FALLBACK_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>whisper-live API</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{margin-top:2rem;font-size:1.1rem}code{background:#f3f3f3;padding:0 .25rem}
.m{display:inline-block;min-width:4rem;font-weight:bold;text-transform:uppercase}
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#fafafa}
</style></head>
<body><h1 id="title">whisper-live API</h1><p id="about"></p><div id="paths">Loading /openapi.json…</div>
<script>
const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
function table(props, required) {
  const rows = Object.entries(props || {}).map(([name, p]) =>
    `<tr><td><code>${esc(name)}</code>${(required || []).includes(name) ? " *" : ""}</td>` +
    `<td>${esc(p.type === "array" ? "array of " + (p.items || {}).type : p.type)}` +
    `${p.enum ? "<br>" + p.enum.map(esc).join(" | ") : ""}</td>` +
    `<td>${esc(p.description)}${p.default !== undefined ? ` (default <code>${esc(p.default)}</code>)` : ""}</td></tr>`);
  return rows.length ? `<table><tr><th>field</th><th>type</th><th>meaning</th></tr>${rows.join("")}</table>` : "";
}
fetch("/openapi.json").then(r => r.json()).then(spec => {
  document.getElementById("title").textContent = `${spec.info.title} ${spec.info.version}`;
  document.getElementById("about").textContent = spec.info.description;
  const out = [];
  for (const [path, ops] of Object.entries(spec.paths)) for (const [method, op] of Object.entries(ops)) {
    out.push(`<h2><span class="m">${esc(method)}</span><code>${esc(path)}</code> — ${esc(op.summary)}</h2>`);
    for (const p of op.parameters || []) out.push(`<div>${esc(p.in)} parameter <code>${esc(p.name)}</code></div>`);
    for (const [type, body] of Object.entries((op.requestBody || {}).content || {})) {
      out.push(`<div>Body <code>${esc(type)}</code></div>` + table(body.schema.properties, body.schema.required));
    }
    const codes = Object.entries(op.responses || {}).map(([c, r]) => `<code>${esc(c)}</code> ${esc(r.description)}`);
    out.push(`<div>Responses: ${codes.join("; ")}</div>`);
  }
  document.getElementById("paths").innerHTML = out.join("\\n");
}).catch(e => { document.getElementById("paths").textContent = "could not load /openapi.json: " + e; });
</script></body></html>
"""
