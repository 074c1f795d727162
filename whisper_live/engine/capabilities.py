"""What a model can be asked to do: the one check every face runs before any audio is decoded.

Each face maps the ``errors.Unsupported`` it raises to its own shape (a 400 on REST, an
``ERROR`` on the WebSocket), so the rule and its wording live only here.
"""

from __future__ import annotations

import functools

from ..errors import InvalidRequest, Unsupported
from .models import ModelInfo

TASKS = ("transcribe", "translate")


@functools.cache
def languages() -> frozenset[str]:
    """The language codes Whisper knows (faster-whisper's list)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


def normalize_language(language: str | None, param: str = "language") -> str | None:
    """A client's language as Whisper's code, or None (detect); "auto" means detect."""
    if language is None or not language.strip() or language.strip().lower() == "auto":
        return None
    code = language.strip().lower()
    if code not in languages():
        raise InvalidRequest(
            f"unsupported language {language!r}: use an ISO-639-1 code such as 'en', or 'auto'", param=param
        )
    return code


def check_task(model: ModelInfo, task: str, language: str | None) -> None:
    """English-only checkpoints (``*.en``) neither translate nor take another language."""
    if task not in TASKS:
        raise InvalidRequest(f"task must be 'transcribe' or 'translate', not {task!r}", param="task")
    if model.multilingual:
        return
    if task == "translate":
        raise Unsupported(
            f"model {model.name!r} is English-only and cannot translate;"
            " choose a multilingual model such as 'base'",
            param="model",
            code="model_cannot_translate",
        )
    if language not in (None, "en"):
        raise Unsupported(
            f"model {model.name!r} is English-only and cannot transcribe language {language!r};"
            " choose a multilingual model such as 'base'",
            param="language",
            code="model_cannot_transcribe_language",
        )
