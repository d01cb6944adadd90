/**
 * The native backend (backend/native.ts over packages/native): every kernel against the tfjs
 * cpu backend, values and gradients, on odd shapes (batch 1, sizes that are no multiple of 8);
 * AdamW; a training run that gives wasm's losses; no leaked tensors. Where the kernels are not
 * built (no g++ or OpenBLAS), the file checks the fallback instead: wasm, with one line why.
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadNative, type NativeKernels } from '../../native/src/index.ts';
import {
  AdamW,
  clipByGlobalNorm,
  createModel,
  decodedPerplexity,
  estimateTrainingMemory,
  initBackend,
  layerNorm,
  gelu,
  generate,
  maskedCrossEntropy,
  perplexity,
  trainStage,
  type GPTConfig,
  type StepMetrics,
} from '../src/index.ts';
import { causalAttention, causalAttentionQkv, causalMask, embed } from '../src/ops.ts';
import {
  cycleCorpus,
  gptConfig,
  maxAbsDiff,
  randomFloats,
  TOKENIZER,
  trainOptions,
  useTempDir,
  WindowSampler,
} from './helpers.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const loaded = loadNative();

/** Runs fn on a backend and returns plain copies of the arrays it produces. */
async function on(backend: 'cpu' | 'native' | 'wasm', fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  expect(await initBackend(backend)).toBe(backend);
  return tf.tidy(fn).map((t) => {
    const copy = Float32Array.from(t.dataSync());
    t.dispose();
    return copy;
  });
}

/** The value and the gradients of sum(f(xs)·w) for fixed random weights w: every output element counts. */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: { data: Float32Array; shape: number[] }[]) {
  return () => {
    const xs = inputs.map((x) => tf.tensor(x.data, x.shape));
    const y = f(...xs);
    const w = tf.tensor(randomFloats(y.size, 99), y.shape);
    const grads = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), w)))(xs);
    return [y, ...grads];
  };
}

/** Checks native against cpu for one function, output by output. */
async function compare(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  shapes: number[][],
  tolerance = 2e-5,
  seed = 1,
): Promise<void> {
  const inputs = shapes.map((shape, i) => ({
    shape,
    data: randomFloats(
      shape.reduce((n, d) => n * d, 1),
      seed + i,
    ),
  }));
  const want = await on('cpu', valueAndGrads(f, inputs));
  const got = await on('native', valueAndGrads(f, inputs));
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const scale = Math.max(1, ...want[i]!.map(Math.abs));
    expect(maxAbsDiff(got[i]!, want[i]!) / scale, `output ${i} (0 = value, then gradients)`).toBeLessThan(tolerance);
  }
}

/** The model's attention composed from tfjs ops (what the wasm and cpu backends run). */
function composedAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number): tf.Tensor {
  const [b, t, c] = q.shape as [number, number, number];
  const tk = k.shape[1]!;
  const hs = c / heads;
  const split = (x: tf.Tensor, n: number) => tf.transpose(tf.reshape(x, [b, n, heads, hs]), [0, 2, 1, 3]);
  let att = tf.mul(tf.matMul(split(q, t), split(k, tk), false, true), 1 / Math.sqrt(hs));
  att = tf.add(att, tf.slice(causalMask(tk), [tk - t, 0], [t, tk]));
  return tf.reshape(tf.transpose(tf.matMul(tf.softmax(att), split(v, tk)), [0, 2, 1, 3]), [b, t, c]);
}

/** Runs f with the native kernels on `n` threads (the products and loops split between them). */
async function withThreads<T>(n: number, f: () => Promise<T>): Promise<T> {
  const { kernels } = loaded as { kernels: NativeKernels };
  const before = kernels.threads();
  kernels.threads(n);
  try {
    return await f();
  } finally {
    kernels.threads(before);
  }
}

/** Checks that decoding `steps` of token ids (each [batch][t]) gives the cpu backend's logits. */
async function expectDecodingAsCpu(config: GPTConfig, steps: number[][][]): Promise<void> {
  const batch = steps[0]!.length;
  const run = () => {
    const model = createModel(config, 5);
    const state = model.startDecoding(batch);
    const out = steps.map((ids) => model.decode(tf.tensor2d(ids, [batch, ids[0]!.length], 'int32'), state));
    model.disposeDecoding(state);
    model.dispose();
    return out;
  };
  const want = await on('cpu', run);
  const got = await on('native', run);
  for (let i = 0; i < want.length; i++) expect(maxAbsDiff(got[i]!, want[i]!)).toBeLessThan(2e-5);
}

