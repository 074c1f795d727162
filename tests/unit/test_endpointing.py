"""The endpointer on its own: one speech probability per chunk in, utterance boundaries out."""

from __future__ import annotations

from whisper_live.core.endpointing import Activity, Endpointer
from whisper_live.core.vad import CHUNK, VadParameters


def run(endpointer: Endpointer, probabilities: list[float], first: int = 0) -> list[Activity]:
    return [endpointer.step((first + i) * CHUNK, p) for i, p in enumerate(probabilities)]


def test_activities_of_one_utterance():
    params = VadParameters(threshold=0.5, min_silence_duration_ms=96, speech_pad_ms=64)  # 3 and 2 chunks
    endpointer = Endpointer(params)
    activities = run(endpointer, [0.1, 0.6, 0.9, 0.4, 0.1, 0.1, 0.2, 0.0])
    assert activities == [
        Activity.IDLE,
        Activity.OPENED,
        Activity.SPEECH,
        Activity.HELD,  # 0.4: above the silence threshold (0.35), below the speech one
        Activity.PAUSE,
        Activity.PAUSE,
        Activity.ENDPOINT,
        Activity.ENDPOINT,  # until the caller closes it
    ]
    assert endpointer.utterance == 1 and endpointer.is_open
    assert endpointer.start == 0, "two chunks of pad before chunk 1, clamped at the stream start"
    assert endpointer.speech_end == 4 * CHUNK and endpointer.speech_samples == 3 * CHUNK
    assert endpointer.end == 4 * CHUNK + 2 * CHUNK, "the pad after the last speech"
    endpointer.close()
    assert not endpointer.is_open
    assert run(endpointer, [0.9], first=20) == [Activity.OPENED]
    assert endpointer.utterance == 2 and endpointer.start == 18 * CHUNK


def test_the_endpoint_is_never_later_than_the_silence_that_made_it():
    params = VadParameters(min_silence_duration_ms=64, speech_pad_ms=500)  # 2 chunks, pad longer
    endpointer = Endpointer(params)
    assert run(endpointer, [0.9, 0.0, 0.0])[-1] is Activity.ENDPOINT
    assert endpointer.end == 3 * CHUNK


def test_long_enough_follows_min_speech_duration():
    endpointer = Endpointer(VadParameters(min_speech_duration_ms=100))  # 3.125 chunks
    run(endpointer, [0.9, 0.9, 0.9])
    assert not endpointer.long_enough
    run(endpointer, [0.9], first=3)
    assert endpointer.long_enough
