/*
 * The page: settings, start/stop, status, transcript and downloads. The audio and the
 * protocol live in stream.js (LiveStream); this file only turns their events into DOM.
 *
 * Settings come from, in order: the query string (?server=ws://host:port&model=&language=&task=
 * &source=microphone|tab|both&diarize=1, so links and tests can preset them), what the user
 * last used (localStorage), defaults.
 *
 * A file (chosen or dropped) goes to the REST face (/v1/audio/transcriptions): streamed as
 * server-sent events, whose segment times drive the progress bar, or with "Label speakers"
 * as one verbose_json answer (the server cannot stream diarization). Its text joins the same
 * transcript as live sessions, so it is shown and downloaded the same way.
 */
"use strict";

function startApp() {
  const $ = (id) => document.getElementById(id);
  const el = {
    body: document.body,
    status: $("status"),
    statusText: $("status-text"),
    form: $("settings"),
    server: $("server"),
    model: $("model"),
    language: $("language"),
    task: $("task"),
    source: $("source"),
    sourceNote: $("source-note"),
    diarize: $("diarize"),
    token: $("token"),
    hint: $("model-hint"),
    start: $("start"),
    stop: $("stop"),
    clear: $("clear"),
    meters: { microphone: $("meter-microphone"), tab: $("meter-tab") },
    levels: { microphone: $("level-microphone"), tab: $("level-tab") },
    fileChoose: $("file-choose"),
    fileInput: $("file"),
    fileJob: $("file-job"),
    fileLabel: $("file-label"),
    fileProgress: $("file-progress"),
    fileDetail: $("file-detail"),
    speakers: $("speakers"),
    elapsed: $("elapsed"),
    detected: $("detected-language"),
    messages: $("messages"),
    box: $("transcript-box"),
    segments: $("segments"),
    partial: $("partial"),
    partialText: $("partial-text"),
    partialTime: $("partial-time"),
    empty: $("empty"),
    downloads: document.querySelectorAll(".downloads button"),
  };

  const STORAGE_KEY = "whisper-live-settings";
  const transcript = new Transcript();
  let stream = null;
  let fileJob = null; // {controller, name} while a file is being transcribed
  let elapsedTimer = null;
  let openLine = null; // the last line, while it is being written (see render)

  // ---- settings ------------------------------------------------------------------------

  function defaultServer() {
    // Served by the server: its own origin's /ws (the same port, so it also works behind a
    // proxy or load balancer), wss:// when the page came over https. From a file there is
    // no host to go by, so assume the WebSocket port on this machine.
    if (location.protocol === "http:" || location.protocol === "https:") {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      return `${scheme}://${location.host}/ws`;
    }
    return "ws://localhost:9090";
  }

  function loadSaved() {
    try {
      return JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}") || {};
    } catch {
      return {}; // storage disabled (private mode, file:// in some browsers)
    }
  }

  function save() {
    try {
      localStorage.setItem(
        STORAGE_KEY,
        JSON.stringify({
          // Only remember a server the user typed, not one that came from the link.
          server: el.server.dataset.fromQuery ? loadSaved().server : el.server.value,
          model: el.model.value,
          language: el.language.value,
          task: el.task.value,
          source: el.source.value,
          diarize: el.diarize.checked,
        }),
      );
    } catch {
      /* not important */
    }
  }

  function initSettings() {
    const query = new URLSearchParams(location.search);
    const saved = loadSaved();
    const pick = (key, fallback) => query.get(key) ?? saved[key] ?? fallback;
    el.server.value = pick("server", defaultServer());
    if (query.get("server")) el.server.dataset.fromQuery = "1";
    setModel(pick("model", "tiny.en"));
    listServerModels();
    const language = pick("language", "");
    addOption(el.language, language); // a code we do not list: keep it usable
    el.language.value = language === "auto" ? "" : language;
    el.task.value = pick("task", "transcribe") === "translate" ? "translate" : "transcribe";
    // Phones (and other browsers without getDisplayMedia) cannot share a tab: say so in the
    // choices rather than after Start. (Without mediaDevices at all, Start explains why.)
    const canShare = !navigator.mediaDevices || typeof navigator.mediaDevices.getDisplayMedia === "function";
    for (const option of el.source.options) {
      if (option.value !== "microphone" && !canShare) {
        option.disabled = true;
        option.text += " — not in this browser";
      }
    }
    const source = pick("source", "microphone");
    el.source.value = ["tab", "both"].includes(source) && canShare ? source : "microphone";
    const diarize = pick("diarize", false);
    el.diarize.checked = diarize === true || diarize === "1" || diarize === "true";
    el.server.addEventListener("input", () => delete el.server.dataset.fromQuery);
    for (const input of [el.model, el.language, el.task, el.source]) input.addEventListener("change", updateHint);
    updateHint();
  }

  function addOption(select, value, label = value) {
    if (value && ![...select.options].some((o) => o.value === value)) select.add(new Option(label, value));
  }

  function setModel(name) {
    addOption(el.model, name); // e.g. ?model=small on a server started with --models small
    el.model.value = name;
  }

  function listServerModels() {
    // Served by the server itself: its /status lists the models it has loaded, which may
    // include more than the two bundled ones. From a file there is nothing to ask.
    if (!/^https?:$/.test(location.protocol)) return;
    const root = location.origin + location.pathname.replace(/client\/[^/]*$/, "").replace(/[^/]*$/, "");
    fetch(`${root}status`, { cache: "no-store" })
      .then((r) => (r.ok ? r.json() : null))
      .then((status) => {
        for (const name of (status && status.models) || []) addOption(el.model, name);
      })
      .catch(() => {}); // an older or proxied server without /status: the defaults stay
  }

  function updateHint() {
    // English-only models (*.en) cannot translate or transcribe other languages; the server
    // would refuse, so say it before the user presses Start.
    const englishOnly = /\.en$/i.test(el.model.value.trim());
    const language = el.language.value;
    let text = "";
    if (englishOnly && el.task.value === "translate") {
      text = `${el.model.value} is English-only and cannot translate: choose the multilingual "base" model.`;
    } else if (englishOnly && language && language !== "en") {
      text = `${el.model.value} is English-only: choose "base" for ${el.language.selectedOptions[0].text}.`;
    }
    el.hint.textContent = text;
    el.hint.hidden = !text;
    el.sourceNote.hidden = el.source.value === "microphone";
    // One meter per source in use (the microphone's shows while idle, as before).
    el.meters.microphone.hidden = el.source.value === "tab";
    el.meters.tab.hidden = el.source.value === "microphone";
  }

  // ---- status ---------------------------------------------------------------------------

  const STATUS = {
    idle: () => "Ready. Press Start to transcribe your microphone, or choose a file.",
    microphone: (d) =>
      d.source && d.source !== "microphone"
        ? "Choose the tab or screen to share, with its audio…"
        : "Waiting for microphone permission…",
    file: (d) => `Transcribing ${d.name}…`,
    "file-done": (d) => `Transcribed ${d.name}. The transcript is complete.`,
    cancelled: () => "Cancelled. What was transcribed so far stays below.",
    connecting: (d) => `Connecting to ${d.url}…`,
    streaming: () => "Listening — streaming to the server.",
    finishing: () => "Stopping — the server is transcribing the last words…",
    done: () => "Stopped. The transcript is complete.",
    wait: (d) =>
      `Server full (WAIT): estimated wait ${formatMinutes(d.minutes)}. Press Start to try again.`,
    disconnected: (d) =>
      d.reason === "server shutting down"
        ? "The server is shutting down; the transcript so far is complete. Press Start to reconnect."
        : "The server ended the session (time limit reached). Press Start for a new one.",
    error: (d) => `Error: ${d.message}`,
  };

  function formatMinutes(minutes) {
    if (!(minutes > 0)) return "under a minute (0 min)";
    if (minutes < 1) return `${Math.round(minutes * 60)} s (${minutes.toFixed(1)} min)`;
    return `${minutes.toFixed(1)} min`;
  }

  function showState(state, detail = {}) {
    el.body.dataset.state = state;
    el.status.dataset.state = state;
    if (state === "wait") el.status.dataset.waitMinutes = String(detail.minutes);
    else delete el.status.dataset.waitMinutes;
    el.statusText.textContent = (STATUS[state] || (() => state))(detail);
    const busy = ["microphone", "connecting", "streaming", "finishing", "file"].includes(state);
    // Over (stopped, closed by the server, refused, failed): no more text will come, so the
    // line being written is finished (Transcript.close).
    if (transcript.ended !== !busy) {
      transcript.ended = !busy;
      render();
    }
    el.start.disabled = busy;
    el.fileChoose.disabled = busy;
    el.stop.disabled = !["microphone", "connecting", "streaming", "file"].includes(state);
    for (const input of el.form.querySelectorAll("input, select")) input.disabled = busy;
    if (!busy) {
      stopElapsed();
      if (stream) el.elapsed.textContent = Transcript.short(stream.secondsSent); // the exact total
    }
    // Refused or failed before any language came back: do not keep saying "detecting".
    if (!busy && el.detected.dataset.pending) el.detected.textContent = "—";
    if (!busy) delete el.detected.dataset.pending;
    if (state === "streaming") startElapsed();
    if (!busy) for (const meter of Object.values(el.levels)) meter.value = 0;
    $("share-captions").disabled = state !== "streaming";
  }

  /** Share this stream's captions: a viewer token minted with the page's key (the server's
   * POST /v1/streams/{uid}/viewer_tokens) and the /captions URL that uses it. */
  async function shareCaptions() {
    if (!stream) return;
    const token = el.token.value.trim();
    try {
      const response = await fetch(`${httpRoot()}v1/streams/${encodeURIComponent(stream.uid)}/viewer_tokens`, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        body: "{}",
      });
      const body = await response.json().catch(() => null);
      if (!response.ok) throw new Error(errorText(body, response.status));
      const url = new URL(body.url, httpRoot());
      $("share-url").value = url.href;
      $("share").hidden = false;
      $("share-url").select();
    } catch (error) {
      addMessage(`Could not share the captions: ${error.message}`, "error");
    }
  }

  function addMessage(text, kind) {
    const p = document.createElement("p");
    p.className = `message ${kind}`;
    p.textContent = kind === "warning" ? `Server warning: ${text}` : text;
    el.messages.append(p);
    // Keep the last few only: a long session must not grow an endless list of notices.
    while (el.messages.children.length > 4) el.messages.firstElementChild.remove();
  }

  function startElapsed() {
    stopElapsed();
    elapsedTimer = setInterval(() => {
      if (!stream) return;
      el.elapsed.textContent = Transcript.short(stream.secondsSent);
      // The server sends nothing in silence: the clock tells when the line being written is
      // over (Transcript.close), and this tick shows it.
      hearAudio();
      if (openLine && Transcript.utteranceEnded(openLine, transcript.state)) render();
    }, 200);
  }

  function stopElapsed() {
    clearInterval(elapsedTimer);
    elapsedTimer = null;
  }

  /** The stream can be no further than the audio sent (the page's own audio clock). */
  function hearAudio() {
    if (stream) transcript.clock.cap = transcript.offset + stream.secondsSent;
  }

  // ---- transcript -----------------------------------------------------------------------

  /** A speaker's colour slot (8 colours in style.css), by order of first appearance. */
  function speakerIndex(id) {
    return [...transcript.speakers.keys()].indexOf(id) % 8;
  }

  function render() {
    // Follow the text while the user is at the bottom; leave them alone if they scrolled up.
    const atBottom = el.box.scrollHeight - el.box.scrollTop - el.box.clientHeight < 40;
    const items = el.segments.children;
    // A row per line (a sentence, or a caption-sized piece of one), not per segment: word by
    // word, the server completes a segment every few words. Grouped once per render.
    const lines = transcript.lines;
    const continues = transcript.partialContinues(lines);
    const last = lines[lines.length - 1];
    openLine = last && last.open ? last : null; // the clock may finish it (startElapsed)
    lines.forEach((line, i) => {
      let li = items[i];
      if (!li) {
        li = document.createElement("li");
        li.className = "segment";
        li.innerHTML = '<span class="time"></span> <span class="line"><span class="who"></span><span class="text"></span></span>';
        el.segments.append(li);
      }
      // The line being written: its sentence is open and its utterance not over (Transcript.close).
      const open = line.open && i === lines.length - 1;
      const time = `${Transcript.short(line.start)} – ${open ? "…" : Transcript.short(line.end)}`;
      li.classList.toggle("open", open);
      const timeEl = li.querySelector(".time");
      const whoEl = li.querySelector(".who");
      const textEl = li.querySelector(".text");
      if (timeEl.textContent !== time) timeEl.textContent = time;
      if (textEl.textContent !== line.text) textEl.textContent = line.text;
      const who = line.speaker ? transcript.speakerName(line.speaker) : "";
      if (whoEl.textContent !== who) whoEl.textContent = who;
      whoEl.hidden = !who;
      if (line.speaker) li.dataset.speaker = String(speakerIndex(line.speaker));
      else delete li.dataset.speaker;
      li.dataset.start = line.start;
      li.dataset.end = line.end;
    });
    renderSpeakers();
    // The partial: on the last row when it continues that row's sentence, else on a row of its
    // own under the list. It is one element either way, moved (before rows are removed, so it
    // is never removed with one).
    const host = continues ? items[lines.length - 1].querySelector(".line") : el.box;
    if (el.partial.parentElement !== host) {
      if (continues) host.append(el.partial);
      else el.segments.after(el.partial);
    }
    el.partial.classList.toggle("inline", continues);
    // Inside the list (a live region) it would be announced at every change: hidden from
    // screen readers there, as it is from the live region below the list.
    if (continues) el.partial.setAttribute("aria-hidden", "true");
    else el.partial.removeAttribute("aria-hidden");
    while (items.length > lines.length) el.segments.lastElementChild.remove();
    el.partial.hidden = !transcript.partial;
    el.partialText.textContent = transcript.partial ? transcript.partial.text : "";
    // The end of a partial keeps moving; its start is what helps to place it.
    el.partialTime.textContent = transcript.partial ? `${Transcript.short(transcript.partial.start)} – …` : "";
    el.empty.hidden = !transcript.isEmpty || !!transcript.partial;
    for (const button of el.downloads) button.disabled = transcript.isEmpty;
    el.clear.disabled = transcript.isEmpty && !transcript.partial;
    if (atBottom) el.box.scrollTop = el.box.scrollHeight;
    publish(lines);
  }

  // ---- the captions view (captions.html) ------------------------------------------------------

  // Other pages of this origin in this browser (the captions view in a window or tab) read
  // the transcript from here; ?channel= keeps two sessions apart.
  const channelName = new URLSearchParams(location.search).get("channel") || "default";
  const captions = typeof BroadcastChannel === "function" ? new BroadcastChannel(`whisper-live-transcript:${channelName}`) : null;

  function publish(lines = transcript.lines) {
    if (!captions) return;
    const { position, quiet, ended } = transcript.state;
    const named = (s) => ({
      start: s.start,
      end: s.end,
      text: s.text,
      ...(s.speaker ? { speaker: transcript.speakerName(s.speaker) } : {}),
    });
    // The last few lines are all a caption shows; the whole transcript would be wasted work.
    // Lines, not segments: ten lines reach back further than ten word-by-word segments (the
    // view groups what it gets again, which leaves lines as they are).
    captions.postMessage({
      type: "transcript",
      segments: lines.slice(-10).map(named),
      partial: transcript.partial ? named(transcript.partial) : null,
      // For Transcript.close: the view finishes the line being written as this page does.
      position,
      quiet,
      ended,
    });
  }

  if (captions) {
    captions.onmessage = ({ data }) => {
      if (data && data.type === "hello") publish(); // a captions view opened later
    };
  }

  /** One name field per speaker: typing renames them on the page and in every download. */
  function renderSpeakers() {
    const ids = [...transcript.speakers.keys()].filter((id) => transcript.segments.some((s) => s.speaker === id));
    el.speakers.hidden = ids.length === 0;
    const fields = [...el.speakers.children];
    ids.forEach((id, i) => {
      let field = fields[i];
      if (!field || field.dataset.id !== id) {
        field = document.createElement("span");
        field.className = "speaker-field";
        field.dataset.id = id;
        field.innerHTML = '<span class="swatch" aria-hidden="true"></span><input type="text" spellcheck="false">';
        const input = field.querySelector("input");
        input.setAttribute("aria-label", `Name of ${id}`);
        input.addEventListener("input", () => {
          transcript.renameSpeaker(id, input.value);
          render();
        });
        if (fields[i]) fields[i].replaceWith(field);
        else el.speakers.append(field);
      }
      field.dataset.speaker = String(speakerIndex(id));
      const input = field.querySelector("input");
      // Never overwrite what the user is typing (an emptied field means the default name).
      if (document.activeElement !== input) input.value = transcript.speakerName(id);
    });
    while (el.speakers.children.length > ids.length) el.speakers.lastElementChild.remove();
  }

  function download(format) {
    const body =
      format === "srt"
        ? transcript.toSRT()
        : format === "vtt"
          ? transcript.toVTT()
          : format === "json"
            ? JSON.stringify(transcript.toJSON(), null, 2) + "\n"
            : transcript.toText();
    const type = {
      vtt: "text/vtt",
      srt: "application/x-subrip",
      json: "application/json",
      txt: "text/plain",
    }[format];
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([body], { type: `${type};charset=utf-8` }));
    a.download = `transcript-${stamp}.${format}`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  // ---- actions --------------------------------------------------------------------------

  function start() {
    if (!el.server.checkValidity()) {
      el.server.reportValidity();
      return;
    }
    save();
    el.messages.replaceChildren();
    el.detected.textContent = el.language.value ? `${el.language.selectedOptions[0].text} (chosen)` : "detecting…";
    if (!el.language.value) el.detected.dataset.pending = "1";
    // The text of an earlier session stays (Clear removes it); the new one follows it.
    transcript.beginSession();
    render();
    el.elapsed.textContent = Transcript.short(0);
    stream = new LiveStream(
      {
        url: el.server.value.trim(),
        model: el.model.value.trim(),
        language: el.language.value || null,
        task: el.task.value,
        token: el.token.value.trim() || null,
        source: el.source.value,
        diarize: el.diarize.checked,
      },
      {
        onState: showState,
        onSegments: (segments) => {
          hearAudio();
          if (transcript.merge(segments)) render();
        },
        onLanguage: (language, probability) => {
          delete el.detected.dataset.pending;
          const p = Number(probability);
          el.detected.textContent = Number.isFinite(p) ? `${language} (${Math.round(p * 100)}%)` : language;
        },
        onWarning: (text) => addMessage(text, "warning"),
        onLevels: (levels) => {
          for (const [name, peak] of Object.entries(levels)) {
            if (el.levels[name]) el.levels[name].value = Math.min(1, peak);
          }
        },
      },
    );
    stream.start();
  }

  function stop() {
    if (fileJob) fileJob.controller.abort();
    else if (stream) stream.stop();
  }

  // ---- a file, through the REST face --------------------------------------------------------

  /** The server's HTTP root: this page's own server, or (page opened from disk) the host of
   * the WebSocket address, whose HTTP port carries the REST faces when it is the /ws one. */
  function httpRoot() {
    if (/^https?:$/.test(location.protocol)) {
      return location.origin + location.pathname.replace(/client\/[^/]*$/, "").replace(/[^/]*$/, "");
    }
    try {
      const url = new URL(el.server.value.trim());
      url.protocol = url.protocol === "wss:" ? "https:" : "http:";
      url.pathname = url.pathname.replace(/ws\/?$/, "");
      url.search = "";
      return url.href;
    } catch {
      return "http://localhost:8001/";
    }
  }

  /** The file's length from its metadata (audio or video), for the progress bar; null if the
   * browser cannot tell (the bar then shows activity without a fraction). */
  function mediaDuration(file) {
    return new Promise((resolve) => {
      const media = document.createElement(file.type.startsWith("video/") ? "video" : "audio");
      const url = URL.createObjectURL(file);
      let settled = false;
      const done = (seconds) => {
        if (settled) return;
        settled = true;
        media.removeAttribute("src");
        URL.revokeObjectURL(url);
        resolve(Number.isFinite(seconds) && seconds > 0 ? seconds : null);
      };
      media.preload = "metadata";
      media.onloadedmetadata = () => done(media.duration);
      media.onerror = () => done(null);
      setTimeout(() => done(null), 5000);
      media.src = url;
    });
  }

  /** The face's error text: OpenAI's {"error": {"message"}} (also inside an SSE event). */
  function errorText(body, status) {
    const message = body && body.error && body.error.message;
    return message || (status ? `the server answered ${status}` : "the server sent an error");
  }

  function showFileProgress(seconds, duration) {
    if (duration) {
      el.fileProgress.value = Math.min(1, seconds / duration);
      el.fileDetail.textContent = `${Transcript.short(seconds)} of ${Transcript.short(duration)}`;
    } else {
      el.fileDetail.textContent = `${Transcript.short(seconds)} transcribed`;
    }
  }

  async function transcribeFile(file) {
    if (!file) return;
    if (el.start.disabled) {
      addMessage(`Not now: stop the current session first, then drop ${file.name || "the file"} again.`, "error");
      return;
    }
    save();
    el.messages.replaceChildren();
    const diarize = el.diarize.checked;
    const form = new FormData();
    form.append("file", file, file.name || "audio");
    form.append("model", el.model.value.trim());
    if (el.language.value) form.append("language", el.language.value);
    if (diarize) {
      form.append("response_format", "verbose_json"); // diarization needs the whole file first
      form.append("diarize", "true");
    } else {
      form.append("stream", "true");
    }
    const headers = el.token.value.trim() ? { Authorization: `Bearer ${el.token.value.trim()}` } : {};
    const endpoint = el.task.value === "translate" ? "translations" : "transcriptions";
    const name = file.name || "the file";
    fileJob = { controller: new AbortController(), name };
    el.fileJob.hidden = false;
    el.fileLabel.textContent = name;
    el.fileProgress.removeAttribute("value"); // indeterminate until the first segment
    el.fileDetail.textContent = diarize ? "uploading; speakers are labelled at the end…" : "uploading…";
    el.detected.textContent = "—";
    transcript.beginSession();
    render();
    showState("file", { name });
    const duration = await mediaDuration(file);
    el.fileJob.dataset.duration = duration || ""; // what the browser read (tests, debugging)
    let outcome = "file-done";
    let detail = { name };
    try {
      const response = await fetch(`${httpRoot()}v1/audio/${endpoint}`, {
        method: "POST",
        body: form,
        headers,
        signal: fileJob.controller.signal,
      });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        throw new Error(errorText(body, response.status));
      }
      if (diarize) {
        if (duration) el.fileDetail.textContent = `transcribing ${Transcript.short(duration)} and labelling speakers…`;
        const body = await response.json();
        transcript.addCompleted(body.segments || []);
        if (body.language) el.detected.textContent = body.language;
        el.fileProgress.value = 1;
        el.fileDetail.textContent = Transcript.short(body.duration || duration || 0);
      } else {
        let finished = false;
        await readEvents(response, (event) => {
          if (event.error) throw new Error(errorText(event));
          if (event.type === "transcript.text.delta") {
            const end = Number(event.end) || 0;
            if (transcript.addCompleted([{ start: event.start, end, text: event.delta }])) render();
            showFileProgress(end, duration);
          } else if (event.type === "transcript.text.done") {
            el.fileProgress.value = 1;
            const seconds = (event.usage && event.usage.seconds) || duration || 0;
            el.fileDetail.textContent = `${Transcript.short(duration || seconds)} — done`;
            finished = true;
          }
        });
        // A stream cut before its "done" (a server restart, a proxy's timeout) is not a result.
        if (!finished) throw new Error("the connection closed before the end; what came is kept");
      }
    } catch (err) {
      if (err && err.name === "AbortError") {
        outcome = "cancelled";
      } else {
        outcome = "error";
        const why = err instanceof TypeError ? `could not reach ${httpRoot()}` : (err && err.message) || err;
        detail = { message: `Could not transcribe ${name}: ${why}` };
      }
      el.fileDetail.textContent = outcome === "cancelled" ? "cancelled" : "failed";
      el.fileProgress.value = 0;
    } finally {
      fileJob = null;
      el.fileInput.value = ""; // the same file can be chosen again
    }
    render();
    showState(outcome, detail);
  }

  /** Server-sent events from a fetch body (EventSource cannot POST a file). */
  async function readEvents(response, onEvent) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
        const data = block
          .split(/\r?\n/)
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data && data !== "[DONE]") onEvent(JSON.parse(data));
      }
    }
  }

  function clear() {
    const live = fileJob || (stream && ["streaming", "finishing"].includes(stream.state));
    if (live) transcript.discard();
    else transcript.clear();
    render();
  }

  initSettings();
  // The captions view sits beside this page: /captions when served at /, else captions.html.
  const servedAtRoot = /^https?:$/.test(location.protocol) && !/\/client\//.test(location.pathname);
  const captionsLink = $("captions-link");
  captionsLink.href = (servedAtRoot ? "captions" : "captions.html") + (channelName !== "default" ? `?channel=${encodeURIComponent(channelName)}` : "");
  render();
  el.start.addEventListener("click", start);
  $("share-captions").addEventListener("click", shareCaptions);
  el.stop.addEventListener("click", stop);
  el.clear.addEventListener("click", clear);
  el.fileChoose.addEventListener("click", () => el.fileInput.click());
  el.fileInput.addEventListener("change", () => transcribeFile(el.fileInput.files[0]));
  // A file dropped anywhere on the page; without this the browser would open it instead.
  window.addEventListener("dragover", (event) => {
    if (!event.dataTransfer || ![...event.dataTransfer.types].includes("Files")) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = el.start.disabled ? "none" : "copy";
    el.body.classList.add("dragging");
  });
  window.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) el.body.classList.remove("dragging");
  });
  window.addEventListener("drop", (event) => {
    if (!event.dataTransfer || !event.dataTransfer.files.length) return;
    event.preventDefault();
    el.body.classList.remove("dragging");
    transcribeFile(event.dataTransfer.files[0]);
  });
  el.form.addEventListener("submit", (event) => {
    event.preventDefault(); // Enter in a field means Start, not a page reload
    if (!el.start.disabled) start();
  });
  for (const button of el.downloads) button.addEventListener("click", () => download(button.dataset.format));
  // Stopping mid-sentence on close would lose it; at least warn while audio is live.
  window.addEventListener("beforeunload", (event) => {
    if ((stream && ["streaming", "finishing"].includes(stream.state)) || fileJob) event.preventDefault();
  });
  // For tests and debugging in the console.
  window.whisperLive = { transcript, get stream() { return stream; }, transcribeFile };
}

// The scripts are inserted from <head> and may run before the body has been parsed.
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startApp);
else startApp();
