/**
 * The kernels registered on the wasm backend (src/backend/wasm-kernels.ts) must give the cpu
 * backend's results: BatchMatMul with every transpose/batch/broadcast combination (and both of
 * its internal evaluation orders), UnsortedSegmentSum (the gradient of gather), the
 * leading-axes Sum and the float32 OneHot.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { maxAbsDiff, onCpu, randomFloats, useWasm } from './helpers.ts';

useWasm();

interface Result {
  shape: number[];
  values: Float32Array;
}

/** Runs `fn` on fresh tensors built from plain arrays, on wasm and then on cpu. */
async function onBoth(fn: () => tf.Tensor): Promise<{ wasm: Result; cpu: Result }> {
  const run = (): Result =>
    tf.tidy(() => {
      const t = fn();
      return { shape: t.shape, values: t.dataSync() as Float32Array };
    });
  expect(tf.getBackend()).toBe('wasm');
  const wasm = run();
  const cpu = await onCpu(run);
  return { wasm, cpu };
}

async function expectSameAsCpu(fn: () => tf.Tensor, tolerance = 1e-4): Promise<void> {
  const { wasm, cpu } = await onBoth(fn);
  expect(maxAbsDiff(wasm.values, cpu.values)).toBeLessThan(tolerance);
  expect(wasm.shape).toEqual(cpu.shape);
}

const FLAGS = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;
const flagName = (tA: boolean, tB: boolean) => `transposeA=${tA} transposeB=${tB}`;

/**
 * (m, k, n) triples: the kernel picks op(A)·op(B) or (op(B)ᵀ·op(A)ᵀ)ᵀ by which moves fewer
 * elements, so a long inner dimension and long outer dimensions take different orders.
 */
const SIZES: [number, number, number][] = [
  [5, 7, 3],
  [2, 24, 3],
  [9, 2, 11],
];

function operands(
  batchA: number[],
  batchB: number[],
  [m, k, n]: [number, number, number],
  tA: boolean,
  tB: boolean,
  seed: number,
) {
  const aShape = [...batchA, ...(tA ? [k, m] : [m, k])];
  const bShape = [...batchB, ...(tB ? [n, k] : [k, n])];
  const size = (s: number[]) => s.reduce((x, d) => x * d, 1);
  return {
    aShape,
    bShape,
    a: randomFloats(size(aShape), seed),
    b: randomFloats(size(bShape), seed + 1),
  };
}

async function checkMatMul(batchA: number[], batchB: number[], tA: boolean, tB: boolean): Promise<void> {
  for (const [i, mkn] of SIZES.entries()) {
    const { a, b, aShape, bShape } = operands(batchA, batchB, mkn, tA, tB, 100 + i);
    await expectSameAsCpu(() => tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), tA, tB));
  }
}

describe('wasm BatchMatMul equals the cpu backend', () => {
  it('2-D plain', async () => {
    await checkMatMul([], [], false, false);
  });

  it('2-D transposeA', async () => {
    await checkMatMul([], [], true, false);
  });

  it('2-D transposeB', async () => {
    await checkMatMul([], [], false, true);
  });

  it('2-D transposeA and transposeB', async () => {
    await checkMatMul([], [], true, true);
  });

  for (const [tA, tB] of FLAGS) {
    it(`batched 3-D, ${flagName(tA, tB)}`, async () => {
      await checkMatMul([3], [3], tA, tB);
    });

    it(`batched 4-D, ${flagName(tA, tB)}`, async () => {
      await checkMatMul([2, 3], [2, 3], tA, tB);
    });

    it(`broadcast: batched a [4,…] against b [1,…], ${flagName(tA, tB)}`, async () => {
      await checkMatMul([4], [1], tA, tB);
    });

    it(`broadcast: batched a against a rank-2 b, ${flagName(tA, tB)}`, async () => {
      await checkMatMul([4], [], tA, tB);
      await checkMatMul([2, 3], [], tA, tB);
    });

    it(`broadcast: a [1,…] or rank-2 a against a batched b, ${flagName(tA, tB)}`, async () => {
      await checkMatMul([1], [4], tA, tB);
      await checkMatMul([], [4], tA, tB);
      await checkMatMul([], [2, 3], tA, tB);
    });
  }

  it('broadcast: b with more batch axes than a gives the broadcast batch shape, all transpose flags', async () => {
    // cpu: [m,k]·[1,k,n] → [1,m,n] and [3,m,k]·[1,3,k,n] → [1,3,m,n], as NumPy broadcasting does.
    for (const [tA, tB] of FLAGS) {
      await checkMatMul([], [1], tA, tB);
      await checkMatMul([3], [1, 3], tA, tB);
    }
  });

  it('gradients of a batched, transposed matMul (attention-shaped) equal cpu', async () => {
    const q = randomFloats(2 * 2 * 6 * 4, 1);
    const k = randomFloats(2 * 2 * 6 * 4, 2);
    const r = randomFloats(2 * 2 * 6 * 6, 3);
    for (const which of [0, 1]) {
      await expectSameAsCpu(() => {
        const f = (qq: tf.Tensor, kk: tf.Tensor) =>
          tf.sum(tf.mul(tf.matMul(qq, kk, false, true), tf.tensor(r, [2, 2, 6, 6])));
        const grads = tf.grads(f)([tf.tensor(q, [2, 2, 6, 4]), tf.tensor(k, [2, 2, 6, 4])]);
        return grads[which]!;
      });
    }
  });
});