if ('kernels' in loaded) {
  describe('native kernels against the tfjs cpu backend', () => {
    it('matMul: transposes as flags, batches, a broadcast batch of 1, odd sizes', async () => {
      for (const [ta, tb] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ] as const) {
        const a = ta ? [3, 7, 5] : [3, 5, 7];
        const b = tb ? [3, 9, 7] : [3, 7, 9];
        await compare((x, y) => tf.matMul(x!, y!, ta, tb), [a, b]);
      }
      await compare(
        (x, y) => tf.matMul(x!, y!),
        [
          [1, 13],
          [13, 1],
        ],
      );
      // A batch of 1 broadcast against a batch (tfjs' own gradient does not reduce it: values only).
      const a = randomFloats(15, 3);
      const b = randomFloats(4 * 15, 4);
      const product = () => [tf.matMul(tf.tensor3d(a, [1, 5, 3]), tf.tensor3d(b, [4, 5, 3]), false, true)];
      expect(maxAbsDiff((await on('native', product))[0]!, (await on('cpu', product))[0]!)).toBeLessThan(1e-5);
    });

    it('matMul big enough to share between threads: blocks of rows, blocks of columns, transposes', async () => {
      // Over 2^20 multiply-adds the product is cut into blocks (kernels.cc, gemm): by rows when
      // C has at least as many rows as columns, else by columns; one block per thread.
      await withThreads(2, async () => {
        for (const [m, n, k] of [
          [300, 70, 64],
          [40, 600, 64],
        ]) {
          for (const [ta, tb] of [
            [false, false],
            [true, true],
          ] as const) {
            const a = ta ? [k, m] : [m, k];
            const b = tb ? [n, k] : [k, n];
            await compare((x, y) => tf.matMul(x!, y!, ta, tb), [a, b], 1e-5);
          }
        }
      });
    });

    it("concatenation and split along each axis, values and gradients (each is the other one's gradient)", async () => {
      for (const axis of [0, 1, 2, -1]) {
        const other = [3, 5, 7].map((d, i) => (i === (axis + 3) % 3 ? 2 : d));
        await compare((x, y) => tf.concat([x!, y!, x!], axis), [[3, 5, 7], other]);
        const scaledParts = (x: tf.Tensor) =>
          tf.concat(
            tf.split(x, [1, 4, 2], axis).map((part, i) => tf.mul(part, i + 1)),
            axis,
          );
        await compare((x) => scaledParts(x!), [[7, 7, 7]]);
      }
    });

    it('element-wise ops with equal shapes, scalars and bias rows; bias gradients as column sums', async () => {
      await compare((x, y) => tf.add(x!, y!), [[3, 5, 7], [7]]);
      await compare((x, y) => tf.add(x!, y!), [[7], [2, 5, 7]]);
      await compare(
        (x, y) => tf.sub(x!, y!),
        [
          [3, 5, 7],
          [5, 7],
        ],
      );
      await compare(
        (x, y) => tf.mul(x!, y!),
        [
          [1, 9],
          [1, 9],
        ],
      );
      await compare((x, y) => tf.mul(x!, tf.sum(y!)), [[4, 3], [2]]);
      await compare((x) => tf.div(x!, 3), [[13]]);
      await compare((x) => tf.sum(x!, [0, 1]), [[3, 5, 7]]);
      await compare((x) => tf.sum(x!, [0, 1], true), [[3, 5, 7]]);
    });

    it('LayerNorm, with and without a bias', async () => {
      await compare((x, g, b) => layerNorm(x!, g!, b), [[2, 5, 13], [13], [13]]);
      await compare((x, g) => layerNorm(x!, g!), [[1, 1, 7], [7]]);
    });

    it('GELU', async () => {
      await compare((x) => gelu(tf.mul(x!, 4)), [[3, 37]]);
    });

    it('causal attention: several heads, batch 1, odd head sizes, keys beyond the queries (a cache)', async () => {
      for (const [b, t, tk, heads, hs] of [
        [2, 7, 7, 3, 5],
        [1, 1, 1, 1, 3],
        [1, 9, 9, 2, 8],
        [2, 3, 8, 2, 3],
      ]) {
        const c = heads * hs;
        await compare(
          (q, k, v) =>
            tf.getBackend() === 'native'
              ? causalAttention(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, heads)
              : composedAttention(q!, k!, v!, heads),
          [
            [b, t, c],
            [b, tk, c],
            [b, tk, c],
          ],
          3e-5,
        );
      }
    });

    it('causal attention over one qkv projection [B, T, 3C]: values and its gradient', async () => {
      for (const [b, t, heads, hs] of [
        [2, 7, 3, 5],
        [1, 1, 1, 3],
        [1, 9, 2, 8],
      ]) {
        const c = heads * hs;
        await compare(
          (qkv) =>
            tf.getBackend() === 'native'
              ? causalAttentionQkv(qkv as tf.Tensor3D, heads)
              : composedAttention(...(tf.split(qkv!, 3, 2) as [tf.Tensor, tf.Tensor, tf.Tensor]), heads),
          [[b, t, 3 * c]],
          3e-5,
        );
      }
    });

    it('cross-entropy from logits with the SFT weights (masked rows, a row with a large logit)', async () => {
      const targets = [3, 0, 10, 6, 2];
      const weights = [1, 0, 1, 1, 0];
      await compare(
        (z) => {
          const big = tf.mul(z!, tf.tensor2d([[30], [1], [1], [1], [1]]));
          return maskedCrossEntropy(big as tf.Tensor2D, tf.tensor1d(targets, 'int32'), tf.tensor1d(weights));
        },
        [[5, 11]],
      );
    });

    it('token + position embedding, also from an offset', async () => {
      const idx = [
        [4, 0, 4],
        [2, 6, 1],
      ];
      for (const offset of [0, 2]) {
        await compare(
          (wte, wpe) => embed(tf.tensor2d(idx, [2, 3], 'int32'), wte as tf.Tensor2D, wpe as tf.Tensor2D, offset),
          [
            [7, 5],
            [6, 5],
          ],
        );
      }
    });

    it('AdamW in one call with clipping gives the per-tensor update, over three steps', async () => {
      const shapes = [[3, 5], [5], [7]];
      const run = () => {
        const params = new Map(
          shapes.map((s, i) => [`p${i}`, tf.variable(tf.tensor(randomFloats(s[0]! * (s[1] ?? 1), i), s))]),
        );
        const opt = new AdamW({ beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 }, (n) => n !== 'p1');
        const norms: number[] = [];
        for (let step = 0; step < 3; step++) {
          const grads = new Map(
            shapes.map((s, i) => [`p${i}`, tf.tensor(randomFloats(s[0]! * (s[1] ?? 1), 10 * step + i, 2), s)]),
          );
          const clipped = clipByGlobalNorm(grads, 1);
          norms.push(clipped.norm);
          opt.apply(params, clipped.grads, 0.01);
          tf.dispose([...clipped.grads.values()]);
        }
        const out = [...params.values(), ...opt.m.values(), ...opt.v.values()].map((t) => tf.clone(t));
        opt.dispose();
        tf.dispose([...params.values()]);
        return [...out, tf.tensor(norms)];
      };
      const want = await on('cpu', run);
      const got = await on('native', run);
      for (let i = 0; i < want.length; i++) expect(maxAbsDiff(got[i]!, want[i]!)).toBeLessThan(1e-5);
    });
  });

  describe('decoding with the KV cache in one native call per step', () => {
    for (const bias of [true, false]) {
      it(`gives the cpu backend's logits for a prompt and the tokens after it (bias ${bias}, batch 2)`, async () => {
        const config = gptConfig({ vocabSize: 23, blockSize: 11, layers: 2, heads: 3, dim: 15, bias });
        const steps = [
          [
            [3, 1, 4, 1, 5],
            [9, 2, 6, 5, 3],
          ],
          [[5], [8]],
          [
            [9, 7],
            [9, 3],
          ],
        ];
        await expectDecodingAsCpu(config, steps);
      });
    }

    it("gives the cpu backend's logits at a width where two threads split q, k and v's outputs mid-product", async () => {
      // dim 256: 768 q/k/v outputs in one region (kernels.cc, linearRowsOf), at least 128 a thread.
      const config = gptConfig({ vocabSize: 19, blockSize: 6, layers: 1, heads: 2, dim: 256, bias: true });
      await withThreads(2, () => expectDecodingAsCpu(config, [[[2, 7, 1]], [[8]], [[3]]]));
    });

    it("gives the cpu backend's logits for nine sequences at once (more rows than the packed path takes)", async () => {
      const config = gptConfig({ vocabSize: 29, blockSize: 9, layers: 1, heads: 2, dim: 18, bias: true });
      const rows = (t: number, shift: number) =>
        Array.from({ length: 9 }, (_, b) => [...Array(t)].map((_, i) => (b * 3 + i + shift) % 29));
      await expectDecodingAsCpu(config, [rows(2, 0), rows(1, 7)]);
    });

    it('held-out loss through the decoder: float32 equals the batched forward pass, int8 is close', async () => {
      expect(await initBackend('native')).toBe('native');
      const config = gptConfig({ vocabSize: 41, blockSize: 12, layers: 2, heads: 2, dim: 24, bias: true });
      const model = createModel(config, 9);
      const ids = (n: number, seed: number) => Int32Array.from({ length: n }, (_, i) => (i * 7 + seed * 13) % 41);
      // 10 rows: one group of eight and one of two; the second batch masks its first half.
      const batches = [0, 1].map((k) => ({
        batchSize: 10,
        blockSize: 12,
        x: ids(120, k),
        y: ids(120, k + 5),
        mask: k === 1 ? Float32Array.from({ length: 120 }, (_, i) => (i % 12 < 6 ? 0 : 1)) : undefined,
      }));
      try {
        const forward = perplexity(model, batches).loss;
        const fp32 = decodedPerplexity(model, batches, 'float32').loss;
        const int8 = decodedPerplexity(model, batches, 'int8').loss;
        expect(Math.abs(fp32 - forward)).toBeLessThan(1e-4 * forward);
        expect(int8).not.toBe(fp32);
        expect(Math.abs(int8 - fp32)).toBeLessThan(0.02 * fp32);
      } finally {
        model.dispose();
      }
    });

    it.each(['float32', 'int8'] as const)('a restarted %s state gives the logits of a fresh one', async (weights) => {
      expect(await initBackend('native')).toBe('native');
      const model = createModel(gptConfig({ vocabSize: 31, blockSize: 8, layers: 2, heads: 2, dim: 20 }), 3);
      const fresh = model.startDecoding(1, { weights });
      const reused = model.startDecoding(1, { weights });
      try {
        const feed = (state: typeof fresh, ids: number[]) =>
          tf.tidy(() => model.decode(tf.tensor2d([ids], [1, ids.length], 'int32'), state).dataSync());
        feed(reused, [9, 8, 7, 6, 5, 4, 3]); // fills most of the cache with other tokens
        model.restartDecoding(reused);
        for (const ids of [[1, 2], [3], [4]]) expect(feed(reused, ids)).toEqual(feed(fresh, ids));
      } finally {
        model.disposeDecoding(fresh);
        model.disposeDecoding(reused);
        model.dispose();
      }
    });

    it.each([
      ['int8', 0.05],
      ['float16', 0.005],
    ] as const)('with %s weights the logits stay close to float32 ones', async (weights, tolerance) => {
      expect(await initBackend('native')).toBe('native');
      const model = createModel(
        gptConfig({ vocabSize: 37, blockSize: 16, layers: 2, heads: 2, dim: 24, bias: true }),
        8,
      );
      const fp32 = model.startDecoding(1);
      const reduced = model.startDecoding(1, { weights });
      try {
        for (const ids of [[1, 2, 3, 4, 5], [6], [7]]) {
          const x = tf.tensor2d([ids], [1, ids.length], 'int32');
          const a = model.decode(x, fp32);
          const b = model.decode(x, reduced);
          const want = a.dataSync();
          const scale = Math.max(...want.map(Math.abs));
          const diff = maxAbsDiff(b.dataSync(), want);
          expect(diff).toBeGreaterThan(0); // really the reduced path
          expect(diff / scale).toBeLessThan(tolerance);
          tf.dispose([x, a, b]);
        }
      } finally {
        model.disposeDecoding(fp32);
        model.disposeDecoding(reduced);
        model.dispose();
      }
    });

    it('greedy sampling gives the same tokens with and without the cache, across a window move', async () => {
      expect(await initBackend('native')).toBe('native');
      const model = createModel(gptConfig({ vocabSize: 19, blockSize: 8, layers: 2, heads: 2, dim: 10 }), 6);
      const o = { maxNewTokens: 20, temperature: 0, topK: 0, topP: 1, samples: 2, seed: 1, eotId: -1 };
      try {
        const cached = generate(model, [1, 2, 3], o).tokens;
        expect(cached[0]).toHaveLength(20);
        expect(generate(model, [1, 2, 3], { ...o, useCache: false }).tokens).toEqual(cached);
      } finally {
        model.dispose();
      }
    });
  });

  describe('training on the native backend', () => {
    it("holds what the memory estimate says for native (within a tenth), far less than the composed ops' estimate", async () => {
      expect(await initBackend('native')).toBe('native');
      const config = gptConfig({ vocabSize: 300, blockSize: 48, layers: 2, heads: 3, dim: 48 });
      const model = createModel(config, 2);
      const batchSize = 6;
      const sampler = new WindowSampler(cycleCorpus(300, 37, 2000), batchSize, 48, 3);
      const info = await tf.profile(async () => {
        await trainStage({
          model,
          tokenizer: TOKENIZER,
          sampler,
          valBatches: () => [],
          options: trainOptions({ iterations: 2 }),
          checkpointPath: path.join(tmp(), 'memory.ckpt'),
        });
      });
      model.dispose();
      const estimate = estimateTrainingMemory(config, batchSize, 'native').total;
      expect(Math.abs(estimate / info.peakBytes - 1)).toBeLessThan(0.1);
      // The course handout's model (6 layers, 8 heads, dim 512, block 256, vocab 8192) at its batch 32.
      const handout = gptConfig({ vocabSize: 8192, blockSize: 256, layers: 6, heads: 8, dim: 512 });
      expect(estimateTrainingMemory(handout, 32, 'native').total).toBeLessThan(11 * 2 ** 30);
      expect(estimateTrainingMemory(handout, 32, 'cpu').total).toBeGreaterThan(
        2 * estimateTrainingMemory(handout, 32, 'native').total,
      );
    });

    const tmp = useTempDir('native');
    const corpus = cycleCorpus(29, 13, 400);

    async function losses(backend: 'wasm' | 'native') {
      expect(await initBackend(backend)).toBe(backend);
      const before = tf.memory().numTensors;
      const model = createModel(
        gptConfig({ vocabSize: 29, blockSize: 12, layers: 2, heads: 3, dim: 21, bias: true }),
        3,
      );
      const seen: StepMetrics[] = [];
      const counts: number[] = [];
      try {
        await trainStage({
          model,
          tokenizer: TOKENIZER,
          sampler: new WindowSampler(corpus, 3, 12, 5),
          valBatches: () => [],
          options: trainOptions({ iterations: 6, lr: 3e-3 }),
          checkpointPath: path.join(tmp(), `${backend}.ckpt`),
          onMetrics: (m) => {
            seen.push(m);
            counts.push(tf.memory().numTensors);
          },
        });
      } finally {
        model.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
      return { seen, counts };
    }

    it('gives the losses wasm gives, step for step, and the backend in its metrics; no tensor leaks', async () => {
      const wasm = await losses('wasm');
      const native = await losses('native');
      expect(native.seen.map((m) => m.backend)).toEqual(Array(6).fill('native'));
      for (let i = 0; i < 6; i++) {
        expect(Math.abs(native.seen[i]!.trainLoss - wasm.seen[i]!.trainLoss)).toBeLessThan(1e-4);
        expect(Math.abs(native.seen[i]!.gradNorm - wasm.seen[i]!.gradNorm) / wasm.seen[i]!.gradNorm).toBeLessThan(1e-3);
      }
      expect(new Set(native.counts.slice(1)).size).toBe(1);
    });
  });
} else {
  describe('without the native kernels', () => {
    it('the native backend is refused with the reason and how to get it', async () => {
      // Built without g++ or OpenBLAS (build/unavailable.txt says what is missing), or switched off.
      await expect(initBackend('native')).rejects.toThrow(
        /not available: .*(apt-get install -y g\+\+ libopenblas-dev|MINIGLM_NO_NATIVE)/,
      );
    });
  });
}

describe('falling back to wasm', () => {
  it('with the native kernels switched off, the best backend is wasm and one line says why and how to get native', () => {
    const script = `
      const { initBackend } = await import(${JSON.stringify(path.join(root, 'packages/model/src/index.ts'))});
      console.log('chosen', await initBackend());`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, MINIGLM_NO_NATIVE: '1', MINIGLM_BACKEND: '' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').pop()).toBe('chosen wasm');
    const lines = r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.includes('miniglm'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^miniglm: using wasm, not the fast native backend: .*MINIGLM_NO_NATIVE/);
  });
});
