/*
 * Transcript: merges the server's segment messages, groups them into lines, and writes
 * SRT / WebVTT / plain text / JSON.
 *
 * The server re-sends the last N completed segments on every update, followed by at most
 * one partial (completed: false) that may still change. Completed segments are therefore
 * de-duplicated by their start time (and text), and the partial is simply replaced.
 *
 * Lines: the page streams word by word (commit_after 0), and over WhisperLive's protocol
 * every commit is a completed segment of its own ("The two", "stray kittens gradually",
 * "make themselves at home."). What a person reads (the page's rows, the captions view, the
 * downloads) is lines: consecutive segments join one line until one ends a sentence, the
 * speaker changes, the next starts after a pause, or the line would outgrow a caption (see
 * Transcript.group). The raw segments stay as they are for merging.
 *
 * The last line is still being written ("open") while its sentence is; it is also finished
 * when its utterance is over, though the model left it without a full stop (tiny.en often
 * does on a short phrase): see Transcript.close, the one rule the rows, the captions view
 * and the downloads share.
 *
 * With diarization, completed segments carry the server's speaker id ("SPEAKER_00"); the
 * page shows a name for each ("Speaker 1" until the user renames it), and every download
 * carries the names.
 */
"use strict";

/** A line's most characters: a caption of two subtitle lines of 42 characters (the usual
 * broadcast limit, as in the BBC's and Netflix's subtitle guidelines), so a line of the
 * transcript fits one caption and a long sentence is cut into caption-sized lines. */
const LINE_CHARS = 84;
/** A pause (seconds between a line's end and the next segment's start) that ends a line: a
 * sentence the model left without a full stop still breaks where the speaker paused, and a
 * line the stream has moved this far past with nothing pending (the server quiet meanwhile)
 * is finished (Transcript.close).
 * A new session (Start again) begins at least this long after the old text (see beginSession). */
const LINE_PAUSE = 1.0;
/** A sentence's end: . ? ! or … (or their CJK full-width forms), possibly followed by
 * closing quotes or brackets. */
