"""The client's and the protocol's pure logic, without a server: WhisperLive's arguments and
config keys, the console's window, VTT escaping (read back by webvtt-py), the CLI's flags,
and the streaming resampler on real 44.1 kHz stereo speech."""

from __future__ import annotations

import dataclasses
import html
import json
import warnings

import av
import numpy as np
import pytest
import webvtt
from harness import evaluation

from whisper_live import formats
from whisper_live.client import StreamOptions, Transcript, TranscriptionClient
from whisper_live.client.cli import _output, build_parser
from whisper_live.client.console import segment_line, window_lines
from whisper_live.client.stream import pcm_bytes
from whisper_live.client.transcript import Segment
from whisper_live.faces.whisperlive import protocol
from whisper_live.media import PcmIntake, Resampler, decode_audio

# WhisperLive 0.10's TranscriptionClient arguments, in its order (its client.py).
UPSTREAM_ARGS = [
    "host", "port", "lang", "translate", "model", "use_vad", "use_wss", "save_output_recording",
    "output_recording_filename", "output_transcription_path", "log_transcription", "mute_audio_playback",
    "send_last_n_segments", "no_speech_thresh", "clip_audio", "same_output_threshold",
    "transcription_callback", "enable_translation", "target_language", "translation_callback",
    "translation_srt_file_path", "enable_timestamps", "display_segments", "hotwords", "enable_diarization",
    "max_speakers", "word_timestamps", "initial_prompt", "vad_parameters",
]  # fmt: skip


