"""Viewer tokens (a scope on client secrets) and the bounded fan-out of a stream's captions."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from whisper_live.core.events import SegmentsChanged
from whisper_live.core.transcript import StreamSegment
from whisper_live.engine import live
from whisper_live.errors import LimitReached, Unauthorized
from whisper_live.gate import secrets
from whisper_live.gate.gate import Gate
from whisper_live.gate.keys import KeyStore


@pytest.fixture
def keys(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    secret = store.create("alice")
    return store, secret, next(k for k in store.entries() if k.name == "alice")


def test_a_viewer_token_is_scoped_to_one_stream(keys):
    store, _, alice = keys
    token, expires = secrets.issue(alice, secrets.VIEWER_DEFAULT_SECONDS, view="s1")
    assert expires - time.time() > 3 * 3600
    assert secrets.viewed_stream(token) == "s1"
    assert secrets.verify(token, store, view="s1") == alice
    assert secrets.verify(token, store, view="s2") is None
    assert secrets.verify(token, store) is None  # not a client secret
    plain, _ = secrets.issue(alice)
    assert secrets.verify(plain, store, view="s1") is None  # a client secret is no viewer token
    expired, _ = secrets.issue(alice, 60, now=time.time() - 61, view="s1")
    assert secrets.verify(expired, store, view="s1") is None


def test_the_gate_admits_a_viewer_token_nowhere_but_its_captions(keys):
    store, secret, alice = keys
    gate = Gate(store)
    token, _ = secrets.issue(alice, 600, view="s1")
    with pytest.raises(Unauthorized, match="viewer token"):
        gate.admit({}, {"token": token})
    assert gate.admit_viewer({}, {"token": token}, "s1") == alice
    with pytest.raises(Unauthorized):
        gate.admit_viewer({}, {"token": token}, "s2")
    assert gate.admit_viewer({"Authorization": f"Bearer {secret}"}, {}, "s2") == alice
    with pytest.raises(Unauthorized):
        gate.admit_viewer({}, {}, "s1")


def test_caption_events_carry_text_times_and_speakers():
    update = SegmentsChanged(
        [StreamSegment(0.0, 1.5, " Hello there.", True), StreamSegment(1.5, 2.0, " and", False)]
    )
    event = live.caption_event(update, lambda s: "A")
    assert live.caption_event(update, offset=10.0)["segments"][1]["start"] == 11.5  # a later session
    assert event == {
        "type": "captions",
        "segments": [
            {"start": 0.0, "end": 1.5, "text": "Hello there.", "completed": True, "speaker": "A"},
            {"start": 1.5, "end": 2.0, "text": "and", "completed": False},
        ],
    }


def test_a_slow_viewer_loses_its_oldest_events_and_never_blocks():
    viewer = live.Viewer(size=3)
    for n in range(10):
        viewer.put({"type": "captions", "n": n})  # never waits
    assert viewer.dropped == 7

    async def drain():
        return [(await viewer.get())["n"] for _ in range(3)]

    assert asyncio.run(drain()) == [7, 8, 9]


def test_viewers_of_a_stream_get_its_captions_then_its_end_and_the_owners_stream_is_found(tmp_path):
    from test_live_streams import streams

    lifecycle = streams(tmp_path, max_clients=4)
    store = lifecycle.gate.keys
    store.create("alice")
    store.create("mallory")
    alice, mallory = (next(k for k in store.entries() if k.name == n) for n in ("alice", "mallory"))

    async def run():
        mine = lifecycle.open("whisperlive", "peer", alice, "talk")
        theirs = lifecycle.open("whisperlive", "peer", mallory, "talk")  # the same uid, chosen by a client
        assert lifecycle.find("talk", alice) is mine and lifecycle.find("talk", mallory) is theirs
        assert lifecycle.find("nothing", alice) is None
        update = SegmentsChanged([StreamSegment(0.0, 1.0, " Hi.", True)])
        with mine.watch() as viewer:
            mine.publish(live.caption_event(update))
            theirs.publish(
                live.caption_event(SegmentsChanged([StreamSegment(0.0, 1.0, " Not yours.", True)]))
            )
            mine.end(live.END_OF_AUDIO)
            mine.close()
            got = [await viewer.get(), await viewer.get()]
        theirs.close()
        with pytest.raises(LimitReached):
            extra = lifecycle.open("deepgram", "peer", None, "busy")
            with contextlib.ExitStack() as held:
                for _ in range(live.VIEWERS_PER_STREAM + 1):
                    held.enter_context(extra.watch())
        return got

    got = asyncio.run(run())
    assert got[0]["segments"][0]["text"] == "Hi."
    assert got[1] == {"type": "end", "how": "end of audio"}
