/**
 * Sampling: N continuations of one prompt, decoded together as a batch of N rows, with
 * temperature, top-k, top-p, a token budget, stop at end-of-text, and a seed.
 *
 * With the cache (the default) each new token costs one step over one position; see
 * `windowStart` for what happens when a sequence outgrows the model's context.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@miniglm/data';
import type { DecodeState, DecodeWeights, LanguageModel } from './model.ts';

export interface SampleOptions {
  maxNewTokens: number;
  /** 0 = greedy (argmax). */
  temperature: number;
  /** Keep only the k most likely tokens; 0 = all. */
  topK: number;
  /** Keep the smallest set of tokens whose probability reaches p; 1 = all. */
  topP: number;
  /** Number of independent samples. */
  samples: number;
  seed: number;
  /** Token that ends a sample (not included in the output). */
  eotId: number;
  /** Use the KV cache / recurrent state (default true). */
  useCache?: boolean;
  /**
   * Weights for the cached decoding where the backend offers it (native): float16 or int8 move
   * half or a quarter of the bytes per token; logits differ slightly. Default float32.
   */
  weights?: DecodeWeights;
}

export interface SampleResult {
  /** New tokens per sample, without the prompt and without the final eot. */
  tokens: number[][];
  /** Tokens generated per second over all samples. */
  tokensPerSec: number;
  seconds: number;
}

export function generate(model: LanguageModel, prompt: number[], o: SampleOptions): SampleResult {
  if (prompt.length === 0) prompt = [o.eotId]; // nothing to condition on: start a fresh document
  const started = performance.now();
  const rng = createRng(o.seed);
  const n = o.samples;
  const seqs = Array.from({ length: n }, () => [...prompt]);
  const out: number[][] = Array.from({ length: n }, () => []);
  const done = new Array<boolean>(n).fill(false);
  const useCache = o.useCache ?? true;
  let state: DecodeState | undefined;
  let stateStart = -1; // where the cached window begins in the sequence
  let fed = 0; // tokens of the sequence the state has seen
  let generated = 0;
  try {
    for (let i = 0; i < o.maxNewTokens; i++) {
      const length = seqs[0]!.length;
      const start = windowStart(length, model.contextLimit);
      let logits: tf.Tensor2D;
      if (useCache) {
        if (!state || start !== stateStart) {
          // First step, or the window moved on: rebuild the cache from the new window.
          if (state) model.restartDecoding(state);
          else state = model.startDecoding(n, { weights: o.weights });
          stateStart = fed = start;
        }
        const feed = seqs.map((s) => s.slice(fed));
        logits = tf.tidy(() => model.decode(tf.tensor2d(feed, [n, feed[0]!.length], 'int32'), state!));
        fed = length;
      } else {
        logits = lastLogits(
          model,
          seqs.map((s) => s.slice(start)),
        );
      }
      const rows = logits.arraySync();
      logits.dispose();
      const next = rows.map((row) => pick(row, o, () => rng.next()));
      for (let r = 0; r < n; r++) {
        seqs[r]!.push(next[r]!);
        if (done[r]) continue;
        if (next[r] === o.eotId) done[r] = true;
        else {
          out[r]!.push(next[r]!);
          generated++;
        }
      }
      if (done.every(Boolean)) break;
    }
  } finally {
    if (state) model.disposeDecoding(state);
  }
  const seconds = (performance.now() - started) / 1000;
  return { tokens: out, tokensPerSec: generated / Math.max(seconds, 1e-9), seconds };
}

/**
 * Where the context window of a sequence of `length` tokens starts. While the sequence fits
 * in the model's context it is all of it; past that, the window jumps ahead by half the
 * context at a time (and never sees fewer than half the context's tokens). Cropping to
 * exactly the last `limit` tokens at every step would force a full recomputation per token;
 * this way the KV cache is rebuilt once every limit/2 tokens. Both decoding paths use it, so
 * cached and uncached sampling give the same tokens.
 */
export function windowStart(length: number, limit: number): number {
  if (length <= limit) return 0;
  const half = Math.max(1, Math.floor(limit / 2));
  return Math.ceil((length - limit) / half) * half;
}

/** Full forward over each (equal-length) window; logits of the last position [N, V]. */
function lastLogits(model: LanguageModel, windows: number[][]): tf.Tensor2D {
  return tf.tidy(() => {
    const [n, t] = [windows.length, windows[0]!.length];
    const all = model.logits(tf.tensor2d(windows, [n, t], 'int32'), { training: false }); // (N·T, V)
    const v = all.shape[1];
    return tf.reshape(tf.slice(tf.reshape(all, [n, t, v]), [0, t - 1, 0], [n, 1, v]), [n, v]) as tf.Tensor2D;
  });
}

/**
 * Draws one token id from a row of logits under temperature, top-k and top-p.
 * Without truncation it walks the ids in order (O(V): a 50k-token BPE vocabulary is common);
 * with top-k or top-p the candidates are ranked by probability, highest first, ties by id.
 */
export function pick(
  logits: number[],
  o: Pick<SampleOptions, 'temperature' | 'topK' | 'topP'>,
  random: () => number,
): number {
  if (o.temperature <= 0) return argmax(logits);
  const byLogit = (a: number, b: number) => logits[b]! - logits[a]! || a - b;
  let ids: number[] | undefined; // undefined: all ids, in id order
  if (o.topK > 0 && o.topK < logits.length) ids = topK(logits, o.topK).sort(byLogit);
  else if (o.topP < 1) ids = logits.map((_, i) => i).sort(byLogit);
  const candidates = ids ?? logits.map((_, i) => i);
  const max = logits[argmax(logits)]!;
  let weights = candidates.map((i) => Math.exp((logits[i]! - max) / o.temperature));
  let total = weights.reduce((s, w) => s + w, 0);
  let chosen = candidates;
  if (o.topP < 1) {
    let cumulative = 0;
    let keep = 0;
    while (keep < weights.length && cumulative < o.topP * total) cumulative += weights[keep++]!;
    chosen = candidates.slice(0, Math.max(1, keep));
    weights = weights.slice(0, chosen.length);
    total = weights.reduce((s, w) => s + w, 0);
  }
  let u = random() * total;
  for (let i = 0; i < chosen.length; i++) {
    u -= weights[i]!;
    if (u <= 0) return chosen[i]!;
  }
  return chosen[chosen.length - 1]!;
}

/** The ids of the k largest logits (unordered), in O(V·log k) with a small min-heap. */
function topK(logits: number[], k: number): number[] {
  const heap: number[] = []; // ids; heap[0] is the smallest kept logit (ties: the larger id)
  const less = (a: number, b: number) => logits[a]! < logits[b]! || (logits[a] === logits[b] && a > b);
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let id = 0; id < logits.length; id++) {
    if (heap.length < k) {
      heap.push(id);
      for (let i = heap.length - 1; i > 0;) {
        const parent = (i - 1) >> 1;
        if (!less(heap[i]!, heap[parent]!)) break;
        [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
        i = parent;
      }
    } else if (less(heap[0]!, id)) {
      heap[0] = id;
      siftDown(0);
    }
  }
  return heap;
}

function argmax(xs: number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}
