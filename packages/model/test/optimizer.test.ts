/**
 * The smaller numeric pieces against hand formulas: AdamW (torch.optim.AdamW semantics),
 * global-norm clipping, the learning-rate schedule, GELU, LayerNorm and config validation.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  AdamW,
  clipByGlobalNorm,
  ConfigError,
  gelu,
  layerNorm,
  learningRate,
  resolveModelConfig,
} from '../src/index.ts';
import { maxAbsDiff, randomFloats, useWasm } from './helpers.ts';

useWasm();

describe('AdamW', () => {
  it('two steps match the torch.optim.AdamW update computed by hand, decaying only the chosen parameters', () => {
    const [lr, wd, b1, b2, eps] = [0.1, 0.5, 0.9, 0.99, 1e-8];
    const p0 = { w: [0.5, -1.0, 2.0, 0.25], b: [0.3, -0.2] };
    const g1 = { w: [0.1, -0.4, 0.02, 3.0], b: [1.0, -0.5] };
    const g2 = { w: [-0.3, 0.2, 0.05, 1.0], b: [0.5, 0.5] };
    const params = new Map<string, tf.Variable>([
      ['w', tf.variable(tf.tensor2d(p0.w, [2, 2]))],
      ['b', tf.variable(tf.tensor1d(p0.b))],
    ]);
    const opt = new AdamW({ beta1: b1, beta2: b2, eps, weightDecay: wd }, (name) => name === 'w');
    for (const g of [g1, g2]) {
      const grads = new Map<string, tf.Tensor>([
        ['w', tf.tensor2d(g.w, [2, 2])],
        ['b', tf.tensor1d(g.b)],
      ]);
      opt.apply(params, grads, lr);
      tf.dispose([...grads.values()]);
    }
    expect(opt.step).toBe(2);
    for (const name of ['w', 'b'] as const) {
      const expected = p0[name].map((p, i) => {
        let m = 0;
        let v = 0;
        for (const [t, g] of [g1[name][i]!, g2[name][i]!].entries()) {
          const step = t + 1;
          if (name === 'w') p *= 1 - lr * wd;
          m = b1 * m + (1 - b1) * g;
          v = b2 * v + (1 - b2) * g * g;
          p -= (lr * (m / (1 - b1 ** step))) / (Math.sqrt(v / (1 - b2 ** step)) + eps);
        }
        return p;
      });
      expect(maxAbsDiff(params.get(name)!.dataSync(), expected)).toBeLessThan(1e-6);
    }
    opt.dispose();
    tf.dispose([...params.values()]);
  });

  it('skips parameters without a gradient', () => {
    const params = new Map<string, tf.Variable>([['a', tf.variable(tf.tensor1d([1, 2]))]]);
    const opt = new AdamW({ beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 }, () => true);
    opt.apply(params, new Map(), 0.1);
    expect(Array.from(params.get('a')!.dataSync())).toEqual([1, 2]);
    expect(opt.m.size).toBe(0);
    tf.dispose([...params.values()]);
  });
});

describe('clipByGlobalNorm', () => {
  const make = () =>
    new Map<string, tf.Tensor>([
      ['a', tf.tensor1d([3, 0])],
      ['b', tf.tensor2d([[0], [4]])],
    ]);

  it('scales every gradient by maxNorm / norm when the global norm is larger', () => {
    const { norm, grads } = clipByGlobalNorm(make(), 1);
    expect(norm).toBeCloseTo(5, 5);
    expect(maxAbsDiff(grads.get('a')!.dataSync(), [0.6, 0])).toBeLessThan(1e-6);
    expect(maxAbsDiff(grads.get('b')!.dataSync(), [0, 0.8])).toBeLessThan(1e-6);
    expect(grads.get('b')!.shape).toEqual([2, 1]);
    tf.dispose([...grads.values()]);
  });

  it('leaves gradients alone below the limit or with clipping off (0)', () => {
    for (const max of [10, 0]) {
      const input = make();
      const { norm, grads } = clipByGlobalNorm(input, max);
      expect(norm).toBeCloseTo(5, 5);
      expect(grads).toBe(input);
      tf.dispose([...grads.values()]);
    }
  });
});

describe('learningRate (nanoGPT schedule)', () => {
  const s = { lr: 1, minLr: 0.1, warmup: 10, decayIters: 110 };
  it('warms up linearly, decays by a cosine, then stays at minLr', () => {
    expect(learningRate(0, s)).toBeCloseTo(1 / 11, 12);
    expect(learningRate(9, s)).toBeCloseTo(10 / 11, 12);
    expect(learningRate(10, s)).toBeCloseTo(1, 12);
    expect(learningRate(60, s)).toBeCloseTo(0.1 + 0.5 * 0.9, 12);
    expect(learningRate(35, s)).toBeCloseTo(0.1 + 0.5 * (1 + Math.cos(Math.PI / 4)) * 0.9, 12);
    expect(learningRate(110, s)).toBeCloseTo(0.1, 12);
    expect(learningRate(500, s)).toBe(0.1);
    for (let i = 11; i <= 110; i++) expect(learningRate(i, s)).toBeLessThanOrEqual(learningRate(i - 1, s));
  });

  it('without warmup starts at lr', () => {
    expect(learningRate(0, { ...s, warmup: 0 })).toBe(1);
  });
});

describe('GELU and LayerNorm', () => {
  it('gelu equals 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))', () => {
    const x = randomFloats(200, 1, 6);
    const ours = tf.tidy(() => gelu(tf.tensor1d(x)).dataSync());
    const expected = Array.from(x, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    expect(maxAbsDiff(ours, expected)).toBeLessThan(1e-5);
  });

  it('layerNorm normalises the last axis, then applies gain and bias', () => {
    const x = randomFloats(3 * 8, 2, 3);
    const gain = randomFloats(8, 3);
    const bias = randomFloats(8, 4);
    for (const withBias of [true, false]) {
      const ours = tf.tidy(() =>
        layerNorm(tf.tensor2d(x, [3, 8]), tf.tensor1d(gain), withBias ? tf.tensor1d(bias) : undefined).dataSync(),
      );
      const expected: number[] = [];
      for (let r = 0; r < 3; r++) {
        const row = Array.from(x.subarray(r * 8, r * 8 + 8));
        const mean = row.reduce((s, v) => s + v, 0) / 8;
        const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / 8;
        row.forEach((v, j) =>
          expected.push(((v - mean) / Math.sqrt(variance + 1e-5)) * gain[j]! + (withBias ? bias[j]! : 0)),
        );
      }
      expect(maxAbsDiff(ours, expected)).toBeLessThan(1e-5);
    }
  });
});

describe('resolveModelConfig', () => {
  it('fills defaults', () => {
    expect(resolveModelConfig({ vocabSize: 10, blockSize: 4, layers: 1, dim: 8 })).toEqual({
      kind: 'gpt',
      vocabSize: 10,
      blockSize: 4,
      layers: 1,
      heads: 1,
      dim: 8,
      dropout: 0,
      bias: false,
    });
    expect(resolveModelConfig({ kind: 'lstm', vocabSize: 10, blockSize: 4, layers: 2, dim: 8, dropout: 0.2 })).toEqual({
      kind: 'lstm',
      vocabSize: 10,
      blockSize: 4,
      layers: 2,
      dim: 8,
      dropout: 0.2,
    });
  });

  it('refuses what the model cannot take, naming the field', () => {
    const base = { vocabSize: 10, blockSize: 4, layers: 1, dim: 8 };
    expect(() => resolveModelConfig({ ...base, vocabSize: 0 })).toThrow(ConfigError);
    expect(() => resolveModelConfig({ ...base, vocabSize: 0 })).toThrow(/vocabSize/);
    expect(() => resolveModelConfig({ ...base, blockSize: 2.5 })).toThrow(/blockSize/);
    expect(() => resolveModelConfig({ ...base, dim: 10, heads: 4 })).toThrow(/dim 10 is not divisible by heads 4/);
    expect(() => resolveModelConfig({ ...base, dropout: 1 })).toThrow(/dropout/);
    expect(() => resolveModelConfig({ ...base, dropout: Number.NaN })).toThrow(/dropout/);
  });
});
