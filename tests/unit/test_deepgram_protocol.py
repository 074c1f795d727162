"""The Deepgram face's parameter rules and the URL fetcher's address check (no model, no server)."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from whisper_live import errors
from whisper_live.core.decodes import Word
from whisper_live.faces.deepgram.protocol import paragraphs_json, parse_options, transcript
from whisper_live.faces.http.fetch import _check_url, is_public
from whisper_live.faces.http.uploads import Form


def options(live: bool = False, **query):
    return parse_options(Form(MultiDict({k: str(v) for k, v in query.items()})), live)


def test_defaults_follow_deepgram():
    parsed = options()
    assert parsed.language == "en" and not parsed.punctuate and parsed.encoding is None
    assert options(language="en-US").language == "en"
    assert options(detect_language="true").language is None
    assert options(language="multi").language is None
    assert options(smart_format="true").punctuate


def test_query_values_are_checked_and_unknown_ones_ignored():
    assert options(callback_method="put", tag="x").model is None
    for bad in ({"punctuate": "maybe"}, {"start": "-1"}, {"duration": "0"}, {"language": "klingon"}):
        with pytest.raises(errors.InvalidRequest):
            options(**bad)
    with pytest.raises(errors.InvalidRequest, match="sample_rate"):
        options(encoding="linear16")
    with pytest.raises(errors.InvalidRequest, match="speex"):
        options(encoding="speex", sample_rate=8000)
    raw = options(encoding="mulaw", sample_rate=8000, channels=2)
    assert (raw.encoding, raw.sample_rate, raw.channels) == ("mulaw", 8000, 2)
    assert options(encoding="ogg-opus").encoding is None, "a container: PyAV finds the codec"


def test_crop_prompt_keywords_and_diarize():
    parsed = options(start=2000, duration=5000, prompt="MUTTON,TURNIPS", diarize="true")
    assert (parsed.start, parsed.duration) == (2.0, 5.0)
    assert parsed.prompt == "MUTTON, TURNIPS"
    assert parsed.diarize and not parsed.warnings  # prerecorded: speakers on words and utterances
    live = parse_options(Form(MultiDict(diarize="true")), live=True)
    assert live.warnings and live.warnings[0]["parameter"] == "diarize"  # live: said, not silently ignored
    query = MultiDict([("keywords", "Quilter:2"), ("keywords", "Frere"), ("keyterm", "apostle")])
    assert parse_options(Form(query), live=False).hotwords == "Quilter Frere apostle"


def test_live_endpointing():
    assert options(live=True, endpointing=300).endpointing_ms == 300
    off = options(live=True, endpointing="false")
    assert off.endpointing_ms is None and not off.speech_final
    assert options(live=True, utterance_end_ms=1000).utterance_end_ms == 1000
    with pytest.raises(errors.InvalidRequest):
        options(live=True, utterance_end_ms=5)


def test_plain_transcript_and_paragraphs():
    words = [Word(0.0, 0.4, " Hello,"), Word(0.5, 0.9, " World."), Word(3.0, 3.5, " Again!")]
    assert transcript(words, "Hello, World. Again!", punctuate=False) == "hello world again"
    paragraphs = paragraphs_json(words, offset=1.0)["paragraphs"]
    assert [p["num_words"] for p in paragraphs] == [2, 1]
    assert paragraphs[0]["sentences"][0] == {"text": "Hello, World.", "start": 1.0, "end": 1.9}


def test_private_addresses_are_refused_unless_allowed():
    for address in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1"):
        assert not is_public(address), address
    assert is_public("8.8.8.8")
    for url in ("http://127.0.0.1/a.wav", "http://localhost:8000/a.wav", "http://[::1]/a.wav"):
        with pytest.raises(errors.InvalidRequest):
            _check_url(url, allow_private=False)
        _check_url(url, allow_private=True)
    with pytest.raises(errors.InvalidRequest):
        _check_url("file:///etc/passwd", allow_private=True)
