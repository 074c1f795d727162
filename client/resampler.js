/*
 * Resampler: the audio maths of the browser client, with no Web Audio in it.
 *
 * The microphone runs at the hardware rate (usually 48 kHz or 44.1 kHz); the server wants
 * 16 kHz mono int16. Dropping samples or interpolating linearly would fold everything
 * between 8 kHz and 24 kHz back onto the speech band (aliasing), so this is a proper
 * band-limited resampler: a Kaiser-windowed sinc low-pass evaluated at the exact output
 * instants (polyphase, one precomputed filter per distinct fractional position).
 *
 * It is a classic script, not an ES module, on purpose:
 *   - the page loads it with <script src>, which also works when index.html is opened from
 *     disk (module scripts are blocked on file:// by CORS);
 *   - the AudioWorklet gets the same class through Function.prototype.toString (see
 *     pcm-worklet.js), so the code the tests check is the code the worklet runs.
 * Therefore the class and floatToInt16 must stay self-contained (only Math and typed arrays).
 */
"use strict";

class Resampler {
  /**
   * @param {number} inputRate  samples per second coming in (AudioContext.sampleRate)
   * @param {number} outputRate samples per second going out (16000 for the server)
   * @param {{zeroCrossings?: number, rolloff?: number, beta?: number}} [options]
   *   zeroCrossings: sinc lobes on each side (longer = sharper cut-off, more CPU);
   *   rolloff: cut-off as a fraction of the lower Nyquist frequency (room for the transition band);
   *   beta: Kaiser window shape (8 gives about 80 dB of stop-band rejection).
   */
  constructor(inputRate, outputRate = 16000, options = {}) {
    if (!(inputRate > 0) || !(outputRate > 0)) throw new RangeError("sample rates must be positive");
    const zeroCrossings = options.zeroCrossings || 24;
    const rolloff = options.rolloff || 0.9;
    const beta = options.beta || 8;
    this.inputRate = inputRate;
    this.outputRate = outputRate;

    // Output sample n sits at input position n * step, step = inputRate / outputRate = L / M.
    // Keeping that position as integer + numerator/M makes it exact forever (no float drift).
    const g = Resampler._gcd(Math.round(inputRate), Math.round(outputRate));
    this._L = Math.round(inputRate) / g;
    this._M = Math.round(outputRate) / g;
    // One filter per fractional position; odd rates could need thousands, so cap the table
    // and round the position to the nearest of 1024 phases (an error below 0.001 sample).
    this._phases = Math.min(this._M, 1024);

    // Low-pass below the lower of the two Nyquist frequencies; cutoff is in cycles per input sample.
    const cutoff = 0.5 * Math.min(1, outputRate / inputRate) * rolloff;
    this._half = Math.ceil(zeroCrossings / (2 * cutoff)); // taps on each side of the output instant
    const taps = 2 * this._half;
    this._taps = taps;
    this._filters = new Float32Array(this._phases * taps);
    const i0beta = Resampler._besselI0(beta);
    for (let p = 0; p < this._phases; p++) {
      const frac = p / this._phases; // output instant = integer input index + frac
      let sum = 0;
      for (let k = 0; k < taps; k++) {
        // tap k multiplies input sample (index - half + 1 + k); d is its distance from the instant
        const d = k - this._half + 1 - frac;
        const x = 2 * cutoff * d;
        const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
        const r = d / this._half;
        const w = Math.abs(r) >= 1 ? 0 : Resampler._besselI0(beta * Math.sqrt(1 - r * r)) / i0beta;
        const h = sinc * w;
        this._filters[p * taps + k] = h;
        sum += h;
      }
      // Unit gain at DC for every phase, so a constant input stays constant (no ripple).
      for (let k = 0; k < taps; k++) this._filters[p * taps + k] /= sum;
    }

    // History of input samples still needed. The stream is taken to be silent before its
    // first sample, so the first outputs need no special case.
    this._buffer = new Float32Array(Math.max(4096, taps * 4));
    this._length = this._half; // zeros standing for the time before the stream
    this._index = this._half; // buffer index of the input sample at or before the next output
    this._frac = 0; // numerator over M of the fractional part of the next output position
  }

