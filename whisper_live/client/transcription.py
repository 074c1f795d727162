"""``TranscriptionClient``: WhisperLive's Python client API over our streaming client.

``client("talk.mp3")``, ``client()`` (microphone), ``client(rtsp_url=...)`` and
``client(hls_url=...)`` each run one stream to the end and return the ``Transcript``;
SRT/VTT files are written from its completed segments.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.pcm import SAMPLE_RATE
from .sources import BlockPump, Source, WavRecorder, file_source, microphone_source, url_source
from .stream import AsyncStreamingClient, ClientError, RetryPolicy, Segment, StreamOptions
from .transcript import Transcript

log = logging.getLogger(__name__)

CHUNK_SECONDS = 0.1

# WhisperLive client arguments that configure its own server or features we do not have.
_IGNORED = {
    "max_clients",
    "max_connection_time",
    "mute_audio_playback",
    "clip_audio",
    "same_output_threshold",
    "enable_translation",
    "target_language",
    "translation_callback",
    "translation_output_path",
    "enable_diarization",
    "max_speakers",
}


class TranscriptionClient:
    """Transcribe a file, the microphone, an RTSP or an HLS stream on a whisper-live server.

    Arguments beyond WhisperLive's: ``speed`` (file pacing: 1.0 real time, 4.0 four times
    faster, None as fast as the server takes it), ``srt_path``/``vtt_path``,
    ``on_partial(text)``/``on_completed(segment)``, ``on_status(message)``, ``on_audio_start()`` (the first audio is
    going out: the microphone is really open), ``retry`` (backoff on WAIT), ``progress``
    (None: a bar when stderr is a terminal), ``max_duration`` (stop a live source after that
    many seconds), ``input_device`` (sounddevice device for the microphone).
    ``output_transcription_path`` writes VTT when it ends in ``.vtt``, else SRT.
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = 9090,
        lang: str | None = None,
        translate: bool = False,
        model: str | None = None,
        use_vad: bool = True,
        use_wss: bool = False,
        save_output_recording: bool = False,
        output_recording_filename: str = "./output_recording.wav",
        output_transcription_path: str | None = None,
        log_transcription: bool = True,
        send_last_n_segments: int = 10,
        no_speech_thresh: float = 0.45,
        initial_prompt: str | None = None,
        hotwords: str | None = None,
        vad_parameters: dict | None = None,
        word_timestamps: bool = False,
        transcription_callback: Callable[[str, list[dict]], Any] | None = None,
        *,
        srt_path: str | None = None,
        vtt_path: str | None = None,
        on_partial: Callable[[str], Any] | None = None,
        on_completed: Callable[[Segment], Any] | None = None,
        on_wait: Callable[[int, float], Any] | None = None,
        on_audio_start: Callable[[], Any] | None = None,
        on_status: Callable[[dict], Any] | None = None,
        speed: float | None = 1.0,
        retry: RetryPolicy | None = None,
        progress: bool | None = None,
        max_duration: float | None = None,
        input_device: int | str | None = None,
        final_timeout: float | None = 600.0,
        url: str | None = None,
        **whisperlive_only: Any,
    ):
        unknown = set(whisperlive_only) - _IGNORED
        if unknown:
            raise TypeError(f"unexpected arguments: {', '.join(sorted(unknown))}")
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
        )
        self.save_output_recording = save_output_recording
        self.output_recording_filename = output_recording_filename
        self.srt_path = srt_path
        self.vtt_path = vtt_path
        if output_transcription_path:
            if output_transcription_path.lower().endswith(".vtt"):
                self.vtt_path = self.vtt_path or output_transcription_path
            else:
                self.srt_path = self.srt_path or output_transcription_path
        self.log_transcription = log_transcription
        self.transcription_callback = transcription_callback
        self.on_partial = on_partial
        self.on_completed = on_completed
        self.on_wait = on_wait
        self.on_audio_start = on_audio_start
        self.on_status = on_status
        self.speed = speed
        self.retry = retry or RetryPolicy()
        self.progress = progress
        self.max_duration = max_duration
        self.input_device = input_device
        self.final_timeout = final_timeout
        # What the last run did: WAIT answers met, seconds of audio sent and how long sending took.
        self.waits = 0
        self.sent_seconds = 0.0
        self.send_duration = 0.0
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
        record = self.output_recording_filename if self.save_output_recording else None
        return microphone_source(self.input_device), save_file or record

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
            self._pump.stop()

    async def _run(self, source: Source, record_to: str | None) -> Transcript:
        stream = AsyncStreamingClient(
            self.url,
            self.options,
            retry=self.retry,
            on_partial=self.on_partial,
            on_completed=self._completed,
            on_segments=self._segments if self.transcription_callback else None,
            on_wait=self.on_wait,
            on_status=self.on_status,
        )
        self.waits = 0
        try:
            await stream.connect()
        finally:
            self.waits = stream.waits
        recorder = WavRecorder(record_to) if record_to else None
        try:
            await self._send(stream, source, recorder)
        except BaseException:
            await stream.close()
            raise
        finally:
            if recorder is not None:
                recorder.close()
        try:
            transcript = await stream.finish(self.final_timeout)
        except ClientError:
            # The connection ended early (lost, refused, server gone): what arrived is still
            # the user's, so the SRT/VTT are written; the error says how it ended.
            self.write_outputs(stream.transcript)
            raise
        self.write_outputs(transcript)
        return transcript

    async def _send(self, stream: AsyncStreamingClient, source: Source, recorder: WavRecorder | None) -> None:
        """Cut the source into 100 ms packets and send them, paced for files when asked."""
        loop = asyncio.get_running_loop()
        chunk = int(CHUNK_SECONDS * SAMPLE_RATE)
        limit = int(self.max_duration * SAMPLE_RATE) if self.max_duration else None
        pace = self.speed if self.speed and not source.live else None
        bar = self._progress_bar(source)
        self._pump = pump = BlockPump(source)
        pending = np.zeros(0, np.float32)
        sent = 0
        started = loop.time()

        async def send(samples: np.ndarray) -> bool:
            nonlocal sent, started
            if sent == 0:
                started = loop.time()  # pace from the first audio, not from opening the source
                if self.on_audio_start is not None:
                    self.on_audio_start()  # the device or stream really delivers audio now
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
        show = self.progress if self.progress is not None else sys.stderr.isatty()
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

    def _completed(self, segment: Segment) -> None:
        if self.log_transcription:
            from tqdm import tqdm

            tqdm.write(segment.text.strip(), file=sys.stdout)  # keeps a progress bar intact
        if self.on_completed is not None:
            self.on_completed(segment)

    def _segments(self, transcript: Transcript) -> None:
        segments = [dataclasses.asdict(s) for s in transcript.segments]
        if transcript.partial is not None:
            segments.append(dataclasses.asdict(transcript.partial))
        self.transcription_callback(transcript.text_with_partial, segments)

    def write_outputs(self, transcript: Transcript) -> None:
        for path, text in ((self.srt_path, transcript.to_srt), (self.vtt_path, transcript.to_vtt)):
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_text(text(), encoding="utf-8")
