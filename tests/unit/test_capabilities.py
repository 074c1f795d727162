"""The one capability check every face runs before decoding, and language normalisation."""

from __future__ import annotations

import pytest

from whisper_live.engine.capabilities import check_task, normalize_language
from whisper_live.engine.models import ModelInfo
from whisper_live.errors import InvalidRequest, Unsupported

ENGLISH_ONLY = ModelInfo("tiny.en", "/models/tiny.en", False, "bundled")
MULTILINGUAL = ModelInfo("base", "/models/base", True, "bundled")


def test_an_english_only_model_cannot_translate():
    with pytest.raises(Unsupported, match="English-only and cannot translate") as raised:
        check_task(ENGLISH_ONLY, "translate", None)
    assert raised.value.code == "model_cannot_translate" and raised.value.param == "model"
    with pytest.raises(Unsupported):
        check_task(ENGLISH_ONLY, "translate", "en")


@pytest.mark.parametrize("language", ["de", "fr", "zh"])
def test_an_english_only_model_cannot_take_another_language(language):
    with pytest.raises(Unsupported, match=f"cannot transcribe language '{language}'") as raised:
        check_task(ENGLISH_ONLY, "transcribe", language)
    assert raised.value.code == "model_cannot_transcribe_language" and raised.value.param == "language"


def test_what_each_model_may_do():
    check_task(ENGLISH_ONLY, "transcribe", "en")
    check_task(ENGLISH_ONLY, "transcribe", None)  # detect: an English-only model answers English
    for task in ("transcribe", "translate"):
        for language in (None, "en", "de"):
            check_task(MULTILINGUAL, task, language)
    for model in (ENGLISH_ONLY, MULTILINGUAL):
        with pytest.raises(InvalidRequest, match="'transcribe' or 'translate'") as raised:
            check_task(model, "dance", None)
        assert raised.value.param == "task" and not isinstance(raised.value, Unsupported)


@pytest.mark.parametrize("language", [None, "", "  ", "auto", "AUTO", " Auto "])
def test_auto_or_nothing_means_detect(language):
    assert normalize_language(language) is None


def test_languages_are_whispers_codes():
    assert normalize_language(" EN ") == "en" and normalize_language("de") == "de"


@pytest.mark.parametrize("language", ["xx", "english", "en-US"])
def test_an_unknown_language_is_an_invalid_request(language):
    with pytest.raises(InvalidRequest, match="unsupported language") as raised:
        normalize_language(language, param="target_language")
    assert raised.value.param == "target_language" and not isinstance(raised.value, Unsupported)