def native(path) -> tuple[np.ndarray, int]:
    """A file's audio as stored: (samples, channels) float32 at its own rate, not resampled."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = [f.to_ndarray() for f in container.decode(stream)]
        rate, channels, planar = stream.rate, stream.channels, stream.format.is_planar
    scale = float(np.iinfo(frames[0].dtype).max + 1) if frames[0].dtype.kind == "i" else 1.0
    if planar:  # (channels, n) per frame
        samples = np.concatenate(frames, axis=1).T
    else:  # packed: (1, n * channels)
        samples = np.concatenate([f.reshape(-1) for f in frames]).reshape(-1, channels)
    return (samples / scale).astype(np.float32), rate


def test_positional_order_and_every_keyword_match_whisperlive():
    import inspect

    params = list(inspect.signature(TranscriptionClient).parameters)
    assert params[: len(UPSTREAM_ARGS)] == UPSTREAM_ARGS


def test_the_client_holds_each_setting_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = TranscriptionClient(
            "example.org", 9091, lang="de", translate=True, model="tiny", use_wss=True, hotwords="Kafka",
            enable_timestamps=True, display_segments=3, enable_diarization=True, max_speakers=2,
            save_output_recording=True, output_recording_filename="rec.wav", output_transcription_path="x.vtt",
            enable_translation=True, target_language="hi", clip_audio=True, same_output_threshold=5,
        )  # fmt: skip
    assert client.url == "wss://example.org:9091"
    assert set(vars(client)) - {"waits", "reconnects", "sent_seconds", "send_duration", "ended"} == {
        "url", "options", "output", "run", "callbacks", "_stopped", "_pump", "_task"
    }  # fmt: skip
    config = client.options.config()
    assert config["task"] == "translate" and config["language"] == "de" and config["model"] == "tiny"
    assert (
        config["enable_diarization"] is True and config["max_speakers"] == 2 and config["hotwords"] == "Kafka"
    )
    assert client.output.vtt_path == "x.vtt" and client.output.srt_path is None
    assert client.output.recording_path == "rec.wav" and client.output.display_segments == 3
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3, messages
    assert "'hi'" in messages[0] and "translation_srt_file_path" in messages[0]
    assert "clip_audio" in messages[1] and "same_output_threshold" in messages[2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the defaults warn about nothing
        TranscriptionClient(max_clients=4, max_connection_time=600)
    with pytest.raises(TypeError, match="nonsense"):
        TranscriptionClient(nonsense=1)


def test_config_accepts_every_key_whisperlive_clients_send():
    cfg = protocol.parse_config(
        json.dumps(
            {
                "uid": "u", "language": "en", "task": "transcribe", "model": "small", "use_vad": True,
                "send_last_n_segments": 10, "no_speech_thresh": 0.45, "clip_audio": False,
                "same_output_threshold": 10, "enable_translation": False, "target_language": "fr",
                "hotwords": "WhisperLive,TensorRT", "enable_diarization": False, "max_speakers": 10,
                "known_speakers": [], "word_timestamps": True, "initial_prompt": "Jane Doe",
                "vad_parameters": {"threshold": 0.4},
            }
        )
    )  # fmt: skip
    assert cfg.warnings == [] and cfg.session.word_timestamps and cfg.session.initial_prompt == "Jane Doe"
    assert cfg.session.hotwords == "WhisperLive,TensorRT" and cfg.session.vad.threshold == 0.4
    assert not cfg.needs_resampling and not cfg.diarize
    cfg = protocol.parse_config(
        json.dumps({"uid": "u", "enable_diarization": True, "max_speakers": 3, "enable_translation": True,
                    "target_language": "hi", "sample_rate": 44100, "channels": 2})
    )  # fmt: skip
    assert cfg.diarize and cfg.max_speakers == 3
    assert cfg.sample_rate == 44100 and cfg.channels == 2 and cfg.needs_resampling
    assert len(cfg.warnings) == 1 and "'hi'" in cfg.warnings[0]


@pytest.mark.parametrize(
    "extra",
    [{"sample_rate": 100}, {"sample_rate": "fast"}, {"channels": 3}, {"channels": 0}, {"max_speakers": 0},
     {"enable_diarization": "maybe"}, {"known_speakers": "alice"}],
)  # fmt: skip
def test_bad_new_config_keys_are_protocol_errors(extra):
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_config(json.dumps({"uid": "u", **extra}))


def test_stream_options_send_rate_and_channels_and_interleave_stereo():
    options = StreamOptions(sample_rate=44100, channels=2, audio_format="float32")
    assert options.config()["sample_rate"] == 44100 and options.config()["channels"] == 2
    assert "enable_diarization" not in StreamOptions().config()  # WhisperLive's default: not sent
    stereo = np.array([[0.5, -0.5], [0.25, -0.25]], np.float32)
    assert np.array_equal(np.frombuffer(pcm_bytes(stereo, "float32", 2), "<f4"), [0.5, -0.5, 0.25, -0.25])
    assert np.array_equal(np.frombuffer(pcm_bytes(stereo, "float32", 1), "<f4"), [0.0, 0.0])  # downmixed


def test_pcm_resampler_turns_44k_stereo_bytes_cut_anywhere_into_the_files_16k_audio():
    """What the server does for a client that declares sample_rate/channels: the same audio
    (to within int16 rounding) as PyAV resampling the file itself, whatever the framing."""
    path = next(u for u in evaluation.manifest("jfk") if u.id == "jfk").path
    stereo, rate = native(path)
    assert rate == 44100 and stereo.shape[1] == 2
    data = (np.clip(stereo, -1, 1) * 32767).astype("<i2").tobytes()
    resampler = PcmIntake(None, rate, 2)  # format undeclared: sniffed, as on the wire
    rng = np.random.default_rng(1)
    out, pos = [], 0
    while pos < len(data):
        size = int(rng.integers(1, 9000))  # cuts inside samples and between channels
        out.append(resampler.feed(data[pos : pos + size]))
        pos += size
    out.append(resampler.flush())
    got = np.concatenate(out)
    want = decode_audio(str(path))
    assert abs(len(got) - len(want)) <= 16
    n = min(len(got), len(want))
    assert np.corrcoef(got[:n], want[:n])[0, 1] > 0.999
    assert np.max(np.abs(got[:n] - want[:n])) < 0.01


def test_one_resampler_for_arrays_and_frames():
    tone = np.sin(2 * np.pi * 440 * np.arange(48000) / 48000).astype(np.float32)
    resampler = Resampler(48000)
    out = np.concatenate(
        [resampler.feed(tone[i : i + 777]) for i in range(0, len(tone), 777)] + [resampler.flush()]
    )
    assert abs(len(out) - 16000) <= 2
    spectrum = np.abs(np.fft.rfft(out[1000:15000]))
    assert abs(np.argmax(spectrum) * 16000 / 14000 - 440) < 3
    with pytest.raises(ValueError):
        Resampler(48000, 6)


def test_vtt_cue_text_is_escaped_and_a_real_parser_reads_it_back(tmp_path):
    texts = [" Ben & Jerry's <3 ice cream", " 1 < 2 > 0 &amp; done", " plain"]
    segments = [{"start": i, "end": i + 1, "text": t} for i, t in enumerate(texts)]
    vtt = tmp_path / "x.vtt"
    vtt.write_text(formats.to_vtt(segments), encoding="utf-8")
    cues = webvtt.read(str(vtt))
    # webvtt-py drops anything that looks like a tag: an unescaped '<3 ice cream' would vanish
    assert [html.unescape(c.text) for c in cues] == [t.strip() for t in texts]
    assert "<" not in vtt.read_text().split("\n", 1)[1]
    assert "Ben & Jerry's <3" in formats.to_srt(segments)  # SRT is shown as written


def test_console_lines_and_window():
    transcript = Transcript()
    transcript.update(
        [
            {"start": 0.0, "end": 1.5, "text": " One.", "completed": True},
            {"start": 1.5, "end": 3.0, "text": " Two.", "completed": True},
            {"start": 3.0, "end": 4.0, "text": " Three.", "completed": True},
            {"start": 4.0, "end": 4.5, "text": " Fo", "completed": False},
        ]
    )
    assert segment_line(transcript.segments[0], timestamps=True) == "[0.000 -> 1.500] One."
    assert segment_line(Segment(0, 1, " Hi", True, speaker="SPEAKER_01")) == "SPEAKER_01: Hi"
    assert window_lines(transcript, 2) == ["Three.", "Fo"]
    assert window_lines(transcript, 3, timestamps=True) == [
        "[1.500 -> 3.000] Two.", "[3.000 -> 4.000] Three.", "[4.000 -> 4.500] Fo"
    ]  # fmt: skip
    long = Transcript()
    long.update([{"start": 0, "end": 9, "text": " word" * 40, "completed": True}])
    lines = window_lines(long, 3, timestamps=True, width=40)
    assert len(lines) == 3 and all(len(line) <= 40 for line in lines) and lines[-1].startswith(" " * 15)


def test_cli_takes_run_client_flags():
    args = build_parser().parse_args(
        ["-s", "example.org", "-p", "9999", "-f", "a.wav", "b.wav", "-o", "rec.wav", "-m", "small", "-l", "de",
         "-t", "-a", "-r", "--enable_translation", "-tl", "hi", "--enable_timestamps", "--n_display_segments", "2"]
    )  # fmt: skip
    assert args.server == "example.org" and args.port == 9999 and args.more_files == ["a.wav", "b.wav"]
    assert args.output_file == "rec.wav" and args.model == "small" and args.lang == "de" and args.translate
    assert args.mute_audio_playback and args.save_output_recording and args.enable_translation
    assert args.target_language == "hi" and args.enable_timestamps and args.n_display_segments == 2


def test_srt_option_with_a_trailing_slash_is_a_directory(tmp_path):
    out = f"{tmp_path}/subs/"
    assert _output(out, "/data/talk.flac", ".srt", several=False) == str(tmp_path / "subs" / "talk.srt")
    assert (tmp_path / "subs").is_dir()
    assert _output(str(tmp_path / "one.srt"), "/data/talk.flac", ".srt", several=False) == str(
        tmp_path / "one.srt"
    )


def test_segments_keep_words_and_speaker_from_the_wire():
    raw = {"start": "0.000", "end": "1.0", "text": " Hi", "completed": True, "speaker": "SPEAKER_00",
           "words": [{"start": "0.1", "end": "0.4", "word": " Hi", "probability": 0.9}]}  # fmt: skip
    segment = Segment.from_message(raw)
    assert segment.speaker == "SPEAKER_00" and segment.words[0].word == " Hi" and segment.words[0].end == 0.4
    assert dataclasses.asdict(segment)["words"][0]["probability"] == 0.9


# ----------------------------------------------------------------------------- resuming a stream


def test_replay_keeps_only_audio_after_the_last_completed_segment():
    from whisper_live.client.stream import MAX_REPLAY_SECONDS, _Replay

    replay = _Replay(bytes_per_second=32000, frame=2)  # 16 kHz int16 mono
    chunks = [bytes([i]) * 3200 for i in range(30)]  # 100 ms each, numbered
    for chunk in chunks:
        replay.add(chunk)
    assert replay.start == 0 and b"".join(replay.chunks) == b"".join(chunks)
    replay.acknowledge(1.25)  # a segment ended mid-chunk 12: the cut is on that sample
    assert replay.start_seconds == 1.25
    assert b"".join(replay.chunks) == b"".join(chunks)[40000:]
    replay.acknowledge(0.5)  # an older end changes nothing
    assert replay.start_seconds == 1.25
    replay.acknowledge(1.250015)  # never between the two bytes of a sample
    assert replay.start % 2 == 0
    replay.acknowledge(3.0)  # everything sent is final
    assert replay.chunks == [] and replay.start == replay.end == 96000
    # A long stretch without a completed segment is bounded.
    for _ in range(int(MAX_REPLAY_SECONDS * 10) + 50):
        replay.add(bytes(3200))
    assert sum(map(len, replay.chunks)) <= MAX_REPLAY_SECONDS * 32000


def test_a_resumed_connections_segments_are_placed_after_what_came_before():
    transcript = Transcript()
    transcript.update([{"start": 0.0, "end": 2.0, "text": "one", "completed": True}])
    # The new connection's clock starts at 0 where the replayed audio began (1.8 s).
    new = transcript.update(
        [
            {"start": 0.3, "end": 1.5, "text": "two", "completed": True,
             "words": [{"start": 0.3, "end": 1.5, "word": "two"}]},
            {"start": 1.5, "end": 2.0, "text": "thr", "completed": False},
        ],
        offset=1.8,
    )  # fmt: skip
    assert [(s.start, s.end, s.text) for s in new] == [(pytest.approx(2.1), pytest.approx(3.3), "two")]
    assert new[0].words[0].start == pytest.approx(2.1) and transcript.partial.start == pytest.approx(3.3)
    assert transcript.text == "one two"


def test_disconnect_says_why():
    assert protocol.disconnect("u") == {"uid": "u", "message": "DISCONNECT"}
    assert protocol.disconnect("u", "shutdown")["reason"] == "shutdown"


def test_cli_reconnects_unless_told_not_to():
    assert not build_parser().parse_args(["a.wav"]).no_reconnect
    assert build_parser().parse_args(["a.wav", "--no-reconnect"]).no_reconnect
    assert TranscriptionClient().run.reconnect
    assert not TranscriptionClient(reconnect=False).run.reconnect
