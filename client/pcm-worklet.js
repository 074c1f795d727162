/*
 * The capture AudioWorklet: microphone blocks in, 16 kHz int16 frames out to the page.
 *
 * Why not a plain `audioWorklet.addModule("pcm-worklet.js")`: addModule always loads an ES
 * module, and module loads from file:// are refused by CORS, so the page would break when
 * opened from disk. Instead the worklet's code is assembled here from real functions
 * (Resampler, floatToInt16 and pcmWorkletMain, via toString) into a data: URL, which
 * addModule accepts from any page. The processing is therefore the same Resampler class the
 * tests exercise directly.
 *
 * Needs resampler.js loaded first.
 */
"use strict";

// Everything inside runs in the AudioWorkletGlobalScope, not in the page: it may only use
// what that scope has (sampleRate, AudioWorkletProcessor, registerProcessor) plus the
// Resampler and floatToInt16 sources prepended to it.
function pcmWorkletMain() {
  class PcmCaptureProcessor extends AudioWorkletProcessor {
    constructor(options) {
      super();
      const opts = (options && options.processorOptions) || {};
      this.targetRate = opts.targetRate || 16000;
      // `sampleRate` is the context's rate, a global of the worklet scope.
      this.resampler = new Resampler(sampleRate, this.targetRate);
      // Posting every 128-sample render quantum would mean ~125 messages and WebSocket
      // frames a second; ~100 ms frames keep the overhead low and the latency small.
      this.frame = new Int16Array(Math.max(1, Math.round((this.targetRate * (opts.frameMs || 100)) / 1000)));
      this.filled = 0;
      this.peak = 0;
      this.done = false;
      this.port.onmessage = (event) => {
        if (event.data && event.data.type === "flush") this.flush();
      };
    }

    process(inputs) {
      if (this.done) return false; // lets the browser drop the node
      const channels = inputs[0];
      // No channels: the source is not connected (yet) or has ended; nothing to do this quantum.
      if (channels && channels.length > 0) {
        let mono = channels[0];
        if (channels.length > 1) {
          // channelCount is explicit 1 on the node, so this is only a fallback.
          mono = new Float32Array(mono.length);
          for (const ch of channels) for (let i = 0; i < ch.length; i++) mono[i] += ch[i] / channels.length;
        }
        for (let i = 0; i < mono.length; i++) {
          const a = Math.abs(mono[i]);
          if (a > this.peak) this.peak = a;
        }
        this.push(floatToInt16(this.resampler.process(mono)));
      }
      return true;
    }

    push(samples) {
      let offset = 0;
      while (offset < samples.length) {
        const n = Math.min(samples.length - offset, this.frame.length - this.filled);
        this.frame.set(samples.subarray(offset, offset + n), this.filled);
        this.filled += n;
        offset += n;
        if (this.filled === this.frame.length) this.post();
      }
    }

    post() {
      if (this.filled === 0) return;
      // Transfer (not copy) the buffer to the page, then start a fresh one.
      const pcm = this.frame.slice(0, this.filled).buffer;
      this.port.postMessage({ type: "audio", pcm, peak: this.peak }, [pcm]);
      this.filled = 0;
      this.peak = 0;
    }

    flush() {
      // Stop pressed: the filter still holds the last few milliseconds; let them out, send
      // the partly filled frame, and tell the page everything has been posted.
      if (this.done) return;
      this.push(floatToInt16(this.resampler.flush()));
      this.post();
      this.done = true;
      this.port.postMessage({ type: "flushed" });
    }
  }

  registerProcessor("pcm-capture", PcmCaptureProcessor);
}

const PcmWorklet = {
  processorName: "pcm-capture",

  /** The worklet module's source text. */
  source() {
    return [
      '"use strict";',
      Resampler.toString(),
      floatToInt16.toString(),
      `(${pcmWorkletMain.toString()})();`,
    ].join("\n");
  },

  _loaded: new WeakSet(),

  /** Adds the module to a context once. */
  async load(context) {
    if (this._loaded.has(context)) return;
    // A data: URL rather than a Blob URL: a page from file:// has an opaque origin, and
    // Chromium refuses module scripts from its blob:null/... URLs, but data: works anywhere.
    const url = `data:text/javascript;charset=utf-8,${encodeURIComponent(this.source())}`;
    await context.audioWorklet.addModule(url);
    this._loaded.add(context);
  },

  /**
   * A capture node: connect a source to it and listen on node.port for
   * {type: "audio", pcm: ArrayBuffer of int16 LE, peak} and, after postMessage({type: "flush"}),
   * {type: "flushed"}.
   */
  async create(context, { targetRate = 16000, frameMs = 100 } = {}) {
    await this.load(context);
    return new AudioWorkletNode(context, this.processorName, {
      numberOfInputs: 1,
      numberOfOutputs: 0, // a sink: Chromium still pulls audio through nodes without outputs
      channelCount: 1,
      channelCountMode: "explicit", // the browser down-mixes stereo microphones to mono
      channelInterpretation: "speakers",
      processorOptions: { targetRate, frameMs },
    });
  },
};

globalThis.PcmWorklet = PcmWorklet;