const SENTENCE_END = /[.?!\u2026\u3002\uff01\uff1f]["'\u201d\u2019\u00bb)\]\u300d\u300f]*$/;
/** Scripts written without spaces between words (Thai, Japanese kana, CJK ideographs and
 * punctuation, full-width forms): two pieces of a line that meet in them join without one. */
const UNSPACED = /[\u0e00-\u0e7f\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]/;

/** Seconds without a message from the server after which it has stopped hearing speech. While
 * an utterance is open the server sends an update about every second of speech (a partial
 * per second of new audio: SessionOptions.partial_interval), and some of them complete words
 * with nothing left pending (it hides words it is unsure of, and commits words a second or
 * so after they were spoken); after an utterance's final it sends nothing until the next
 * one. Measured (tiny.en, 50 s of conversation, word by word, a loaded 2-core machine): 0.2
 * to 1.0 s between updates inside utterances, 0.9 to 2.7 s after a final. Twice the cadence:
 * a late partial does not finish a line, an utterance's end does within two seconds. */
const SERVER_QUIET = 2.0;

/**
 * What the page knows of a live stream's progress from the server's messages, for
 * Transcript.close. `position`: how far the stream has surely moved (seconds, the
 * transcript's time): when a message arrives, the stream is at least at the furthest end it
 * shows, and a live stream moves on at least as fast as the clock, so the furthest
 * (end - arrival) plus the time now; at most `cap`, the audio the page has sent (its own
 * audio clock) when it knows it (after Stop no audio follows). `quiet`: seconds since the
 * last message. The server sends nothing in silence (it decodes speech only), which is why
 * the clock, not a message, has to tell that a line is over.
 */
class StreamClock {
  constructor() {
    this.lead = -Infinity;
    this.cap = Infinity;
    this.last = null; // performance.now() of the last message
  }

  /** A server message showing `segments` (times in the transcript's time) arrived `now`. */
  heard(segments, now = performance.now()) {
    this.last = now;
    for (const s of segments) {
      const end = Number(s.end);
      if (Number.isFinite(end)) this.lead = Math.max(this.lead, end - now / 1000);
    }
  }

  /** {position, quiet} in seconds; null each before anything was heard. */
  read(now = performance.now()) {
    if (this.last === null) return { position: null, quiet: null };
    return { position: Math.min(this.cap, now / 1000 + this.lead), quiet: (now - this.last) / 1000 };
  }
}

class Transcript {
  constructor() {
    this.clear();
  }

  /** Forget everything. */
  clear() {
    /** @type {{start: number, end: number, text: string, speaker?: string}[]} completed, in time order */
    this.segments = [];
    /** @type {Map<string, string>} speaker id -> the name shown, in order of first appearance */
    this.speakers = new Map();
    /** @type {{start: number, end: number, text: string} | null} the provisional tail */
    this.partial = null;
    this.floor = 0; // completed segments starting before this are ignored (see discard)
    this.offset = 0; // added to the server's times (see beginSession)
    this.clock = new StreamClock(); // how far the stream has moved (see close)
    this.ended = false; // the session is over: no more text will come (see close)
  }

  /**
   * A new connection: the server's times restart at 0. Pressing Start again should not
   * throw away what is on the page, so the new session continues after the old text
   * (one second later) and the downloads stay in time order.
   */
  beginSession() {
    const last = this.segments[this.segments.length - 1];
    this.offset = last ? Math.ceil(last.end) + 1 : 0;
    this.partial = null;
    this.clock = new StreamClock();
    this.ended = false;
  }

  /**
   * Empty the page in the middle of a session. The server keeps re-sending its last N
   * completed segments, so remember where the cleared text ended and ignore those repeats.
   */
  discard() {
    const last = this.segments[this.segments.length - 1];
    if (last) this.floor = Math.max(this.floor, last.end);
    this.segments = [];
  }

  /**
   * Takes one `segments` message; returns true if anything visible changed.
   * Times may be numbers (this server) or strings like "12.340" (WhisperLive).
   */
  merge(messageSegments) {
    let changed = false;
    let partial = null;
    const heard = [];
    for (const raw of messageSegments || []) {
      const seg = {
        start: (Number.parseFloat(raw.start) || 0) + this.offset,
        end: (Number.parseFloat(raw.end) || 0) + this.offset,
        text: String(raw.text || "").trim(),
      };
      heard.push(seg);
      if (raw.speaker != null && raw.speaker !== "") seg.speaker = String(raw.speaker);
      if (raw.completed === false) {
        partial = seg; // only the last one counts; the server sends at most one
        continue;
      }
      if (!seg.text || seg.start < this.floor - 0.01) continue;
      changed = this._addCompleted(seg) || changed;
    }
    this.clock.heard(heard);
    const before = this.partial;
    // A message without a partial means there is no provisional text any more.
    this.partial = partial && partial.text ? partial : null;
    if (JSON.stringify(before) !== JSON.stringify(this.partial)) changed = true;
    return changed;
  }

  /** Completed segments from a whole file (the REST face): appended after what is there. */
  addCompleted(segments) {
    let changed = false;
    for (const raw of segments) changed = this.merge([{ ...raw, completed: true }]) || changed;
    return changed;
  }

  _addCompleted(seg) {
    if (seg.speaker && !this.speakers.has(seg.speaker)) {
      this.speakers.set(seg.speaker, `Speaker ${this.speakers.size + 1}`);
    }
    const key = seg.start.toFixed(2);
    const same = this.segments.find((s) => s.start.toFixed(2) === key);
    if (same) {
      if (same.text === seg.text && same.end === seg.end && same.speaker === seg.speaker) return false;
      same.text = seg.text; // a corrected repeat: keep the newer wording
      same.end = seg.end;
      if (seg.speaker) same.speaker = seg.speaker;
      return true;
    }
    // A repeat with a shifted start but the same words (seen from some servers): skip it. It
    // overlaps the segment it repeats; word by word, a short piece ("and", "the") that merely
    // says the same as an earlier one elsewhere is new text and is kept.
    const last = this.segments[this.segments.length - 1];
    const overlaps = (s) => s.start < seg.end && seg.start < s.end;
    if (last && seg.start < last.end && this.segments.some((s) => s.text === seg.text && overlaps(s))) return false;
    this.segments.push(seg);
    if (last && seg.start < last.start) this.segments.sort((a, b) => a.start - b.start);
    return true;
  }

  get text() {
    return this.segments.map((s) => s.text).join(" ");
  }

  /** The completed segments as lines (see group), the last one closed once its utterance is
   * over (see close): what the page, the captions view and the downloads show. Each line:
   * {start, end, text, speaker?, open}. Grouping costs a pass over every segment: a render
   * computes them once and passes them on. */
  get lines() {
    return Transcript.close(Transcript.group(this.segments), this.state);
  }

  /** What close needs to know: the partial, how far the stream has moved and how long the
   * server has been quiet (StreamClock), whether the session ended. */
  get state() {
    return { partial: this.partial, ended: this.ended, ...this.clock.read() };
  }

  /** Whether the partial continues the last of `lines` (this.lines): the page then shows it on
   * that line's row, so a sentence being spoken is not split across two rows. */
  partialContinues(lines = this.lines) {
    if (!this.partial) return false;
    return Transcript.continues(lines[lines.length - 1], this.partial, true);
  }

  /**
   * Completed segments (in time order) grouped into lines: a segment joins the line before
   * it unless that line ended a sentence, the speaker changed, the segment starts LINE_PAUSE
   * or more after the line's end, or the line would pass LINE_CHARS. A segment longer than
   * that stays one line (segments are never cut). Grouping lines again gives the same lines,
   * so the captions view may group what the page already grouped.
   */
  static group(segments) {
    const lines = [];
    for (const raw of segments) {
      const seg = { ...raw, text: String(raw.text || "").trim() };
      if (!seg.text) continue;
      const last = lines[lines.length - 1];
      if (Transcript.continues(last, seg)) {
        const tight = UNSPACED.test(last.text.slice(-1)) && UNSPACED.test(seg.text[0]);
        last.text = tight ? last.text + seg.text : `${last.text} ${seg.text}`;
        last.end = Math.max(last.end, seg.end);
        last.open = !SENTENCE_END.test(seg.text);
      } else {
        lines.push({
          start: seg.start,
          end: seg.end,
          text: seg.text,
          ...(seg.speaker ? { speaker: seg.speaker } : {}),
          open: !SENTENCE_END.test(seg.text),
        });
      }
    }
    return lines;
  }

  /**
   * Whether the utterance `line` (the last line, open: its sentence has not ended) belongs to
   * is over, so that the line can grow no more and is finished: the stream has ended (no more
   * text will come); or no partial is pending, the stream has moved LINE_PAUSE or more past
   * the line's end (a piece starting there would begin a line of its own anyway, see
   * continues) and the server has been quiet for SERVER_QUIET; or the partial pending starts
   * LINE_PAUSE or more after the line's end (the speaker went on after a pause: those words
   * stand apart, and so will they once completed). `state`: {partial, ended, position, quiet}
   * (seconds, see StreamClock; null: not known).
   *
   * The quiet is needed because mid-utterance the server may complete words with nothing
   * left pending, a second or so after they were spoken: by position alone, lines would close
   * between two words (see SERVER_QUIET). Closing never changes how segments group: a piece
   * that does continue the line (it started within LINE_PAUSE) opens it again.
   */
  static utteranceEnded(line, state = {}) {
    if (state.ended) return true;
    const partial = state.partial;
    if (partial && String(partial.text || "").trim()) return Number(partial.start) - line.end >= LINE_PAUSE;
    if (state.position == null || state.quiet == null) return false;
    return state.position - line.end >= LINE_PAUSE && state.quiet >= SERVER_QUIET;
  }

  /** `lines` (from group), the last one closed (open: false) if its utterance is over (see
   * utteranceEnded): the one rule for the rows, the captions view (both modes) and the
   * downloads. Returns `lines`. */
  static close(lines, state = {}) {
    const last = lines[lines.length - 1];
    if (last && last.open && Transcript.utteranceEnded(last, state)) last.open = false;
    return lines;
  }

  /** Whether `seg` (a completed segment, or with `partial` the partial) continues `line`
   * (see group). A partial carries no speaker (the server labels completed segments only), so
   * it never continues a speaker's line: its words may be the next speaker's. */
  static continues(line, seg, partial = false) {
    const text = String(seg.text || "").trim();
    if (!line || !line.open || !text) return false;
    if ((line.speaker || "") !== ((!partial && seg.speaker) || "")) return false;
    if (Number(seg.start) - line.end >= LINE_PAUSE) return false;
    return line.text.length + 1 + text.length <= LINE_CHARS;
  }

  get isEmpty() {
    return this.segments.length === 0;
  }

  /** The name shown for a speaker id (the id itself if it was never seen). */
  speakerName(id) {
    return this.speakers.get(id) || id;
  }

  /** Rename a speaker everywhere (the page and every download); empty restores the default. */
  renameSpeaker(id, name) {
    if (!this.speakers.has(id)) return false;
    const index = [...this.speakers.keys()].indexOf(id);
    this.speakers.set(id, String(name || "").trim() || `Speaker ${index + 1}`);
    return true;
  }

  /** "Name: text" with diarization, the text alone without. */
  _labelled(s) {
    return s.speaker ? `${this.speakerName(s.speaker)}: ${s.text}` : s.text;
  }

  // The downloads are made of lines: a cue per sentence (or caption-sized piece), not per
  // word-by-word commit.

  /** SubRip: numbered cues, "HH:MM:SS,mmm --> HH:MM:SS,mmm". */
  toSRT() {
    return this.lines
      .map(
        (s, i) =>
          `${i + 1}\n${Transcript.clock(s.start, ",")} --> ${Transcript.clock(s.end, ",")}\n${this._labelled(s)}\n`,
      )
      .join("\n");
  }

  /** WebVTT: the header is mandatory (players reject files without it). Speakers are voice
   * spans (<v Name>), which players show as the speaker and hide when they cannot. */
  toVTT() {
    const escape = (text) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    const cues = this.lines.map((s) => {
      const voice = s.speaker ? `<v ${escape(this.speakerName(s.speaker))}>` : "";
      return `${Transcript.clock(s.start, ".")} --> ${Transcript.clock(s.end, ".")}\n${voice}${escape(s.text)}\n`;
    });
    return ["WEBVTT\n", ...cues].join("\n");
  }

  toText() {
    return this.lines.map((s) => this._labelled(s)).join("\n") + (this.segments.length ? "\n" : "");
  }

  /** JSON: the lines (as "segments") with their speaker's id and name, and the speakers' names. */
  toJSON() {
    return {
      text: this.text,
      segments: this.lines.map((s) => ({
        start: s.start,
        end: s.end,
        text: s.text,
        ...(s.speaker ? { speaker: this.speakerName(s.speaker), speaker_id: s.speaker } : {}),
      })),
      speakers: Object.fromEntries(this.speakers),
    };
  }

  /** 3723.5 -> "01:02:03,500" (SRT) or "01:02:03.500" (VTT). */
  static clock(seconds, separator) {
    const ms = Math.max(0, Math.round(seconds * 1000));
    const h = Math.floor(ms / 3600000);
    const m = Math.floor((ms % 3600000) / 60000);
    const s = Math.floor((ms % 60000) / 1000);
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    return `${pad(h)}:${pad(m)}:${pad(s)}${separator}${pad(ms % 1000, 3)}`;
  }

  /** Short time for the page: "1:05.2", or "1:02:03" past an hour. */
  static short(seconds) {
    // Round once, in tenths, so 59.96 s reads "1:00.0" and never "0:60.0".
    const tenths = Math.round(Math.max(0, seconds) * 10);
    const h = Math.floor(tenths / 36000);
    const m = Math.floor((tenths % 36000) / 600);
    const s = (tenths % 600) / 10;
    if (h > 0) return `${h}:${String(m).padStart(2, "0")}:${String(Math.floor(s)).padStart(2, "0")}`;
    return `${m}:${s.toFixed(1).padStart(4, "0")}`;
  }
}

globalThis.Transcript = Transcript;
globalThis.StreamClock = StreamClock;
