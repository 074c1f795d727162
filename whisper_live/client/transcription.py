"""``TranscriptionClient``: WhisperLive's Python client API over our streaming client.

``client("talk.mp3")``, ``client()`` (microphone), ``client(rtsp_url=...)`` and
``client(hls_url=...)`` each run one stream to the end and return the ``Transcript``;
SRT/VTT files are written from its lines (``Transcript.lines``: the word-by-word segments
joined into sentences, or speech up to a pause, at most a caption long).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.pcm import SAMPLE_RATE
from ..faces.whisperlive.wire import DEFAULT_PORT
from .console import Console
from .sources import BlockPump, Source, WavRecorder, file_source, microphone_source, url_source
from .stream import AsyncStreamingClient, ClientError, RetryPolicy, Segment, StreamOptions
from .transcript import Transcript

log = logging.getLogger(__name__)

CHUNK_SECONDS = 0.1

# Arguments of older WhisperLive clients that configured its server: accepted, no effect.
_SERVER_SIDE = {"max_clients", "max_connection_time"}


@dataclass
class OutputOptions:
    """Where a run's results go: subtitle files, the kept recording, the console."""

    srt_path: str | None = None
    vtt_path: str | None = None
    recording_path: str | None = None  # the microphone's audio, kept (save_output_recording)
    log_transcription: bool = True  # print the text as it completes
    timestamps: bool = False  # ... with [start -> end] (enable_timestamps)
    display_segments: int | None = None  # on a terminal: a window of the last N lines
    show_partial: bool = False  # the unfinished text on a rewritten stderr line


@dataclass
class RunOptions:
    """How a run behaves: file pacing, retries, limits, the input device, strictness."""

    speed: float | None = 1.0  # × real time for files; None: as fast as the server takes it
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress: bool | None = None  # a bar for files; None: when stderr is a terminal
    max_duration: float | None = None  # stop a source after this many seconds
    input_device: int | str | None = None  # sounddevice device for the microphone
    final_timeout: float | None = 600.0  # longest wait for the last text after the audio
    strict_model: bool = False  # a model the server lacks is an error, not a warning
    # A dropped stream (its replica died) or a draining server resumes on a new connection,
    # re-sending the audio not yet in completed segments (see AsyncStreamingClient).
    reconnect: bool = True


@dataclass
class Callbacks:
    """Called on the client's event loop thread; plain functions (or coroutines where noted)."""

    on_partial: Callable[[str], Any] | None = None
    on_completed: Callable[[Segment], Any] | None = None
    on_wait: Callable[[int, float], Any] | None = None  # (attempt, delay in s) before a retry
    on_audio_start: Callable[[], Any] | None = None  # the first audio goes out
    on_status: Callable[[dict], Any] | None = None  # every control message, as sent
    on_warning: Callable[[str], Any] | None = None
    on_reconnect: Callable[[int, float, str], Any] | None = None  # (count, resumed from s, why)
    transcription_callback: Callable[[str, list[dict]], Any] | None = None  # WhisperLive's


