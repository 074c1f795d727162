"""Fixtures the unit tests share."""

from __future__ import annotations

import pytest

from whisper_live.media import decode_audio


@pytest.fixture(scope="module")
def speech(librispeech):
    """One real LibriSpeech utterance as float32 samples at 16 kHz."""
    return decode_audio(str(librispeech[4].path))
