/**
 * Sampling (src/generate.ts): seeds, KV-cache / recurrent-state decoding against full
 * forwards, greedy decoding, top-k, top-p, temperature and end-of-text.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModel, generate, pick, type LanguageModel, type SampleOptions } from '../src/index.ts';
import { windowStart } from '../src/generate.ts';
import { argmax, gptConfig, lstmConfig, maxAbsDiff, useWasm } from './helpers.ts';

useWasm();

const VOCAB = 64;
const BLOCK = 16;
let gpt: LanguageModel;
let lstm: LanguageModel;

beforeAll(() => {
  gpt = createModel(gptConfig({ vocabSize: VOCAB, blockSize: BLOCK, layers: 2, heads: 2, dim: 32 }), 3);
  lstm = createModel(lstmConfig({ vocabSize: VOCAB, blockSize: BLOCK, layers: 2, dim: 32 }), 4);
});

afterAll(() => {
  gpt.dispose();
  lstm.dispose();
});

const base: SampleOptions = {
  maxNewTokens: 20,
  temperature: 1,
  topK: 0,
  topP: 1,
  samples: 3,
  seed: 1,
  eotId: VOCAB - 1,
};
const prompt = [5, 9, 2, 33, 17];

/** Logits of the last position of one sequence, by a full forward. */
function lastRow(model: LanguageModel, seq: number[]): Float32Array {
  return tf.tidy(() => {
    const all = model.logits(tf.tensor2d([seq], [1, seq.length], 'int32'), { training: false });
    return all.slice([seq.length - 1, 0], [1, -1]).dataSync() as Float32Array;
  });
}

describe('generate: seeds', () => {
  for (const [name, model] of [
    ['gpt', () => gpt],
    ['lstm', () => lstm],
  ] as const) {
    it(`${name}: the same seed gives the same tokens, another seed other tokens`, () => {
      const a = generate(model(), prompt, base);
      const b = generate(model(), prompt, base);
      expect(a.tokens).toEqual(b.tokens);
      expect(a.tokens).toHaveLength(3);
      // Independent samples within one call differ too.
      expect(new Set(a.tokens.map((t) => t.join())).size).toBe(3);
      // With temperature 1 over 64 near-uniform tokens, two seeds agreeing on 3×20 tokens is ~impossible.
      const c = generate(model(), prompt, { ...base, seed: 2 });
      expect(c.tokens).not.toEqual(a.tokens);
      expect(a.tokensPerSec).toBeGreaterThan(0);
    });
  }
});