class TranscriptionClient:
    """Transcribe a file, the microphone, an RTSP or an HLS stream on a whisper-live server.

    The arguments up to ``vad_parameters`` are WhisperLive 0.10's, in its order and with its
    meaning, so its ``run_client.py`` and README examples run unchanged. Differences: no
    default model (the server's) and no default ``output_transcription_path`` (no file unless
    asked; a ``.vtt`` path writes WebVTT); files are never played aloud
    (``mute_audio_playback`` changes nothing); ``clip_audio`` and ``same_output_threshold``
    tune WhisperLive's server and have no counterpart here (text completes when two decodes
    agree, or at a pause);
    ``enable_translation`` (any-to-any translation) needs a translation model this project
    does not have: a warning, and ``target_language``, ``translation_callback`` and
    ``translation_srt_file_path`` go unused. ``display_segments`` shows a window of that many
    lines on a terminal (default: every completed line, once).

    Arguments beyond WhisperLive's (keyword only): ``srt_path``/``vtt_path``, ``on_partial(text)``,
    ``on_completed(segment)``, ``on_wait(attempt, delay)``, ``on_status(message)``,
    ``on_warning(text)``, ``on_audio_start()`` (the first audio is going out: the microphone
    is really open), ``speed`` (file pacing: 1.0 real time, None as fast as the server takes
    it), ``retry`` (backoff on WAIT), ``progress``, ``max_duration``, ``input_device``,
    ``final_timeout``, ``strict_model``, ``show_partial``, ``url`` (instead of host/port/use_wss),
    ``reconnect`` (default on, for every source: a stream whose connection drops, or whose
    server drains, continues on a new connection from the audio not yet in completed
    segments, so at most the utterance in flight is decoded again; behind a load balancer
    the new connection goes to a live replica), ``on_reconnect(count, resume_seconds, reason)``
    and ``commit_after`` (default 0: the server commits words as soon as two decodes agree, a
    completed segment every few words, and the console, the subtitles and ``text`` join them
    into lines, ``Transcript.lines``; 8 asks for whole utterances, completed at their pause,
    as WhisperLive's clients get them; None leaves the server's default).

    What it holds: ``url``, ``options`` (the stream's configuration, sent to the server),
    ``output``, ``run`` and ``callbacks``.
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = DEFAULT_PORT,
        lang: str | None = None,
        translate: bool = False,
        model: str | None = None,
        use_vad: bool = True,
        use_wss: bool = False,
        save_output_recording: bool = False,
        output_recording_filename: str = "./output_recording.wav",
        output_transcription_path: str | None = None,
        log_transcription: bool = True,
        mute_audio_playback: bool = False,
        send_last_n_segments: int = 10,
        no_speech_thresh: float = 0.45,
        clip_audio: bool = False,
        same_output_threshold: int = 10,
        transcription_callback: Callable[[str, list[dict]], Any] | None = None,
        enable_translation: bool = False,
        target_language: str = "fr",
        translation_callback: Callable[[str, list[dict]], Any] | None = None,
        translation_srt_file_path: str = "./output_translated.srt",
        enable_timestamps: bool = False,
        display_segments: int | None = None,
        hotwords: str | None = None,
        enable_diarization: bool = False,
        max_speakers: int | None = None,
        word_timestamps: bool = False,
        initial_prompt: str | None = None,
        vad_parameters: dict | None = None,
        *,
        srt_path: str | None = None,
        vtt_path: str | None = None,
        on_partial: Callable[[str], Any] | None = None,
        on_completed: Callable[[Segment], Any] | None = None,
        on_wait: Callable[[int, float], Any] | None = None,
        on_audio_start: Callable[[], Any] | None = None,
        on_status: Callable[[dict], Any] | None = None,
        on_warning: Callable[[str], Any] | None = None,
        speed: float | None = 1.0,
        retry: RetryPolicy | None = None,
        progress: bool | None = None,
        max_duration: float | None = None,
        input_device: int | str | None = None,
        final_timeout: float | None = 600.0,
        strict_model: bool = False,
        show_partial: bool = False,
        url: str | None = None,
        reconnect: bool = True,
        on_reconnect: Callable[[int, float, str], Any] | None = None,
        commit_after: float | None = 0.0,
        **server_side: Any,
    ):
        unknown = set(server_side) - _SERVER_SIDE
        if unknown:
            raise TypeError(f"unexpected arguments: {', '.join(sorted(unknown))}")
        del mute_audio_playback, translation_callback, translation_srt_file_path  # see the docstring
        self.url = url or f"{'wss' if use_wss else 'ws'}://{host}:{port}"
        self.options = StreamOptions(
            language=lang,
            task="translate" if translate else "transcribe",
            model=model,
            use_vad=use_vad,
            send_last_n_segments=send_last_n_segments,
            no_speech_thresh=no_speech_thresh,
            initial_prompt=initial_prompt,
            hotwords=hotwords,
            vad_parameters=vad_parameters,
            word_timestamps=word_timestamps,
            enable_diarization=enable_diarization,
            max_speakers=max_speakers,
            commit_after=commit_after,
        )
        if output_transcription_path:
            if output_transcription_path.lower().endswith(".vtt"):
                vtt_path = vtt_path or output_transcription_path
            else:
                srt_path = srt_path or output_transcription_path
        self.output = OutputOptions(
            srt_path=srt_path,
            vtt_path=vtt_path,
            recording_path=output_recording_filename if save_output_recording else None,
            log_transcription=log_transcription,
            timestamps=enable_timestamps,
            display_segments=display_segments,
            show_partial=show_partial,
        )
        self.run = RunOptions(
            speed=speed,
            retry=retry or RetryPolicy(),
            progress=progress,
            max_duration=max_duration,
            input_device=input_device,
            final_timeout=final_timeout,
            strict_model=strict_model,
            reconnect=reconnect,
        )
        self.callbacks = Callbacks(
            on_partial=on_partial,
            on_completed=on_completed,
            on_wait=on_wait,
            on_audio_start=on_audio_start,
            on_status=on_status,
            on_warning=on_warning,
            on_reconnect=on_reconnect,
            transcription_callback=transcription_callback,
        )
        for text in _unsupported(enable_translation, target_language, clip_audio, same_output_threshold):
            warnings.warn(text, UserWarning, stacklevel=2)
        # What the last run did: WAIT answers met, seconds of audio sent and how long sending
        # took, and how it ended ("end of audio", "stopped", "duration limit", "time limit").
        self.waits = 0
        self.reconnects = 0  # times the stream resumed on a new connection
        self.sent_seconds = 0.0
        self.send_duration = 0.0
        self.ended: str | None = None
        self._stopped = False
        self._pump: BlockPump | None = None
        self._task: asyncio.Task | None = None

    def __call__(
        self,
        audio: str | Path | None = None,
        hls_url: str | None = None,
        rtsp_url: str | None = None,
        save_file: str | None = None,
    ) -> Transcript:
        """Run one stream to its end (Ctrl-C ends a live one cleanly) and return the transcript."""
        source, record_to = self.source_for(audio, hls_url, rtsp_url, save_file)
        try:
            return asyncio.run(self._main(source, record_to))
        except asyncio.CancelledError:
            raise KeyboardInterrupt from None  # Ctrl-C before any audio flowed (e.g. during WAIT)

    def source_for(
        self, audio=None, hls_url=None, rtsp_url=None, save_file=None
    ) -> tuple[Source, str | None]:
        """Which source a WhisperLive-style call means, and where to keep its audio (if anywhere)."""
        chosen = [x for x in (audio, hls_url, rtsp_url) if x is not None]
        if len(chosen) > 1:
            raise ValueError("give one of audio, hls_url, rtsp_url")
        if audio is not None:
            return file_source(audio), save_file
        if hls_url is not None:
            return url_source(hls_url, live=False), save_file
        if rtsp_url is not None:
            return url_source(rtsp_url), save_file
        return microphone_source(self.run.input_device), save_file or self.output.recording_path

    async def transcribe(self, source: Source, record_to: str | None = None) -> Transcript:
        """The same run for programs that already have an event loop (no signal handling)."""
        return await self._run(source, record_to)

    async def _main(self, source: Source, record_to: str | None) -> Transcript:
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        handled = threading.current_thread() is threading.main_thread()
        if handled:
            try:
                loop.add_signal_handler(signal.SIGINT, self._interrupt)
            except (NotImplementedError, RuntimeError):
                handled = False
        try:
            return await self._run(source, record_to)
        finally:
            if handled:
                loop.remove_signal_handler(signal.SIGINT)

    def _interrupt(self) -> None:
        """First Ctrl-C: stop the audio and still collect the final text. Second: abort."""
        log.warning("stopping: finishing the transcript (Ctrl-C again to abort)")
        asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
        if self._pump is not None:
            self.stop()
        elif self._task is not None:
            self._task.cancel()  # still connecting: there is no transcript to finish

    def stop(self) -> None:
        """End the audio of the running stream (from the event loop's thread)."""
        if self._pump is not None:
            self._stopped = True
            self._pump.stop()

    async def _run(self, source: Source, record_to: str | None) -> Transcript:
        out, calls = self.output, self.callbacks
        console = (
            Console(out.timestamps, out.display_segments, out.show_partial) if out.log_transcription else None
        )
        closer = LineCloser(
            _both(console and console.update, calls.transcription_callback and self._segments)
        )
        stream = AsyncStreamingClient(
            self.url,
            self.options,
            retry=self.run.retry,
            on_partial=calls.on_partial,
            on_completed=calls.on_completed,
            on_segments=closer.updated if closer.notify else None,
            on_wait=calls.on_wait,
            on_status=calls.on_status,
            on_warning=calls.on_warning,
            strict_model=self.run.strict_model,
            reconnect=self.run.reconnect,
            on_reconnect=calls.on_reconnect,
        )
        self.waits, self.reconnects, self.ended, self._stopped = 0, 0, None, False
        try:
            await stream.connect()
        finally:
            self.waits = stream.waits
        recorder = WavRecorder(record_to) if record_to else None
        ticker = asyncio.create_task(closer.run(stream.transcript)) if closer.notify else None
        try:
            await self._send(
                stream, source, recorder, window=console is not None and console.window is not None
            )
        except BaseException:
            if ticker is not None:
                ticker.cancel()
            await stream.close()
            raise
        finally:
            if recorder is not None:
                recorder.close()
        try:
            transcript = await stream.finish(self.run.final_timeout)
        except ClientError:
            self.reconnects = stream.reconnects
            # The connection ended early (lost, refused, server gone): what arrived is still
            # the user's, so the SRT/VTT are written; the error says how it ended.
            self.write_outputs(stream.transcript)
            raise
        finally:
            if ticker is not None:
                ticker.cancel()
            if console is not None:
                console.finish(stream.transcript)
        self.reconnects = stream.reconnects
        if calls.transcription_callback is not None:
            try:  # once more, the stream over: the open line closes
                self._segments(transcript)
            except Exception:  # as during the stream: a failing callback does not lose the transcript
                log.exception("transcription_callback failed")
        if transcript.disconnected:
            # DISCONNECT comes at the time limit (close 1000) or when the server shuts down (1001)
            reason = stream.disconnect_reason or ("shutdown" if stream.close_code == 1001 else "time limit")
            self.ended = "server shutting down" if reason == "shutdown" else "server time limit"
        elif self._stopped:
            self.ended = "stopped"
        elif self.ended is None:
            self.ended = "end of audio"
        self.write_outputs(transcript)
        return transcript

    async def _send(
        self, stream: AsyncStreamingClient, source: Source, recorder: WavRecorder | None, window: bool = False
    ) -> None:
        """Cut the source into 100 ms packets and send them, paced for files when asked."""
        loop = asyncio.get_running_loop()
        chunk = int(CHUNK_SECONDS * SAMPLE_RATE)
        limit = int(self.run.max_duration * SAMPLE_RATE) if self.run.max_duration else None
        pace = self.run.speed if self.run.speed and not source.live else None
        bar = None if window else self._progress_bar(source)  # a bar would break the window's redraw
        self._pump = pump = BlockPump(source)
        pending = np.zeros(0, np.float32)
        sent = 0
        started = loop.time()

        async def send(samples: np.ndarray) -> bool:
            nonlocal sent, started
            if sent == 0:
                started = loop.time()  # pace from the first audio, not from opening the source
                if self.callbacks.on_audio_start is not None:
                    self.callbacks.on_audio_start()  # the device or stream really delivers audio now
            if pace:
                delay = started + sent / SAMPLE_RATE / pace - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if not await stream.send(samples):
                return False  # the server ended the stream (DISCONNECT)
            if recorder is not None:
                recorder.write(samples)
            sent += len(samples)
            if bar is not None:
                bar.update(len(samples) / SAMPLE_RATE)
            return True

        try:
            async for block in pump:
                if limit is not None:
                    block = block[: max(0, limit - sent - len(pending))]
                pending = np.concatenate((pending, block))
                while len(pending) >= chunk:
                    if not await send(pending[:chunk]):
                        return
                    pending = pending[chunk:]
                if limit is not None and sent + len(pending) >= limit:
                    self.ended = "duration limit"
                    break
            if len(pending):
                await send(pending)
        finally:
            self._pump = None
            await pump.aclose()
            self.sent_seconds = sent / SAMPLE_RATE
            self.send_duration = loop.time() - started
            if bar is not None:
                bar.close()

    def _progress_bar(self, source: Source):
        show = self.run.progress if self.run.progress is not None else sys.stderr.isatty()
        if not show:
            return None
        from tqdm import tqdm

        return tqdm(
            total=round(source.duration, 1) if source.duration else None,
            unit="s",
            unit_scale=False,
            desc=Path(source.name).name if not source.live else source.name,
            bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} s [{elapsed}<{remaining}]",
            leave=False,
        )

    def _segments(self, transcript: Transcript) -> None:
        """WhisperLive's ``transcription_callback(text, segments)``, segments as dicts of its
        shape (start, end, text, completed; words, speaker). They are lines, not the word-by-word
        pieces: upstream's callback users show a segment per line, as upstream's server
        completes a segment per utterance. The closed lines come ``completed``
        (``Transcript.closed_lines``: the last one too once its utterance is over, on a call
        of its own from ``LineCloser`` if the server has gone quiet); the open line, with the
        partial on it (or the partial on a line of its own), comes ``completed: False`` like
        upstream's partial, since it may still change. After the stream a last call has every
        line completed."""
        lines = transcript.lines_with_partial
        closed = len(transcript.closed_lines)
        segments = [line.as_dict(completed=i < closed) for i, line in enumerate(lines)]
        self.callbacks.transcription_callback(" ".join(line.text for line in lines), segments)

    def write_outputs(self, transcript: Transcript) -> None:
        for path, text in (
            (self.output.srt_path, transcript.to_srt),
            (self.output.vtt_path, transcript.to_vtt),
        ):
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_text(text(), encoding="utf-8")


