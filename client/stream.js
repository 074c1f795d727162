/*
 * LiveStream: one live session = microphone + capture worklet + WebSocket, and nothing of
 * the page. It reports through callbacks so the UI (app.js) stays a thin layer.
 *
 * Sources: the microphone (getUserMedia), a tab's or the screen's audio (getDisplayMedia, its
 * video track dropped at once), or both mixed in one AudioContext (you and the meeting).
 *
 * Wire protocol (WhisperLive-compatible): a JSON config text frame first, then binary frames
 * of 16 kHz mono int16 little-endian PCM, then the bytes "END_OF_AUDIO" as a binary frame.
 * The server answers SERVER_READY, segment updates, the detected language, and may refuse
 * with WAIT (server full), ERROR, or end with DISCONNECT (time limit, shutdown).
 *
 * An API key goes as the subprotocols "token, <key>": a browser WebSocket cannot set headers,
 * and the server answers with the subprotocol "token".
 *
 * Needs resampler.js and pcm-worklet.js.
 */
"use strict";

const END_OF_AUDIO = new TextEncoder().encode("END_OF_AUDIO");
// Audio captured before SERVER_READY is held back (the server may be loading a model) but
// not without bound: ~60 s of 16 kHz int16.
const MAX_QUEUED_BYTES = 60 * 16000 * 2;
// After END_OF_AUDIO the server decodes what it holds and closes; on a busy CPU that can take
// a while, but not forever.
const FINISH_TIMEOUT_MS = 180000;

