"""Unit tests of the pieces that need no socket: PCM decoding, VAD, protocol, scheduler, models."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import numpy as np
import pytest

from whisper_live.core.decodes import Word
from whisper_live.core.events import LanguageDetected, SegmentsChanged
from whisper_live.core.pcm import PcmDecoder, sniff_sample_format
from whisper_live.core.transcript import StreamSegment
from whisper_live.core.vad import StreamingVad
from whisper_live.engine import models
from whisper_live.engine.pool import Priority, Scheduler
from whisper_live.engine.streams import SchedulerBudget
from whisper_live.faces.whisperlive import protocol
from whisper_live.media import decode_audio


@pytest.fixture(scope="module")
def speech(librispeech):
    return decode_audio(str(librispeech[4].path))


def test_sniffer_tells_int16_from_float32_on_real_speech(speech):
    i16 = (speech * 32767).astype("<i2").tobytes()
    f32 = speech.astype("<f4").tobytes()
    windows = range(0, len(speech) - 4096, 3000)
    assert all(sniff_sample_format(i16[o * 2 : o * 2 + 4096]) == "int16" for o in windows)
    assert all(sniff_sample_format(f32[o * 4 : o * 4 + 4096]) == "float32" for o in windows)
    assert sniff_sample_format(bytes(4096)) is None


@pytest.mark.parametrize("sample_format", ["int16", "float32"])
def test_sniffing_every_clip_after_leading_silence(librispeech, sample_format):
    """A stream that opens with digital silence is judged by its speech: zeros once outvoted
    the first 4 KiB of a quiet onset and an int16 stream was decoded as float32 noise."""
    from harness import evaluation

    for utt in librispeech:
        audio = np.concatenate([np.zeros(16000, np.float32), decode_audio(str(utt.path))])
        pcm = evaluation.to_pcm(audio, sample_format)
        decoder = PcmDecoder()
        for pos in range(0, len(pcm), 3200):
            decoder.feed(pcm[pos : pos + 3200])
            if decoder.sample_format:
                break
        assert decoder.sample_format == sample_format, utt.id


@pytest.mark.parametrize("fmt", [None, "int16", "float32"])
def test_pcm_decoder_survives_any_framing(speech, fmt):
    width = 4 if fmt == "float32" else 2
    data = speech.astype("<f4").tobytes() if fmt == "float32" else (speech * 32767).astype("<i2").tobytes()
    if fmt is None:  # undeclared int16 behind a second of digital silence
        data = bytes(32000) + data
    decoder = PcmDecoder(fmt)
    rng = np.random.default_rng(5)
    out, pos = [], 0
    while pos < len(data):
        size = int(rng.integers(1, 7000))
        out.append(decoder.feed(data[pos : pos + size]))
        pos += size
    out.append(decoder.flush())
    samples = np.concatenate(out)
    assert len(samples) == len(data) // width
    tail = samples[-len(speech) :]
    assert np.abs(tail - speech).max() < 1e-3


def test_streaming_vad_matches_whole_array_vad(speech):
    from faster_whisper.vad import get_vad_model

    n = len(speech) // 512 * 512
    whole = get_vad_model()(speech[:n]).reshape(-1)
    vad = StreamingVad()
    rng = np.random.default_rng(2)
    got, pos = [], 0
    while pos < n:
        size = int(rng.integers(1, 3000))
        got.append(vad(speech[pos : min(pos + size, n)]))
        pos += size
    assert np.allclose(np.concatenate(got), whole, atol=1e-5)
    assert whole.max() > 0.9 and whole[:3].max() < 0.5


def test_config_defaults_follow_whisperlive_but_vad_defaults_on():
    cfg = protocol.parse_config(json.dumps({"uid": "a"}))
    assert cfg.session.use_vad is True and cfg.model is None
    assert cfg.session.send_last_n_segments == 10 and cfg.session.no_speech_thresh == 0.45
    assert cfg.session.language is None and cfg.session.task == "transcribe"
    cfg = protocol.parse_config(
        json.dumps(
            {
                "uid": "b",
                "language": "de",
                "use_vad": False,
                "clip_audio": True,
                "same_output_threshold": 10,
                "enable_translation": True,
                "target_language": "fr",
                "vad_parameters": {"threshold": 0.6, "min_silence_duration_ms": 800},
                "unknown_key": 1,
            }
        )
    )
    assert cfg.session.language == "de" and cfg.session.use_vad is False
    assert cfg.session.vad.threshold == 0.6 and cfg.session.vad.min_silence_duration_ms == 800
    assert cfg.warnings and "enable_translation" in cfg.warnings[0]


@pytest.mark.parametrize(
    "raw",
    ["nope", b"\xff\xfe\x00", "[]", json.dumps({"uid": ""}), json.dumps({"uid": "a", "audio_format": "mp3"})],
)
def test_bad_configs_are_protocol_errors(raw):
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_config(raw)


def test_event_messages_have_whisperlives_shape():
    said = StreamSegment(1.23456, 2.5, " Hi.", True, [Word(1.23456, 1.5, " Hi.", 0.98765)])
    saying = StreamSegment(2.5, 3.0, " and", False)
    assert protocol.event_message("u", SegmentsChanged([said, saying])) == {
        "uid": "u",
        "segments": [
            {
                "start": 1.235,
                "end": 2.5,
                "text": " Hi.",
                "completed": True,
                "words": [{"start": 1.235, "end": 1.5, "word": " Hi.", "probability": 0.988}],
            },
            {"start": 2.5, "end": 3.0, "text": " and", "completed": False},
        ],
    }
    assert protocol.event_message("u", LanguageDetected("de", 0.987654)) == {
        "uid": "u",
        "language": "de",
        "language_prob": 0.9877,
    }


@pytest.mark.parametrize(("max_batch", "partial_while_busy"), [(1, False), (8, True)])
def test_a_sessions_budget_follows_the_scheduler(max_batch, partial_while_busy):
    """Optional decodes run only when they would not wait: a speculative final needs a free
    decoder; a partial may also join a batch that is forming."""

    async def go():
        scheduler = Scheduler(workers=1, max_batch=max_batch)
        budget = SchedulerBudget(scheduler)
        assert budget.allows_partial() and budget.allows_speculative_final()
        release = threading.Event()
        final = asyncio.ensure_future(scheduler.run(release.wait, Priority.FINAL))
        for _ in range(500):
            if scheduler.running:
                break
            await asyncio.sleep(0.01)
        assert not budget.allows_speculative_final()
        assert budget.allows_partial() is partial_while_busy
        release.set()
        await final
        assert budget.allows_partial() and budget.allows_speculative_final()
        scheduler.shutdown()

    asyncio.run(go())


def test_scheduler_keeps_a_worker_for_finals_and_orders_the_rest():
    order: list[str] = []

    def job(name, seconds=0.05):
        def run():
            time.sleep(seconds)
            order.append(name)
            return name

        return run

    async def go():
        sched = Scheduler(workers=2)
        assert sched.has_room(Priority.PARTIAL)
        first = asyncio.ensure_future(sched.run(job("partial1", 0.3), Priority.PARTIAL))
        await asyncio.sleep(0.02)
        # one of two workers is busy with background work: no room for more of it
        assert not sched.has_room(Priority.PARTIAL) and sched.has_room(Priority.FINAL)
        queued = [
            asyncio.ensure_future(sched.run(job("batch1"), Priority.UPLOAD)),
            asyncio.ensure_future(sched.run(job("batch2"), Priority.UPLOAD)),
            asyncio.ensure_future(sched.run(job("partial2"), Priority.PARTIAL)),
        ]
        cancelled = asyncio.ensure_future(sched.run(job("cancelled"), Priority.UPLOAD))
        final = asyncio.ensure_future(sched.run(job("final"), Priority.FINAL))
        await asyncio.sleep(0)
        cancelled.cancel()
        await final
        assert order == ["final"], "the final ran at once beside the partial"
        assert sched.queue_depth == 3 and sched.running == 1
        await asyncio.gather(first, *queued)
        sched.shutdown()
        return sched

    sched = asyncio.run(go())
    assert order == ["final", "partial1", "partial2", "batch1", "batch2"]
    assert sched.completed == 5 and sched.busy_by_priority[Priority.FINAL] > 0


def test_models_resolve_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WHISPER_LIVE_CACHE", str(tmp_path))
    tiny = models.resolve("tiny.en")
    assert tiny.source == "bundled" and not tiny.multilingual
    base = models.resolve("base")
    assert base.source == "bundled" and base.multilingual
    assert (tmp_path / "base" / "model.bin").stat().st_size > 100_000_000
    assert models.resolve(tiny.path).source == "local"
    with pytest.raises(models.ModelNotFound, match="tiny.en, base"):
        models.resolve("large-v3", allow_download=False)


def test_capacity_estimate_counts_what_a_stream_cannot_shed():
    from types import SimpleNamespace

    from whisper_live.faces.whisperlive.server import StreamingServer
    from whisper_live.settings import ServerSettings

    cpu = [10.0]  # process CPU seconds, 10 spent before streams (model loading)
    pool = SimpleNamespace(workers=2, scheduler=Scheduler(workers=2))
    streams = StreamingServer(pool, ServerSettings(max_clients=100), cpu_seconds=lambda: cpu[0], cores=2)
    assert streams.capacity() is None and streams.admits_another()  # nothing measured yet
    streams._closed_stream_seconds = 600.0  # ten minutes of audio served ...
    busy = pool.scheduler.busy_by_priority
    busy[Priority.FINAL] = 30.0  # ... cost half a minute of finals,
    busy[Priority.PARTIAL] = 200.0  # a lot of partials (elastic: not counted),
    cpu[0] = 10.0 + 30.0 + 200.0 + 30.0  # and half a minute of VAD and sockets
    assert streams.capacity() == 14  # 2 cores * 0.7 / (60 s / 600 s)
    cpu[0] = 10.0 + 30.0 + 200.0  # CPU that does not even cover the decodes: finals still count
    assert streams.capacity() == 28  # 2 * 0.7 / (30 / 600)
    pool.workers = 1  # one decoder: finals alone fill 0.05 of it per stream
    assert streams.capacity() == 14
    streams.settings = ServerSettings(max_clients=3)
    assert streams.admits_another()
    pool.scheduler.shutdown()


def test_scheduler_batches_waiting_jobs_of_one_kind_and_never_waits_for_more():
    calls: list[list[str]] = []

    def run_many(items):
        time.sleep(0.1)
        calls.append(list(items))
        if "boom" in items:
            raise RuntimeError("model call failed")
        return [item.upper() for item in items]

    async def go():
        sched = Scheduler(workers=1, max_batch=3)
        submit = lambda item, key, p=Priority.FINAL: asyncio.ensure_future(  # noqa: E731
            sched.run_batchable(run_many, item, key, p)
        )
        alone = submit("first", "k")  # a free worker: runs at once, alone
        await asyncio.sleep(0.02)
        waiting = [submit(name, "k") for name in ("a", "b", "c", "d")]
        other_key = submit("x", "other")
        unbatchable = submit("solo", None)
        partial = submit("p", "k", Priority.PARTIAL)  # same key, other priority: not mixed in
        cancelled = submit("gone", "k")
        await asyncio.sleep(0)
        cancelled.cancel()
        results = await asyncio.gather(alone, *waiting, other_key, unbatchable, partial)
        busy = submit("busy", None)
        await asyncio.sleep(0.02)
        outcomes = await asyncio.gather(busy, submit("boom", "k"), submit("ok", "k"), return_exceptions=True)
        sched.shutdown()
        return sched, results, outcomes

    sched, results, outcomes = asyncio.run(go())
    assert results == ["FIRST", "A", "B", "C", "D", "X", "SOLO", "P"]
    assert calls[:6] == [["first"], ["a", "b", "c"], ["d"], ["x"], ["solo"], ["p"]]
    assert outcomes[0] == "BUSY" and calls[-1] == ["boom", "ok"]
    assert all(isinstance(o, RuntimeError) for o in outcomes[1:]), "a failed call fails each of its jobs"
    assert sched.batch_sizes[Priority.FINAL] == {1: 5, 2: 1, 3: 1} and sched.completed == 11
    assert sched.batch_sizes[Priority.PARTIAL] == {1: 1}


def test_partials_may_wait_for_the_next_batch_but_not_beyond_it():
    async def go():
        sched = Scheduler(workers=2, max_batch=2)
        block = asyncio.ensure_future(sched.run(lambda: time.sleep(0.2), Priority.PARTIAL))
        await asyncio.sleep(0.02)
        assert not sched.has_room(Priority.PARTIAL) and sched.has_batch_room(Priority.PARTIAL)
        queued = [
            asyncio.ensure_future(sched.run_batchable(lambda items: items, i, "k", Priority.PARTIAL))
            for i in range(2)
        ]
        await asyncio.sleep(0)
        assert not sched.has_batch_room(Priority.PARTIAL), "one batch is already waiting"
        assert sched.has_room(Priority.FINAL), "a final still finds the other worker free"
        finals = [asyncio.ensure_future(sched.run(lambda: time.sleep(0.2), Priority.FINAL)) for _ in range(2)]
        await asyncio.sleep(0.02)
        queued[1].cancel()  # room in the next batch again, but a final is waiting
        await asyncio.sleep(0)
        assert sched.queued(Priority.FINAL) == 1 and not sched.has_batch_room(Priority.PARTIAL)
        await asyncio.gather(block, queued[0], *finals)
        sched.shutdown()
        return sched

    assert asyncio.run(go()).batch_sizes[Priority.PARTIAL] == {1: 2}


def test_batching_is_on_by_default_only_where_it_was_measured_to_pay():
    from whisper_live.engine.pool import default_max_batch

    assert default_max_batch("cpu") == 1 and default_max_batch("cuda") == 8
