/*
 * The captions view (/captions): the last lines of a running transcript, large, for a
 * streaming tool's browser source or a window capture.
 *
 * URL parameters: lines (default 2), size (font size: 48 = 48px, or any CSS length),
 * position (bottom | middle | top), bg (transparent, a colour name or hex like 00ff00 for a
 * chroma key), color (the text), box (the backdrop behind the text; "none" for no box),
 * provisional (0 hides the words still being written), channel, stream, token (see below).
 *
 * Lines are sentences (Transcript.group, from transcript.js): word by word, the server
 * completes a segment every few words, and showing the last two segments would show three
 * words. Provisional words that continue the last line's sentence are shown at its end, and
 * that line, until its sentence ends, is marked provisional as a whole (class "provisional
 * open": completed words in the completed style) — a line is final once it is finished: its
 * sentence ended, or its utterance is over though the model left it without a full stop
 * (Transcript.close: the stream ended; or nothing pending, the stream a second past the line
 * and the server quiet for two; or the words pending come after a pause).
 *
 * Where the text comes from:
 * - stream=ID&token=T: a stream running anywhere (another browser, another machine, OBS's own
 *   browser source), read from the server's GET /v1/streams/ID/captions as server-sent
 *   events with a viewer token (POST /v1/streams/ID/viewer_tokens mints one; the main page's
 *   "Share captions" does). Before the stream starts this page keeps trying; when it ends the
 *   last lines stay. server=http://host:8001 when this page is not served by that server.
 * - otherwise: the Whisper Live page in the same browser (another tab or window of the same
 *   origin) publishes its transcript on a BroadcastChannel, which this page reads.
 */
"use strict";

const CHANNEL_PREFIX = "whisper-live-transcript";

function captionsApp() {
  const query = new URLSearchParams(location.search);
  const body = document.body;
  const box = document.getElementById("captions");
  const waiting = document.getElementById("waiting");

  const lines = Math.max(1, Math.min(10, Number.parseInt(query.get("lines") || "2", 10) || 2));
  const showProvisional = !["0", "false", "no"].includes((query.get("provisional") || "").toLowerCase());
  const css = (value) => (/^[0-9a-f]{3,8}$/i.test(value) ? `#${value}` : value); // 00ff00 -> #00ff00
  const size = query.get("size");
  if (size) body.style.setProperty("--size", /^\d+(\.\d+)?$/.test(size) ? `${size}px` : size);
  if (query.get("color")) body.style.setProperty("--color", css(query.get("color")));
  if (query.get("bg")) body.style.setProperty("--bg", css(query.get("bg")));
  const backdrop = query.get("box");
  if (backdrop) body.style.setProperty("--box", backdrop === "none" ? "transparent" : css(backdrop));
  const position = query.get("position");
  if (["top", "middle", "bottom"].includes(position)) body.dataset.position = position;

  /** Shows `state` ({segments, partial, ended, position, quiet}: see Transcript.close); returns the
   * line being written, if any, which the clock may finish later (see follow). */
  function show(state) {
    // The last `lines` lines: completed ones (grouped into sentences, see Transcript.group),
    // then the provisional text (if shown): at the end of the last line while it continues
    // that line's sentence, else a line of its own.
    const items = Transcript.close(Transcript.group(state.segments), state);
    // The last line, while its sentence is open and its utterance not over, is still being
    // written: its words are final but the line is not (it grows), so it is marked
    // provisional as a line (class "open": its own words keep the completed style; only the
    // tail looks provisional).
    const current = items[items.length - 1];
    const open = current && current.open ? { ...current } : null;
    if (open) current.growing = true;
    const partial = showProvisional && state.partial && state.partial.text ? state.partial : null;
    if (partial && Transcript.continues(current, partial, true)) current.tail = String(partial.text).trim();
    else if (partial) items.push({ ...partial, provisional: true });
    const last = items.slice(-lines);
    box.replaceChildren(
      ...last.map((item) => {
        const p = document.createElement("p");
        if (item.provisional) p.className = "provisional";
        else if (item.growing) p.className = "provisional open";
        if (item.speaker) {
          const who = document.createElement("span");
          who.className = "who";
          who.textContent = `${item.speaker}:`;
          p.append(who);
        }
        p.append(item.text);
        if (item.tail) {
          const tail = document.createElement("span");
          tail.className = "provisional";
          tail.textContent = item.tail;
          p.append(" ", tail);
        }
        return p;
      }),
    );
    waiting.hidden = true;
    return open;
  }

  const stream = query.get("stream");
  if (stream) {
    window.whisperLiveCaptions = { lines, stream: follow(stream) };
    return;
  }
  const channel = new BroadcastChannel(`${CHANNEL_PREFIX}:${query.get("channel") || "default"}`);
  channel.onmessage = ({ data }) => {
    if (data && data.type === "transcript") show(data);
  };
  channel.postMessage({ type: "hello" }); // a page already running answers with its text
  window.whisperLiveCaptions = { lines, channel };

  // A stream on the server, by id: each event shows the stream's last completed segments
  // and its partial; completed ones are kept (by start time) so `lines` can reach back (word
  // by word a line is several segments: 200 of them cover the 10 lines at most). The events
  // carry no clock and none come in silence: how far the stream has moved is what they
  // proved plus the time since (StreamClock), checked a few times a second while a line is
  // being written.
  function follow(id) {
    const base = query.get("server") || location.origin;
    const url = new URL(`/v1/streams/${encodeURIComponent(id)}/captions`, base);
    if (query.get("token")) url.searchParams.set("token", query.get("token"));
    const completed = new Map(); // start (ms) -> segment
    const state = { events: 0, ended: null, source: null };
    const clock = new StreamClock();
    let shown = null; // {segments, partial}: the last event's
    let writing = null; // the line being written, from the last show
    const refresh = () => {
      if (shown) writing = show({ ...shown, ended: state.ended !== null, ...clock.read() });
    };
    setInterval(() => {
      const now = { partial: shown && shown.partial, ended: state.ended !== null, ...clock.read() };
      if (writing && Transcript.utteranceEnded(writing, now)) refresh();
    }, 250);
    waiting.textContent = `Waiting for stream ${id}…`;
    function open() {
      const source = (state.source = new EventSource(url));
      source.onmessage = ({ data }) => {
        const message = JSON.parse(data);
        state.events += 1;
        if (message.type === "end") {
          state.ended = message.how;
          source.close();
          refresh(); // no more text: the line being written is finished
          return;
        }
        let partial = null;
        for (const segment of message.segments) {
          if (segment.completed) completed.set(Math.round(segment.start * 1000), segment);
          else partial = segment;
        }
        const ordered = [...completed.keys()].sort((a, b) => a - b);
        while (ordered.length > 200) completed.delete(ordered.shift()); // only the last lines matter
        clock.heard(message.segments);
        shown = { segments: ordered.map((k) => completed.get(k)), partial };
        refresh();
      };
      source.onerror = () => {
        // Refused (not running yet, or a bad token): EventSource gives up; try again later.
        if (source.readyState === EventSource.CLOSED && state.ended === null) setTimeout(open, 3000);
      };
    }
    open();
    return state;
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", captionsApp);
else captionsApp();