class LiveStream {
  /**
   * @param {{url: string, model: string, language: string|null, task: string, token?: string,
   *          source?: "microphone" | "tab" | "both", diarize?: boolean}} options
   * @param {{onState?: Function, onSegments?: Function, onLanguage?: Function,
   *          onWarning?: Function, onLevel?: Function, onLevels?: Function}} handlers
   *   onLevels({microphone?, tab?}): each source's peak (0..1), ~10 times a second
   *   onState(state, detail): "microphone" | "connecting" | "streaming" | "finishing" |
   *     "done" | "wait" ({minutes}) | "disconnected" | "error" ({message})
   */
  constructor(options, handlers = {}) {
    this.options = options;
    this.on = handlers;
    this.state = "idle";
    this.uid = typeof crypto !== "undefined" && crypto.randomUUID ? crypto.randomUUID() : `web-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    this.ws = null;
    this.context = null;
    this.sources = []; // {name: "microphone" | "tab", media, node, analyser}
    this.node = null;
    this.queue = [];
    this.queuedBytes = 0;
    this.sentBytes = 0;
    this.ready = false;
    this.finalState = null; // set by WAIT / DISCONNECT / ERROR so the close keeps that state
  }

  _set(state, detail = {}) {
    this.state = state;
    if (this.on.onState) this.on.onState(state, detail);
  }

  _fail(message) {
    if (!this.finalState) this.finalState = { state: "error", detail: { message } };
    this._set("error", { message });
    this._teardownAudio();
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close();
  }

  /** Seconds of audio sent so far (after resampling). */
  get secondsSent() {
    return this.sentBytes / 2 / 16000;
  }

  async start() {
    const source = this.options.source || "microphone";
    const wantMic = source === "microphone" || source === "both";
    const wantTab = source === "tab" || source === "both";
    // getUserMedia, getDisplayMedia and AudioWorklet exist only in secure contexts (https,
    // localhost, file).
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this._fail(
        `${wantTab ? "Sharing a tab's audio" : "The microphone"} is only available on a secure page: open this page over https, ` +
          "from localhost, or from a local file.",
      );
      return;
    }
    if (wantTab && !navigator.mediaDevices.getDisplayMedia) {
      this._fail(
        "This browser cannot share a tab's or the screen's audio (no getDisplayMedia, as on phones): " +
          "choose Microphone, or use a desktop Chrome or Edge.",
      );
      return;
    }
    if (typeof AudioWorkletNode === "undefined") {
      this._fail("This browser has no AudioWorklet support; use a current Chrome, Edge, Firefox or Safari.");
      return;
    }
    // Create the context now, while the click that called start() still counts as a user
    // gesture: some browsers (Safari, Chrome on Android) keep a context made later suspended.
    // Its rate is the hardware's (typically 48 kHz); the worklet resamples to 16 kHz itself.
    // One context for every source: they are mixed by connecting them all to the worklet.
    try {
      this.context = new AudioContext();
    } catch (err) {
      this._fail(`Could not start audio: ${(err && err.message) || err}`);
      return;
    }
    this._set("microphone", { source });
    this.sources = [];
    // The screen picker first: getDisplayMedia needs the click's user activation, which
    // would have expired while the user answered a microphone prompt.
    if (wantTab && !(await this._openTab())) return;
    if (wantMic && !(await this._openMicrophone())) return;
    if (this.state !== "microphone") return this._teardownAudio(); // stopped meanwhile
    try {
      this.node = await PcmWorklet.create(this.context);
      this.node.port.onmessage = (event) => this._onWorklet(event.data);
      for (const input of this.sources) {
        // source -> analyser (this source's level) -> worklet; several inputs to one node
        // are summed by Web Audio, which is the mix.
        input.node = this.context.createMediaStreamSource(input.media);
        input.analyser = this.context.createAnalyser();
        input.analyser.fftSize = 2048;
        input.node.connect(input.analyser);
        input.analyser.connect(this.node);
      }
      if (this.context.state === "suspended") await this.context.resume();
    } catch (err) {
      this._fail(`Could not start audio processing: ${(err && err.message) || err}`);
      return;
    }
    if (this.state !== "microphone") return this._teardownAudio(); // stopped meanwhile
    this._startLevels();
    this._connect();
  }

  async _openMicrophone() {
    let media;
    try {
      media = await navigator.mediaDevices.getUserMedia({
        audio: {
          channelCount: 1,
          echoCancellation: true, // a speaker near the microphone would otherwise be transcribed too
          noiseSuppression: false, // Whisper copes with noise better than with suppression artefacts
          autoGainControl: true,
        },
      });
    } catch (err) {
      const why = err && err.name === "NotAllowedError" ? "permission was denied" : (err && err.message) || err;
      this._fail(`Could not open the microphone: ${why}.`);
      return false;
    }
    this._addSource("microphone", media);
    return this.state === "microphone";
  }

  async _openTab() {
    let media;
    try {
      media = await navigator.mediaDevices.getDisplayMedia({
        video: true, // required by every browser, dropped below
        audio: {
          // What the tab plays is already clean: processing meant for microphones only hurts.
          echoCancellation: false,
          noiseSuppression: false,
          autoGainControl: false,
          suppressLocalAudioPlayback: false, // the user keeps hearing the tab
        },
        systemAudio: "include", // Chrome: offer "share system audio" for a whole screen
        selfBrowserSurface: "exclude", // this page's own tab would only echo the transcript
        surfaceSwitching: "include",
      });
    } catch (err) {
      const why =
        err && err.name === "NotAllowedError" ? "sharing was cancelled or denied" : (err && err.message) || err;
      this._fail(`Could not capture a tab or the screen: ${why}.`);
      return false;
    }
    // Only the sound is wanted: stop the video at once (the browser's "sharing" indicator
    // and the cost of capturing frames go with it).
    for (const track of media.getVideoTracks()) {
      track.stop();
      media.removeTrack(track);
    }
    if (media.getAudioTracks().length === 0) {
      this._fail(
        "The browser shared no audio. Share a tab (or, in Chrome and Edge on Windows or ChromeOS, " +
          "the entire screen) and turn on \"Share tab audio\" / \"Share system audio\". " +
          "A window has no audio to share, and Firefox and Safari share none at all.",
      );
      return false;
    }
    this._addSource("tab", media);
    return this.state === "microphone";
  }

  _addSource(name, media) {
    if (this.state !== "microphone") {
      // Stopped (or failed) while the browser was asking: release what it gave at once.
      for (const track of media.getTracks()) track.stop();
      return;
    }
    // Unplugged microphone, revoked permission, or "Stop sharing": finish the session as if
    // Stop had been pressed.
    for (const track of media.getAudioTracks()) track.onended = () => this.stop();
    this.sources.push({ name, media, node: null, analyser: null });
  }

  /** Peak level of each source, ~10 times a second, for a meter per source. */
  _startLevels() {
    if (!this.on.onLevels) return;
    const buffer = new Float32Array(2048);
    this._levelTimer = setInterval(() => {
      const levels = {};
      for (const input of this.sources) {
        if (!input.analyser) continue;
        input.analyser.getFloatTimeDomainData(buffer);
        let peak = 0;
        for (const x of buffer) peak = Math.max(peak, Math.abs(x));
        levels[input.name] = peak;
      }
      this.on.onLevels(levels);
    }, 100);
  }

  _connect() {
    this._set("connecting", { url: this.options.url });
    let ws;
    try {
      ws = this.options.token
        ? new WebSocket(this.options.url, ["token", this.options.token])
        : new WebSocket(this.options.url);
    } catch (err) {
      this._fail(`Bad server address ${this.options.url}: ${(err && err.message) || err}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      ws.send(
        JSON.stringify({
          uid: this.uid,
          language: this.options.language || null, // null: the server detects it
          task: this.options.task || "transcribe",
          model: this.options.model || null,
          use_vad: true,
          audio_format: "int16", // announce it: WhisperLive's default would be float32
          // Word by word: words are completed as soon as the model agrees on them (our
          // extension; the server's default waits 8 s into an utterance). Each commit is a
          // segment of its own, which the page joins into lines (Transcript.group).
          commit_after: 0,
          ...(this.options.diarize ? { enable_diarization: true } : {}), // WhisperLive's name
        }),
      );
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this._onServer(message);
    };
    ws.onclose = (event) => {
      this._teardownAudio();
      clearTimeout(this._finishTimer);
      if (this.finalState) {
        this._set(this.finalState.state, { ...this.finalState.detail, reason: event.reason });
      } else if (this.state === "finishing" && (event.code === 1000 || event.code === 1005)) {
        this._set("done");
      } else if (!opened) {
        // A refused key and a stopped server look the same from here (the browser hides the
        // HTTP answer to a failed WebSocket handshake), so name both.
        const key = this.options.token ? " and is the API key right" : " (does it need an API key?)";
        this._set("error", { message: `Could not connect to ${this.options.url}. Is the server running${key}?` });
      } else if (this.state === "stopping-early") {
        this._set("done");
      } else {
        const reason = event.reason ? `: ${event.reason}` : "";
        this._set("error", { message: `The connection closed unexpectedly (code ${event.code}${reason}).` });
      }
    };
  }

  _onServer(message) {
    if (message.message === "SERVER_READY") {
      this.ready = true;
      for (const chunk of this.queue) this._send(chunk);
      this.queue = [];
      this.queuedBytes = 0;
      if (this.state === "connecting") this._set("streaming", { backend: message.backend });
      else if (this.state === "flushing-before-ready") this._sendEnd();
      return;
    }
    if (message.status === "WAIT") {
      const minutes = Number.parseFloat(message.message) || 0;
      this.finalState = { state: "wait", detail: { minutes } };
      this._set("wait", { minutes });
      this._teardownAudio();
      return;
    }
    if (message.status === "ERROR") {
      this.finalState = { state: "error", detail: { message: String(message.message || "server error") } };
      this._set("error", this.finalState.detail);
      this._teardownAudio();
      return;
    }
    if (message.status === "WARNING") {
      if (this.on.onWarning) this.on.onWarning(String(message.message));
      return;
    }
    if (message.message === "DISCONNECT") {
      // Time limit or shutdown: the server still delivers the final text before closing.
      this.finalState = { state: "disconnected", detail: {} };
      this._teardownAudio();
      return;
    }
    if (message.language && this.on.onLanguage) {
      this.on.onLanguage(message.language, message.language_prob);
    }
    if (Array.isArray(message.segments) && this.on.onSegments) {
      this.on.onSegments(message.segments);
    }
  }

  _onWorklet(data) {
    if (data.type === "audio") {
      if (this.on.onLevel) this.on.onLevel(data.peak);
      if (this.ready) {
        this._send(data.pcm);
      } else if (this.queuedBytes + data.pcm.byteLength <= MAX_QUEUED_BYTES) {
        this.queue.push(data.pcm);
        this.queuedBytes += data.pcm.byteLength;
      }
    } else if (data.type === "flushed") {
      this._teardownAudio(); // the last samples are out: release the microphone now
      if (this.ready) this._sendEnd();
      else if (this.state === "finishing") this.state = "flushing-before-ready";
    }
  }

  _send(buffer) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(buffer);
      this.sentBytes += buffer.byteLength;
    }
  }

  _sendEnd() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(END_OF_AUDIO);
    this.state = "finishing";
    this._finishTimer = setTimeout(() => {
      if (this.ws) this.ws.close(1000, "no answer after END_OF_AUDIO");
    }, FINISH_TIMEOUT_MS);
  }

  /**
   * Stop: the microphone stops, the worklet flushes its last samples, END_OF_AUDIO goes out,
   * and the server sends the rest of the transcript (completed) before it closes.
   */
  stop() {
    if (this.state === "microphone") {
      // Still asking for permission: there is nothing to finish.
      this._set("done");
      this._teardownAudio();
      return;
    }
    if (this.state === "connecting" && !(this.ws && this.ws.readyState === WebSocket.OPEN)) {
      this.state = "stopping-early";
      this._teardownAudio();
      if (this.ws) this.ws.close();
      return;
    }
    if (this.state !== "streaming" && this.state !== "connecting") return;
    this._set("finishing");
    if (this.node) this.node.port.postMessage({ type: "flush" });
    else if (this.ready) this._sendEnd();
  }

  _stopSources() {
    for (const input of this.sources || []) {
      for (const track of input.media.getTracks()) {
        track.onended = null;
        track.stop();
      }
      if (input.node) input.node.disconnect();
      if (input.analyser) input.analyser.disconnect();
    }
    this.sources = [];
  }

  _teardownAudio() {
    clearInterval(this._levelTimer);
    this._levelTimer = null;
    this._stopSources();
    if (this.node) this.node.port.onmessage = null;
    this.node = null;
    if (this.context && this.context.state !== "closed") this.context.close().catch(() => {});
    this.context = null;
  }
}

globalThis.LiveStream = LiveStream;