describe('wasm UnsortedSegmentSum (the gradient of gather) equals the cpu backend', () => {
  it('is registered on wasm', () => {
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
  });

  it('tf.unsortedSegmentSum with repeated and unused segment ids', async () => {
    const x = randomFloats(7 * 3, 5);
    const ids = [2, 0, 2, 2, 5, 0, 1];
    await expectSameAsCpu(() => tf.unsortedSegmentSum(tf.tensor(x, [7, 3]), tf.tensor1d(ids, 'int32'), 6), 1e-5);
  });

  it('gradient of gather with repeated indices (an embedding lookup)', async () => {
    const table = randomFloats(10 * 4, 6);
    const indices = [0, 3, 3, 9, 0, 0, 5, 3];
    const upstream = randomFloats(indices.length * 4, 7);
    await expectSameAsCpu(() => {
      const g = tf.grad((w: tf.Tensor) =>
        tf.sum(tf.mul(tf.gather(w, tf.tensor1d(indices, 'int32')), tf.tensor(upstream, [indices.length, 4]))),
      );
      return g(tf.tensor(table, [10, 4]));
    }, 1e-5);
  });

  it('gradient of gather with 2-D indices into a 3-D table', async () => {
    const table = randomFloats(6 * 2 * 3, 8);
    const indices = [
      [1, 1, 4],
      [5, 1, 0],
    ];
    const upstream = randomFloats(2 * 3 * 2 * 3, 9);
    await expectSameAsCpu(() => {
      const g = tf.grad((w: tf.Tensor) =>
        tf.sum(tf.mul(tf.gather(w, tf.tensor2d(indices, [2, 3], 'int32')), tf.tensor(upstream, [2, 3, 2, 3]))),
      );
      const grad = g(tf.tensor(table, [6, 2, 3]));
      expect(grad.shape).toEqual([6, 2, 3]);
      return grad;
    }, 1e-5);
  });
});

describe('other wasm kernel replacements equal the cpu backend', () => {
  it('Sum over leading axes (with and without keepDims) and over other axes', async () => {
    const x = randomFloats(4 * 3 * 5, 10);
    for (const [axis, keepDims] of [
      [0, false],
      [[0, 1], false],
      [[1, 0], true],
      [0, true],
      [-1, false],
      [1, false],
    ] as [number | number[], boolean][]) {
      await expectSameAsCpu(() => tf.sum(tf.tensor(x, [4, 3, 5]), axis, keepDims), 1e-5);
    }
    await expectSameAsCpu(() => tf.sum(tf.tensor(x, [4, 3, 5])), 1e-4);
  });

  it('OneHot with a float32 dtype has ones and zeros', async () => {
    const { wasm, cpu } = await onBoth(() => tf.oneHot(tf.tensor1d([2, 0, 4, 4], 'int32'), 5, 1, 0, 'float32'));
    expect(wasm.shape).toEqual([4, 5]);
    expect(Array.from(wasm.values)).toEqual(Array.from(cpu.values));
    expect(wasm.values.reduce((s, v) => s + v, 0)).toBe(4);
  });
});