  /** Latency added by the filter, in input samples (half the window). */
  get delay() {
    return this._half;
  }

  /**
   * Feed input samples (any block size); returns the output samples now complete.
   * @param {Float32Array} input
   * @returns {Float32Array}
   */
  process(input) {
    this._append(input);
    return this._drain();
  }

  /**
   * End of stream: pads with silence so the last real samples come out too, then resets.
   * @returns {Float32Array}
   */
  flush() {
    this._append(new Float32Array(this._half));
    const out = this._drain();
    this._length = this._half;
    this._index = this._half;
    this._frac = 0;
    this._buffer.fill(0);
    return out;
  }

  _append(input) {
    if (this._length + input.length > this._buffer.length) {
      // Drop what no future output can reach before deciding whether to grow.
      const keep = this._index - this._half + 1;
      this._buffer.copyWithin(0, keep, this._length);
      this._length -= keep;
      this._index -= keep;
      if (this._length + input.length > this._buffer.length) {
        const bigger = new Float32Array(2 * (this._length + input.length));
        bigger.set(this._buffer.subarray(0, this._length));
        this._buffer = bigger;
      }
    }
    this._buffer.set(input, this._length);
    this._length += input.length;
  }

  _drain() {
    const half = this._half;
    const taps = this._taps;
    const buf = this._buffer;
    const filters = this._filters;
    const L = this._L;
    const M = this._M;
    const phases = this._phases;
    // Outputs possible now: each needs input up to index + half.
    let count = 0;
    {
      let index = this._index;
      let frac = this._frac;
      while (index + half < this._length) {
        count++;
        frac += L;
        index += Math.floor(frac / M);
        frac %= M;
      }
    }
    const out = new Float32Array(count);
    for (let n = 0; n < count; n++) {
      // With a capped table, round the position down to the nearest phase (never up: the
      // sample after the window may not have arrived yet).
      const phase = phases === M ? this._frac : Math.floor((this._frac * phases) / M);
      const base = this._index - half + 1;
      const f = phase * taps;
      let acc = 0;
      for (let k = 0; k < taps; k++) acc += buf[base + k] * filters[f + k];
      out[n] = acc;
      this._frac += L;
      this._index += Math.floor(this._frac / M);
      this._frac %= M;
    }
    return out;
  }

  static _gcd(a, b) {
    while (b) [a, b] = [b, a % b];
    return a;
  }

  // Modified Bessel function of the first kind, order 0 (for the Kaiser window); the series
  // converges fast for the small arguments used here.
  static _besselI0(x) {
    let sum = 1;
    let term = 1;
    const q = (x * x) / 4;
    for (let k = 1; k < 50; k++) {
      term *= q / (k * k);
      sum += term;
      if (term < sum * 1e-12) break;
    }
    return sum;
  }
}

/**
 * Float samples (nominally -1..1) to int16 for the wire. Out-of-range input is clipped to
 * full scale instead of wrapping around (a wrapped sample is a loud click), and NaN becomes 0.
 * @param {Float32Array} input
 * @returns {Int16Array}
 */
function floatToInt16(input) {
  const out = new Int16Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const s = input[i];
    // NaN fails every comparison and lands on 0; rounding is symmetric around zero (Math.round
    // alone would round -0.5 up) so a signal and its negation convert alike.
    out[i] = s >= 1 ? 32767 : s <= -1 ? -32767 : s >= 0 ? Math.round(s * 32767) : s < 0 ? -Math.round(-s * 32767) : 0;
  }
  return out;
}

// Expose to the page (window) and to Node-style test harnesses alike.
if (typeof globalThis !== "undefined") {
  globalThis.Resampler = Resampler;
  globalThis.floatToInt16 = floatToInt16;
}
