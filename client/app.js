/*
 * The page: settings, start/stop, status, transcript and downloads. The audio and the
 * protocol live in stream.js (LiveStream); this file only turns their events into DOM.
 *
 * Settings come from, in order: the query string (?server=ws://host:port&model=&language=&task=,
 * so links and tests can preset them), what the user last used (localStorage), defaults.
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
    token: $("token"),
    hint: $("model-hint"),
    start: $("start"),
    stop: $("stop"),
    clear: $("clear"),
    level: $("level"),
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
  let elapsedTimer = null;

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
    el.server.addEventListener("input", () => delete el.server.dataset.fromQuery);
    for (const input of [el.model, el.language, el.task]) input.addEventListener("change", updateHint);
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
  }

  // ---- status ---------------------------------------------------------------------------

  const STATUS = {
    idle: () => "Ready. Press Start to transcribe your microphone.",
    microphone: () => "Waiting for microphone permission…",
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
    const busy = ["microphone", "connecting", "streaming", "finishing"].includes(state);
    el.start.disabled = busy;
    el.stop.disabled = !["microphone", "connecting", "streaming"].includes(state);
    for (const input of el.form.querySelectorAll("input, select")) input.disabled = busy;
    if (!busy) {
      stopElapsed();
      if (stream) el.elapsed.textContent = Transcript.short(stream.secondsSent); // the exact total
    }
    // Refused or failed before any language came back: do not keep saying "detecting".
    if (!busy && el.detected.dataset.pending) el.detected.textContent = "—";
    if (!busy) delete el.detected.dataset.pending;
    if (state === "streaming") startElapsed();
    if (!busy) el.level.value = 0;
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
      if (stream) el.elapsed.textContent = Transcript.short(stream.secondsSent);
    }, 200);
  }

  function stopElapsed() {
    clearInterval(elapsedTimer);
    elapsedTimer = null;
  }

  // ---- transcript -----------------------------------------------------------------------

  function render() {
    // Follow the text while the user is at the bottom; leave them alone if they scrolled up.
    const atBottom = el.box.scrollHeight - el.box.scrollTop - el.box.clientHeight < 40;
    const items = el.segments.children;
    transcript.segments.forEach((seg, i) => {
      let li = items[i];
      if (!li) {
        li = document.createElement("li");
        li.className = "segment";
        li.innerHTML = '<span class="time"></span> <span class="text"></span>';
        el.segments.append(li);
      }
      const time = `${Transcript.short(seg.start)} – ${Transcript.short(seg.end)}`;
      const [timeEl, textEl] = li.children;
      if (timeEl.textContent !== time) timeEl.textContent = time;
      if (textEl.textContent !== seg.text) textEl.textContent = seg.text;
      li.dataset.start = seg.start;
      li.dataset.end = seg.end;
    });
    while (items.length > transcript.segments.length) el.segments.lastElementChild.remove();
    el.partial.hidden = !transcript.partial;
    el.partialText.textContent = transcript.partial ? transcript.partial.text : "";
    // The end of a partial keeps moving; its start is what helps to place it.
    el.partialTime.textContent = transcript.partial ? `${Transcript.short(transcript.partial.start)} – …` : "";
    el.empty.hidden = !transcript.isEmpty || !!transcript.partial;
    for (const button of el.downloads) button.disabled = transcript.isEmpty;
    el.clear.disabled = transcript.isEmpty && !transcript.partial;
    if (atBottom) el.box.scrollTop = el.box.scrollHeight;
  }

  function download(format) {
    const body = format === "srt" ? transcript.toSRT() : format === "vtt" ? transcript.toVTT() : transcript.toText();
    const type = format === "vtt" ? "text/vtt" : format === "srt" ? "application/x-subrip" : "text/plain";
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
      },
      {
        onState: showState,
        onSegments: (segments) => {
          if (transcript.merge(segments)) render();
        },
        onLanguage: (language, probability) => {
          delete el.detected.dataset.pending;
          const p = Number(probability);
          el.detected.textContent = Number.isFinite(p) ? `${language} (${Math.round(p * 100)}%)` : language;
        },
        onWarning: (text) => addMessage(text, "warning"),
        onLevel: (peak) => {
          el.level.value = Math.min(1, peak);
        },
      },
    );
    stream.start();
  }

  function stop() {
    if (stream) stream.stop();
  }

  function clear() {
    const live = stream && ["streaming", "finishing"].includes(stream.state);
    if (live) transcript.discard();
    else transcript.clear();
    render();
  }

  initSettings();
  render();
  el.start.addEventListener("click", start);
  el.stop.addEventListener("click", stop);
  el.clear.addEventListener("click", clear);
  el.form.addEventListener("submit", (event) => {
    event.preventDefault(); // Enter in a field means Start, not a page reload
    if (!el.start.disabled) start();
  });
  for (const button of el.downloads) button.addEventListener("click", () => download(button.dataset.format));
  // Stopping mid-sentence on close would lose it; at least warn while audio is live.
  window.addEventListener("beforeunload", (event) => {
    if (stream && ["streaming", "finishing"].includes(stream.state)) event.preventDefault();
  });
  // For tests and debugging in the console.
  window.whisperLive = { transcript, get stream() { return stream; } };
}

// The scripts are inserted from <head> and may run before the body has been parsed.
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startApp);
else startApp();