describe('generate: cached decoding equals uncached decoding', () => {
  it('gpt: decode() logits equal the full forward, position by position', () => {
    const seq = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3];
    const state = gpt.startDecoding(1);
    try {
      // A multi-token first feed, then one token at a time, up to the block size.
      const first = tf.tidy(
        () => gpt.decode(tf.tensor2d([seq.slice(0, 4)], [1, 4], 'int32'), state).dataSync() as Float32Array,
      );
      expect(maxAbsDiff(first, lastRow(gpt, seq.slice(0, 4)))).toBeLessThan(1e-4);
      for (let t = 4; t < seq.length; t++) {
        const cached = tf.tidy(
          () => gpt.decode(tf.tensor2d([[seq[t]!]], [1, 1], 'int32'), state).dataSync() as Float32Array,
        );
        expect(maxAbsDiff(cached, lastRow(gpt, seq.slice(0, t + 1)))).toBeLessThan(1e-4);
      }
    } finally {
      gpt.disposeDecoding(state);
    }
  });

  it('lstm: decode() logits equal the full forward, position by position', () => {
    const seq = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];
    const state = lstm.startDecoding(1);
    try {
      const first = tf.tidy(
        () => lstm.decode(tf.tensor2d([seq.slice(0, 3)], [1, 3], 'int32'), state).dataSync() as Float32Array,
      );
      expect(maxAbsDiff(first, lastRow(lstm, seq.slice(0, 3)))).toBeLessThan(1e-4);
      for (let t = 3; t < seq.length; t++) {
        const cached = tf.tidy(
          () => lstm.decode(tf.tensor2d([[seq[t]!]], [1, 1], 'int32'), state).dataSync() as Float32Array,
        );
        expect(maxAbsDiff(cached, lastRow(lstm, seq.slice(0, t + 1)))).toBeLessThan(1e-4);
      }
    } finally {
      lstm.disposeDecoding(state);
    }
  });

  it('gpt: sampled tokens are equal with and without the KV cache, within the block size', () => {
    const o = { ...base, maxNewTokens: BLOCK - prompt.length };
    expect(generate(gpt, prompt, { ...o, useCache: true }).tokens).toEqual(
      generate(gpt, prompt, { ...o, useCache: false }).tokens,
    );
  });

  it('gpt: sampled tokens are equal with and without the KV cache when prompt + new tokens exceed the block size', () => {
    const o = { ...base, maxNewTokens: 3 * BLOCK, eotId: -1 }; // no stop: run the whole budget
    const cached = generate(gpt, prompt, { ...o, useCache: true });
    const uncached = generate(gpt, prompt, { ...o, useCache: false });
    expect(cached.tokens.map((t) => t.length)).toEqual([3 * BLOCK, 3 * BLOCK, 3 * BLOCK]);
    expect(cached.tokens).toEqual(uncached.tokens);
  });

  it('gpt: a prompt longer than the block size is cropped, and both paths agree', () => {
    const long = Array.from({ length: BLOCK + 7 }, (_, i) => (i * 7) % (VOCAB - 1));
    const o = { ...base, maxNewTokens: 12, eotId: -1 };
    const cached = generate(gpt, long, { ...o, useCache: true });
    expect(cached.tokens).toEqual(generate(gpt, long, { ...o, useCache: false }).tokens);
    expect(cached.tokens[0]).toHaveLength(12);
  });

  it('lstm: sampled tokens are equal with and without the recurrent state (longer than blockSize too)', () => {
    const o = { ...base, maxNewTokens: BLOCK + 8, eotId: -1 };
    expect(generate(lstm, prompt, { ...o, useCache: true }).tokens).toEqual(
      generate(lstm, prompt, { ...o, useCache: false }).tokens,
    );
  });

  it('windowStart keeps the window within the context and moves it by half a context', () => {
    for (let length = 1; length <= 60; length++) {
      const start = windowStart(length, BLOCK);
      expect(length - start).toBeLessThanOrEqual(BLOCK);
      expect(length - start).toBeGreaterThanOrEqual(length <= BLOCK ? length : BLOCK / 2);
      expect(start % (BLOCK / 2)).toBe(0);
    }
    expect(windowStart(1000, Infinity)).toBe(0);
  });
});

describe('generate: greedy, top-k and end-of-text', () => {
  /** Greedy reference: argmax of a full forward's last row, step by step, stopping at eot. */
  function greedyReference(model: LanguageModel, start: number[], steps: number, eotId: number): number[] {
    const seq = [...start];
    const out: number[] = [];
    for (let i = 0; i < steps; i++) {
      const next = argmax(lastRow(model, seq));
      if (next === eotId) break;
      seq.push(next);
      out.push(next);
    }
    return out;
  }

  for (const [name, model] of [
    ['gpt', () => gpt],
    ['lstm', () => lstm],
  ] as const) {
    it(`${name}: temperature 0 is greedy (argmax of the uncached logits, step by step)`, () => {
      const steps = BLOCK - prompt.length;
      const expected = greedyReference(model(), prompt, steps, base.eotId);
      expect(expected.length).toBeGreaterThan(0);
      for (const useCache of [true, false]) {
        const { tokens } = generate(model(), prompt, {
          ...base,
          temperature: 0,
          maxNewTokens: steps,
          samples: 2,
          seed: 9,
          useCache,
        });
        expect(tokens).toEqual([expected, expected]);
      }
    });

    it(`${name}: top-k = 1 equals greedy whatever the seed`, () => {
      const greedy = generate(model(), prompt, { ...base, temperature: 0, samples: 1 }).tokens[0];
      for (const seed of [1, 2, 3]) {
        const { tokens } = generate(model(), prompt, { ...base, topK: 1, temperature: 1.5, samples: 2, seed });
        expect(tokens).toEqual([greedy, greedy]);
      }
    });
  }

  it('stops a sample at eotId and leaves the eot out', () => {
    const first = argmax(lastRow(gpt, prompt));
    const { tokens } = generate(gpt, prompt, { ...base, temperature: 0, samples: 1, eotId: first });
    expect(tokens).toEqual([[]]);
    // Stopping at the second greedy token keeps exactly the first.
    const second = argmax(lastRow(gpt, [...prompt, first]));
    if (second !== first)
      expect(generate(gpt, prompt, { ...base, temperature: 0, samples: 1, eotId: second }).tokens).toEqual([[first]]);
  });

  it('an empty prompt starts from eot', () => {
    const o = { ...base, eotId: 7 };
    expect(generate(gpt, [], o).tokens).toEqual(generate(gpt, [7], o).tokens);
  });
});

