/**
 * Shared pieces of the model tests: tiny configs, a seeded in-test batch sampler over a
 * repeating token cycle, a temp folder per file, a cpu reference runner and plain-JS math.
 */
import * as tf from '@tensorflow/tfjs-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { createRng, type Rng } from '../../data/src/rng.ts';
import type { Batch, BatchSampler, SamplerState, TokenizerSpec } from '../../data/src/types.ts';
import { initBackend, type GPTConfig, type LSTMConfig, type TrainOptions } from '../src/index.ts';

export const TOKENIZER: TokenizerSpec = { name: 'char' };

export function gptConfig(over: Partial<GPTConfig> = {}): GPTConfig {
  return { kind: 'gpt', vocabSize: 32, blockSize: 16, layers: 2, heads: 2, dim: 32, dropout: 0, bias: false, ...over };
}

export function lstmConfig(over: Partial<LSTMConfig> = {}): LSTMConfig {
  return { kind: 'lstm', vocabSize: 32, blockSize: 16, layers: 2, dim: 32, dropout: 0, ...over };
}

/** A small model's stage settings, with no warmup, evaluation or checkpoints unless a test asks. */
export function trainOptions(over: Partial<TrainOptions> & { iterations: number }): TrainOptions {
  return {
    gradAccum: 1,
    lr: 1e-3,
    minLr: 1e-4,
    warmup: 0,
    weightDecay: 0.1,
    beta1: 0.9,
    beta2: 0.99,
    gradClip: 1,
    evalEvery: 1_000_000,
    checkpointEvery: 1_000_000,
    ...over,
  };
}

/** Initialises the production (wasm) backend once per test file. */
export function useWasm(): void {
  beforeAll(async () => {
    expect(await initBackend('wasm')).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });
}

/** A fresh folder under the OS temp dir for this file's tests, removed afterwards. */
export function useTempDir(prefix: string): () => string {
  let dir = '';
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `miniglm-model-${prefix}-`));
  });
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => dir;
}

/**
 * A corpus that repeats a fixed cycle of `period` distinct token ids (a shuffled subset of
 * the vocabulary): every token determines the next one, so a model can drive its loss to ~0.
 */
export function cycleCorpus(vocabSize: number, period: number, length: number, seed = 7): Int32Array {
  const rng = createRng(seed);
  const ids = Array.from({ length: vocabSize }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const cycle = ids.slice(0, period);
  return Int32Array.from({ length }, (_, i) => cycle[i % period]!);
}

/** Random windows of a token stream, seeded; its whole state is the PRNG's four words. */
export class WindowSampler implements BatchSampler {
  private readonly rng: Rng;
  private drawn = 0;
  constructor(
    private readonly corpus: Int32Array,
    readonly batchSize: number,
    readonly blockSize: number,
    seed: number,
  ) {
    if (corpus.length < blockSize + 1) throw new Error('corpus shorter than a window');
    this.rng = createRng(seed);
  }

  next(): Batch {
    const { batchSize: b, blockSize: t } = this;
    const x = new Int32Array(b * t);
    const y = new Int32Array(b * t);
    for (let r = 0; r < b; r++) {
      const start = this.rng.int(this.corpus.length - t);
      x.set(this.corpus.subarray(start, start + t), r * t);
      y.set(this.corpus.subarray(start + 1, start + t + 1), r * t);
    }
    this.drawn++;
    return { batchSize: b, blockSize: t, x, y };
  }

  getState(): SamplerState {
    return { kind: 'pretrain', rng: this.rng.getState(), drawn: this.drawn };
  }

  setState(state: SamplerState): void {
    this.rng.setState(state.rng);
    this.drawn = state.drawn;
  }
}

/** Runs `fn` on the cpu backend (the reference) and switches back to wasm afterwards. */
export async function onCpu<T>(fn: () => T): Promise<T> {
  // Not tf.env IS_TEST (it would switch on tfjs's kernel leak checks for the whole file): the
  // cpu backend's one-time tfjs-node advertisement is filtered out of console.warn instead.
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!String(args[0]).includes('tfjs-node')) warn(...args);
  };
  expect(await tf.setBackend('cpu')).toBe(true);
  try {
    return fn();
  } finally {
    console.warn = warn;
    expect(await tf.setBackend('wasm')).toBe(true);
  }
}

/** Uniform floats in [-scale, scale), seeded. */
export function randomFloats(n: number, seed: number, scale = 1): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * scale);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** log-sum-exp of a row, in doubles. */
export function logSumExp(row: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]!);
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i]! - max);
  return max + Math.log(s);
}

/** sum(CE·w)/sum(w) over rows of flat logits [n, vocab], in doubles. */
export function referenceCrossEntropy(
  logits: ArrayLike<number>,
  vocab: number,
  targets: ArrayLike<number>,
  weights?: ArrayLike<number>,
): number {
  let sum = 0;
  let weight = 0;
  for (let r = 0; r < targets.length; r++) {
    const w = weights ? weights[r]! : 1;
    if (w === 0) continue;
    const row = Array.prototype.slice.call(logits, r * vocab, (r + 1) * vocab) as number[];
    sum += w * (logSumExp(row) - row[targets[r]!]!);
    weight += w;
  }
  return sum / weight;
}

export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

/** Every parameter's values, by name. */
export function weightsOf(params: Map<string, tf.Variable>): Map<string, Float32Array> {
  return new Map([...params].map(([k, v]) => [k, v.dataSync() as Float32Array]));
}
