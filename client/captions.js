/*
 * The captions view (/captions): the last lines of a running transcript, large, for a
 * streaming tool's browser source or a window capture.
 *
 * URL parameters: lines (default 2), size (font size: 48 = 48px, or any CSS length),
 * position (bottom | middle | top), bg (transparent, a colour name or hex like 00ff00 for a
 * chroma key), color (the text), box (the backdrop behind the text; "none" for no box),
 * provisional (0 hides the words still being written), channel (see below).
 *
 * Where the text comes from: the Whisper Live page in the same browser (another tab or
 * window of the same origin) publishes its transcript on a BroadcastChannel, which this
 * page reads. It cannot yet show a stream running in another browser or on another machine
 * (e.g. OBS's own browser source): that needs the server to share a stream read-only by its
 * id with a viewer token, which does not exist yet.
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

  function show(state) {
    // The last `lines` lines: completed ones, then the provisional one (if shown) last.
    const items = state.segments.map((s) => ({ ...s, provisional: false }));
    if (showProvisional && state.partial) items.push({ ...state.partial, provisional: true });
    const last = items.slice(-lines);
    box.replaceChildren(
      ...last.map((item) => {
        const p = document.createElement("p");
        if (item.provisional) p.className = "provisional";
        if (item.speaker) {
          const who = document.createElement("span");
          who.className = "who";
          who.textContent = `${item.speaker}:`;
          p.append(who);
        }
        p.append(item.text);
        return p;
      }),
    );
    waiting.hidden = true;
  }

  const channel = new BroadcastChannel(`${CHANNEL_PREFIX}:${query.get("channel") || "default"}`);
  channel.onmessage = ({ data }) => {
    if (data && data.type === "transcript") show(data);
  };
  channel.postMessage({ type: "hello" }); // a page already running answers with its text
  window.whisperLiveCaptions = { lines, channel };
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", captionsApp);
else captionsApp();