describe('pick', () => {
  /** Frequencies of each id when random() sweeps [0, 1) evenly. */
  function sweep(logits: number[], o: Pick<SampleOptions, 'temperature' | 'topK' | 'topP'>, m = 10_000): number[] {
    const counts = new Array<number>(logits.length).fill(0);
    for (let i = 0; i < m; i++) counts[pick(logits, o, () => (i + 0.5) / m)]! += 1;
    return counts.map((c) => c / m);
  }
  // Probabilities 0.3, 0.05, 0.5, 0.15 at ids 0..3: sorted by probability the ids are 2, 0, 3, 1.
  const probs = [0.3, 0.05, 0.5, 0.15];
  const logits = probs.map(Math.log);
  const close = (a: number[], b: number[]) => expect(maxAbsDiff(a, b)).toBeLessThan(2e-4);

  it('temperature 1, no truncation: samples the softmax', () => {
    close(sweep(logits, { temperature: 1, topK: 0, topP: 1 }), probs);
  });

  it('top-p keeps the smallest set reaching p (the nucleus), renormalised', () => {
    // 0.5 < 0.75 ≤ 0.5 + 0.3: the nucleus is {2, 0}.
    close(sweep(logits, { temperature: 1, topK: 0, topP: 0.75 }), [0.3 / 0.8, 0, 0.5 / 0.8, 0]);
    // A draw at the very top lands inside the nucleus (ranked 2, 0) with top-p; without
    // truncation ids are walked in id order, so it lands on the last id.
    expect(pick(logits, { temperature: 1, topK: 0, topP: 0.75 }, () => 0.99)).toBe(0);
    expect(pick(logits, { temperature: 1, topK: 0, topP: 1 }, () => 0.99)).toBe(3);
    // p = 0.9 takes three tokens; a tiny p takes only the most likely one.
    close(sweep(logits, { temperature: 1, topK: 0, topP: 0.9 }), [0.3 / 0.95, 0, 0.5 / 0.95, 0.15 / 0.95]);
    close(sweep(logits, { temperature: 1, topK: 0, topP: 0.01 }), [0, 0, 1, 0]);
  });

  it('top-k keeps the k most likely, renormalised', () => {
    close(sweep(logits, { temperature: 1, topK: 2, topP: 1 }), [0.3 / 0.8, 0, 0.5 / 0.8, 0]);
    close(sweep(logits, { temperature: 1, topK: 1, topP: 1 }), [0, 0, 1, 0]);
  });

  it('top-k on a large vocabulary with tied logits matches a full sort', () => {
    // 500 logits from 20 distinct values: many ties, so the k-th place is contested.
    const big = Array.from({ length: 500 }, (_, i) => ((i * 7919) % 20) / 4);
    const k = 7;
    const ranked = big
      .map((_, i) => i)
      .sort((a, b) => big[b]! - big[a]! || a - b)
      .slice(0, k);
    const w = ranked.map((i) => Math.exp(big[i]!));
    const z = w.reduce((s, x) => s + x, 0);
    const expected = new Array<number>(big.length).fill(0);
    ranked.forEach((id, j) => (expected[id] = w[j]! / z));
    close(sweep(big, { temperature: 1, topK: k, topP: 1 }, 20_000), expected);
  });

  it('temperature scales the logits: p ∝ exp(logit / T)', () => {
    const t = 0.5;
    const w = probs.map((p) => p ** (1 / t));
    const z = w.reduce((s, x) => s + x, 0);
    close(
      sweep(logits, { temperature: t, topK: 0, topP: 1 }),
      w.map((x) => x / z),
    );
  });

  it('temperature 0 is argmax and ignores random()', () => {
    expect(pick(logits, { temperature: 0, topK: 0, topP: 1 }, () => 0.99)).toBe(2);
    expect(pick([1, 5, 5, 2], { temperature: 0, topK: 0, topP: 1 }, () => 0)).toBe(1);
  });
});