class LineCloser:
    """Tells the console and ``transcription_callback`` (``notify(transcript)``) when the last
    line closes because its utterance is over (``close_lines``) although no message came: the
    server sends nothing in silence, so without a timer the last words of an utterance left
    without a full stop would show only when the speaker talks again. ``updated`` goes to the
    stream as ``on_segments`` (every message notifies); ``run`` re-checks every ``INTERVAL``
    seconds and notifies when more lines are closed than at the last notification (time only
    closes lines: a message is what opens one again)."""

    INTERVAL = 0.2  # seconds: a line shows within SERVER_QUIET plus this of its utterance's end

    def __init__(self, notify: Callable[[Transcript], Any] | None):
        self.notify = notify
        self._closed = 0  # closed lines at the last notification

    def updated(self, transcript: Transcript) -> None:
        self._closed = len(transcript.closed_lines)
        if self.notify is not None:
            self.notify(transcript)

    async def run(self, transcript: Transcript) -> None:
        while True:
            await asyncio.sleep(self.INTERVAL)
            if transcript.ended or len(transcript.closed_lines) <= self._closed:
                continue
            try:
                self.updated(transcript)
            except Exception:  # a failing callback must not stop the re-checks or the stream
                log.exception("transcription_callback failed")


def _both(first: Callable | None, second: Callable | None) -> Callable | None:
    """One callback calling two (either may be missing)."""
    if first is None or second is None:
        return first or second

    def call(*args: Any) -> None:
        first(*args)
        second(*args)

    return call


def _unsupported(
    enable_translation: bool, target_language: str, clip_audio: bool, same_output_threshold: int
):
    """Warnings for WhisperLive options this client and server cannot honour as asked."""
    if enable_translation:
        yield (
            f"enable_translation (to {target_language!r}) is not supported: whisper-live has no"
            " translation model; the transcript stays in the spoken language, translation_callback"
            " is never called and translation_srt_file_path is not written"
            " (translate=True gives English with a multilingual model)"
        )
    if clip_audio:
        yield "clip_audio has no effect on whisper-live (its VAD already skips audio without speech)"
    if same_output_threshold != 10:
        yield (
            "same_output_threshold has no effect on whisper-live (text completes when two decodes agree;"
            " commit_after sets how soon)"
        )
