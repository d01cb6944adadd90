/**
 * maskedCrossEntropy (src/ops.ts): its value against log-softmax computed in doubles from the
 * logits read out, and its hand-written gradient against tf.grad of a reference built from
 * tfjs's own differentiable ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createRng } from '../../data/src/rng.ts';
import { maskedCrossEntropy } from '../src/index.ts';
import { maxAbsDiff, onCpu, randomFloats, referenceCrossEntropy, useWasm } from './helpers.ts';

useWasm();

const N = 24;
const V = 37;

function problem(seed: number, scale: number) {
  const rng = createRng(seed);
  const logits = randomFloats(N * V, seed, scale);
  const targets = Int32Array.from({ length: N }, () => rng.int(V));
  const ones = new Float32Array(N).fill(1);
  const mask = Float32Array.from({ length: N }, (_, i) => (i % 3 === 0 || i > 18 ? 1 : 0));
  return { logits, targets, ones, mask };
}

/** The reference loss: sum over rows of −logSoftmax[target]·w, divided by sum(w). */
function referenceLoss(z: tf.Tensor, targets: Int32Array, weights: Float32Array): tf.Scalar {
  const onehot = tf.oneHot(tf.tensor1d(targets, 'int32'), V, 1, 0, 'int32').toFloat();
  const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(z), onehot), -1));
  const w = tf.tensor1d(weights);
  return tf.div(tf.sum(tf.mul(nll, w)), tf.sum(w)) as tf.Scalar;
}

describe('maskedCrossEntropy', () => {
  for (const scale of [1, 8]) {
    it(`value equals a plain-JS log-softmax reference (logit scale ${scale}), all-ones weights and a 0/1 mask`, () => {
      const { logits, targets, ones, mask } = problem(11 + scale, scale);
      for (const weights of [ones, mask]) {
        const value = tf.tidy(
          () =>
            maskedCrossEntropy(
              tf.tensor2d(logits, [N, V]),
              tf.tensor1d(targets, 'int32'),
              tf.tensor1d(weights),
            ).dataSync()[0]!,
        );
        const expected = referenceCrossEntropy(logits, V, targets, weights);
        expect(Math.abs(value - expected)).toBeLessThan(1e-5 * Math.max(1, expected));
      }
      // The mask matters: the two values differ.
      const [all, masked] = [ones, mask].map((w) => referenceCrossEntropy(logits, V, targets, w));
      expect(Math.abs(all! - masked!)).toBeGreaterThan(1e-3);
    });
  }

  it('counts only masked rows: changing an unmasked row changes nothing', () => {
    const { logits, targets, mask } = problem(3, 2);
    const changed = logits.slice();
    const unmasked = mask.findIndex((m) => m === 0);
    for (let j = 0; j < V; j++) changed[unmasked * V + j] = 100 * (j % 2);
    const loss = (z: Float32Array) =>
      tf.tidy(
        () =>
          maskedCrossEntropy(tf.tensor2d(z, [N, V]), tf.tensor1d(targets, 'int32'), tf.tensor1d(mask)).dataSync()[0]!,
      );
    expect(loss(changed)).toBe(loss(logits));
  });

  it('fractional weights give sum(CE·w)/sum(w)', () => {
    const { logits, targets } = problem(4, 1);
    const weights = Float32Array.from({ length: N }, (_, i) => (i % 4) * 0.25);
    const value = tf.tidy(
      () =>
        maskedCrossEntropy(
          tf.tensor2d(logits, [N, V]),
          tf.tensor1d(targets, 'int32'),
          tf.tensor1d(weights),
        ).dataSync()[0]!,
    );
    expect(Math.abs(value - referenceCrossEntropy(logits, V, targets, weights))).toBeLessThan(1e-5);
  });

  for (const scale of [1, 8]) {
    it(`gradient equals tf.grad of a logSoftmax reference within 1e-5 (logit scale ${scale})`, async () => {
      const { logits, targets, ones, mask } = problem(21 + scale, scale);
      for (const weights of [ones, mask]) {
        // Upstream gradient ≠ 1 so that dy is honoured, not assumed.
        const ours = tf.tidy(() => {
          const g = tf.grad((z: tf.Tensor) =>
            tf.mul(maskedCrossEntropy(z as tf.Tensor2D, tf.tensor1d(targets, 'int32'), tf.tensor1d(weights)), 3),
          );
          return g(tf.tensor2d(logits, [N, V])).dataSync() as Float32Array;
        });
        const reference = (): Float32Array =>
          tf.tidy(() => {
            const g = tf.grad((z: tf.Tensor) => tf.mul(referenceLoss(z, targets, weights), 3));
            return g(tf.tensor2d(logits, [N, V])).dataSync() as Float32Array;
          });
        const onWasm = reference();
        const onCpuRef = await onCpu(reference);
        expect(maxAbsDiff(ours, onWasm)).toBeLessThan(1e-5);
        expect(maxAbsDiff(ours, onCpuRef)).toBeLessThan(1e-5);
        // Masked-out rows get exactly zero gradient.
        for (let r = 0; r < N; r++) {
          if (weights[r] === 0) expect(maxAbsDiff(ours.subarray(r * V, (r + 1) * V), new Float32Array(V))).toBe(0);
        }
      }
    });
  }

  it('the gradient flows through a model-like graph (tf.variableGrads inside tidy)', () => {
    const { logits, targets, mask } = problem(5, 1);
    const w = tf.variable(tf.tensor2d(randomFloats(8 * V, 6), [8, V]));
    const x = tf.tensor2d(logits.subarray(0, N * 8), [N, 8]);
    const { value, grads } = tf.variableGrads(() =>
      tf.tidy(() =>
        maskedCrossEntropy(tf.matMul(x, w) as tf.Tensor2D, tf.tensor1d(targets, 'int32'), tf.tensor1d(mask)),
      ),
    );
    const ref = tf.tidy(() => {
      const g = tf.grad((ww: tf.Tensor) => referenceLoss(tf.matMul(x, ww), targets, mask));
      return g(w).dataSync() as Float32Array;
    });
    expect(maxAbsDiff(Object.values(grads)[0]!.dataSync(), ref)).toBeLessThan(1e-5);
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    tf.dispose([value, ...Object.values(grads), w, x]);
  });
});
