/**
 * The `native` backend: the tfjs cpu backend's storage (tensors are plain JS typed arrays, so
 * there is no 4 GB wasm heap) with the training step's hot kernels in C++ over OpenBLAS
 * (packages/native). Every cpu kernel is registered under our name too, so any op works; the
 * ones on a GPT step's path are replaced by native ones that read and write the tensors'
 * Float32Arrays in place through N-API (no copies):
 *
 * - `BatchMatMul` → sgemm with the transposes as flags and the batch as a stride (one call
 *   per batch entry, broadcasting a batch of 1).
 * - `Add`, `Sub`, `Mul`, `Div` of equal shapes, by a scalar or by a trailing-axes row (a bias)
 *   → one loop; `Sum` over all leading axes (a bias gradient) → column sums.
 * - Fused kernels of our own, used through `tf.customGrad` in ops.ts: LayerNorm, GELU, causal
 *   attention (scaled, masked softmax between two products per head), cross-entropy from
 *   logits with the SFT weights, token + position embedding; each with its backward kernel.
 * - AdamW over all parameters in one call (adamw.ts), in place.
 *
 * Why not kernels on the wasm heap (1.38× PyTorch measured with sgemm alone): the heap stays
 * capped at 4 GB, and the handout's model at batch 32 needs more. See the README's compute
 * section for the measurements behind the choice.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { loadNative, type NativeKernels, type PackedWeight } from '../../../native/src/index.ts';
import type { GPTConfig } from '../config.ts';
import type { DecodeWeights } from '../model.ts';

export const NATIVE = 'native';

/** The cpu backend with the bits of its storage our kernels touch. */
export class NativeBackend extends MathBackendCPU {
  constructor(readonly kernels: NativeKernels) {
    super();
    // The cpu backend advertises tfjs-node on its first write unless told it has been used.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** The tensor's own storage: writing to it changes the tensor. */
  f32(t: TensorInfo): Float32Array {
    const values = this.data.get(t.dataId).values;
    if (values instanceof Float32Array) return values;
    throw new Error(`native backend: expected float32 storage for a ${t.dtype} tensor`);
  }

  i32(t: TensorInfo): Int32Array {
    const values = this.data.get(t.dataId).values;
    if (values instanceof Int32Array) return values;
    return Int32Array.from(values as ArrayLike<number>);
  }

  output(shape: number[], values?: Float32Array): TensorInfo {
    const size = shape.reduce((n, d) => n * d, 1);
    return this.makeTensorInfo(shape, 'float32', values ?? new Float32Array(size));
  }
}

let registration: { ok: true } | { ok: false; reason: string } | undefined;

/**
 * Registers the backend and its kernels once. Answers why it cannot when the addon is not
 * built or does not load (one line, with how to get it).
 */
export function registerNativeBackend(): { ok: true } | { ok: false; reason: string } {
  if (registration) return registration;
  const loaded = loadNative();
  if ('reason' in loaded) return (registration = { ok: false, reason: loaded.reason });
  const kernels = loaded.kernels;
  tf.registerBackend(NATIVE, () => new NativeBackend(kernels), 0);
  const ours = new Map(nativeKernels().map((k) => [k.kernelName, k]));
  for (const k of tf.getKernelsForBackend('cpu')) {
    if (!ours.has(k.kernelName)) tf.registerKernel({ ...k, backendName: NATIVE });
  }
  for (const k of ours.values()) tf.registerKernel(k);
  return (registration = { ok: true });
}

/** The native backend in use, for code that calls its kernels directly (AdamW). */
export function nativeBackend(): NativeBackend | undefined {
  return tf.getBackend() === NATIVE ? (tf.backend() as NativeBackend) : undefined;
}

/** Pins the BLAS thread count (results depend on it: see packages/native) and returns it. */
export function setNativeThreads(n: number): number {
  const loaded = loadNative();
  return 'kernels' in loaded ? loaded.kernels.threads(n) : 0;
}

/** A GPT's decoding state on the native backend: keys and values per layer, [B, block, C]. */
export interface NativeKVCache {
  kind: 'gpt-native';
  k: Float32Array[];
  v: Float32Array[];
  batch: number;
  length: number;
  /**
   * The products' weights copied once per decoding, one row per output ([weight, scale]
   * pairs, see packWeight): what each new token streams through at memory bandwidth.
   */
  packed: PackedWeight[];
}

/**
 * A fresh native decoding state, with the products' weights packed for one-token steps: as
 * they are (float32), or in half the bytes (float16) or a quarter (int8, one scale per output).
 */
export function startNativeDecoding(
  c: GPTConfig,
  batch: number,
  params: Map<string, tf.Variable>,
  weights: DecodeWeights = 'float32',
): NativeKVCache {
  const backend = nativeBackend();
  if (!backend) throw new Error('native decoding needs the native backend');
  const size = batch * c.blockSize * c.dim;
  const caches = () => Array.from({ length: c.layers }, () => new Float32Array(size));
  const packed: PackedWeight[] = [];
  const pack = (name: string, k: number, n: number, outputRows: boolean) => {
    const out =
      weights === 'int8'
        ? new Int8Array(k * n)
        : weights === 'float16'
          ? new Uint16Array(k * n)
          : new Float32Array(k * n);
    const scale = new Float32Array(weights === 'int8' ? n : 0);
    backend.kernels.packWeight(backend.f32(params.get(name)!), k, n, out, scale, outputRows);
    packed.push(out, scale);
  };
  const C = c.dim;
  for (let i = 0; i < c.layers; i++) {
    for (const w of ['wq', 'wk', 'wv', 'wo']) pack(`h.${i}.attn.${w}`, C, C, false);
    pack(`h.${i}.mlp.wfc`, C, 4 * C, false);
    pack(`h.${i}.mlp.wproj`, 4 * C, C, false);
  }
  if (weights === 'float32')
    packed.push(backend.f32(params.get('wte')!), new Float32Array(0)); // already [V, C]
  else pack('wte', C, c.vocabSize, true);
  return { kind: 'gpt-native', k: caches(), v: caches(), batch, length: 0, packed };
}

/**
 * Feeds idx [B, T] after the cached tokens through the whole model in one native call and
 * returns the last position's logits [B, vocab] (weights read in place, no tensors made on the way).
 */
export function decodeNative(
  c: GPTConfig,
  params: Map<string, tf.Variable>,
  cache: NativeKVCache,
  idx: tf.Tensor2D,
): tf.Tensor2D {
  const backend = nativeBackend();
  if (!backend) throw new Error('native decoding needs the native backend');
  const [n, t] = idx.shape;
  const w = (name: string) => {
    const p = params.get(name);
    return p ? backend.f32(p) : null;
  };
  const names = ['wte', 'wpe'];
  for (let i = 0; i < c.layers; i++) {
    const h = `h.${i}`;
    names.push(`${h}.ln1.g`, `${h}.ln1.b`);
    for (const x of ['q', 'k', 'v', 'o']) names.push(`${h}.attn.w${x}`, `${h}.attn.b${x}`);
    names.push(`${h}.ln2.g`, `${h}.ln2.b`, `${h}.mlp.wfc`, `${h}.mlp.bfc`, `${h}.mlp.wproj`, `${h}.mlp.bproj`);
  }
  names.push('lnf.g', 'lnf.b');
  const logits = new Float32Array(n * c.vocabSize);
  const dims = Int32Array.of(n, t, cache.length, c.dim, c.heads, c.layers, c.vocabSize, c.blockSize);
  backend.kernels.gptDecode(names.map(w), dims, cache.k, cache.v, backend.i32(idx), logits, 1e-5, cache.packed);
  cache.length += t;
  return tf.tensor2d(logits, [n, c.vocabSize]);
}

type Args = { inputs: Record<string, TensorInfo | undefined>; backend: NativeBackend; attrs?: NamedAttrMap };

const sizeOf = (shape: number[]) => shape.reduce((n, d) => n * d, 1);

function kernel(kernelName: string, fn: (args: Args) => TensorInfo | TensorInfo[]): KernelConfig {
  return { kernelName, backendName: NATIVE, kernelFunc: fn as unknown as KernelConfig['kernelFunc'] };
}

/** Falls back to the cpu backend's own kernel for the cases ours do not take. */
function cpuKernel(name: string) {
  const k = tf.getKernel(name, 'cpu');
  if (!k) throw new Error(`cpu kernel ${name} is not registered`);
  return (args: Args) => k.kernelFunc(args as never) as TensorInfo;
}

function nativeKernels(): KernelConfig[] {
  return [
    kernel('BatchMatMul', batchMatMul),
    binaryKernel('Add', 0, true),
    binaryKernel('Sub', 1, false),
    binaryKernel('Multiply', 2, true),
    binaryKernel('RealDiv', 3, false),
    kernel('Sum', sum),
    kernel('SplitV', splitV),
    kernel('Concat', concat),
    ...fusedKernels(),
  ];
}

function batchMatMul(args: Args): TensorInfo {
  const { backend } = args;
  const a = args.inputs.a!;
  const b = args.inputs.b!;
  const transA = args.attrs!.transposeA as boolean;
  const transB = args.attrs!.transposeB as boolean;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) {
    return cpuKernel('BatchMatMul')(args);
  }
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const m = transA ? ac : ar;
  const k = transA ? ar : ac;
  const n = transB ? br : bc;
  if ((transB ? bc : br) !== k)
    throw new Error(`matMul: inner dimensions differ (${a.shape} × ${b.shape}, transposes ${transA}, ${transB})`);
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const na = sizeOf(batchA);
  const nb = sizeOf(batchB);
  const sameBatch = batchA.length === batchB.length && batchA.every((d, i) => d === batchB[i]);
  if (!sameBatch && na !== 1 && nb !== 1) return cpuKernel('BatchMatMul')(args);
  const batchShape = na >= nb ? batchA : batchB;
  const batch = Math.max(na, nb);
  const out = backend.output([...batchShape, m, n]);
  backend.kernels.sgemm(
    transA,
    transB,
    m,
    n,
    k,
    1,
    backend.f32(a),
    0,
    ac,
    na === 1 ? 0 : ar * ac,
    backend.f32(b),
    0,
    bc,
    nb === 1 ? 0 : br * bc,
    0,
    backend.f32(out),
    0,
    n,
    m * n,
    batch,
  );
  return out;
}

/**
 * a op b for float32 where b's shape equals a's or a's trailing axes (after leading 1s), or b
 * is a scalar; for the commutative ops also with the roles swapped. Anything else goes to
 * the cpu kernel.
 */
function binaryKernel(name: string, op: number, commutative: boolean): KernelConfig {
  const fallback = cpuKernel(name);
  const trailing = (big: number[], small: number[]) => {
    const s = small.slice(small.findIndex((d) => d !== 1));
    if (small.every((d) => d === 1)) return true;
    return s.length <= big.length && s.every((d, i) => d === big[big.length - s.length + i]);
  };
  return kernel(name, (args) => {
    const { backend } = args;
    let a = args.inputs.a!;
    let b = args.inputs.b!;
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback(args);
    if (!(sizeOf(a.shape) >= sizeOf(b.shape) && trailing(a.shape, b.shape))) {
      if (!commutative || !trailing(b.shape, a.shape)) return fallback(args);
      [a, b] = [b, a];
    }
    const n = sizeOf(a.shape);
    const period = sizeOf(b.shape);
    // Broadcasting may also add leading axes: the output has the longer rank.
    const shape =
      a.shape.length >= b.shape.length
        ? a.shape
        : [...b.shape.slice(0, b.shape.length - a.shape.length).map(() => 1), ...a.shape];
    const out = backend.output(shape);
    if (n > 0) backend.kernels.binary(op, backend.f32(a), backend.f32(b), backend.f32(out), n, Math.max(period, 1));
    return out;
  });
}

/** Sum over every axis but the last (a bias or broadcast gradient) → column sums. */
function sum(args: Args): TensorInfo {
  const { backend } = args;
  const x = args.inputs.x!;
  const rank = x.shape.length;
  const raw = args.attrs!.axis as number | number[];
  const axes = (Array.isArray(raw) ? raw : [raw]).map((ax) => (ax < 0 ? ax + rank : ax)).sort((p, q) => p - q);
  const leading = rank >= 2 && axes.length === rank - 1 && axes.every((ax, i) => ax === i);
  if (x.dtype !== 'float32' || !leading) return cpuKernel('Sum')(args);
  const cols = x.shape[rank - 1]!;
  const rows = sizeOf(x.shape) / Math.max(cols, 1);
  const keepDims = args.attrs!.keepDims as boolean;
  const out = backend.output(keepDims ? [...x.shape.slice(0, -1).map(() => 1), cols] : [cols]);
  backend.kernels.colSum(backend.f32(x), backend.f32(out), rows, cols);
  return out;
}

/**
 * Splits and concatenations as block copies: along an axis, every index of the axes before it
 * holds one contiguous run per part. The cpu backend copies a split element by element
 * (its slice): the gradient of the [wq | wk | wv] concatenation took 5.2 s a step on the
 * handout's model (12 splits of 512 × 1536), against milliseconds here.
 */
function blocks(shape: number[], axis: number): { outer: number; inner: number } {
  return { outer: sizeOf(shape.slice(0, axis)), inner: sizeOf(shape.slice(axis + 1)) };
}

function splitV(args: Args): TensorInfo[] {
  const { backend } = args;
  const x = args.inputs.x!;
  if (x.dtype !== 'float32') return cpuKernel('SplitV')(args) as unknown as TensorInfo[];
  const axis = tf.util.parseAxisParam(args.attrs!.axis as number, x.shape)[0]!;
  const sizes = tf.backend_util.prepareSplitSize(
    x as tf.Tensor,
    args.attrs!.numOrSizeSplits as number | number[],
    axis,
  );
  const { outer, inner } = blocks(x.shape, axis);
  const from = backend.f32(x);
  const run = x.shape[axis]! * inner;
  let offset = 0;
  return sizes.map((size) => {
    const out = backend.output(x.shape.map((d, i) => (i === axis ? size : d)));
    const to = backend.f32(out);
    const part = size * inner;
    for (let o = 0; o < outer; o++) to.set(from.subarray(o * run + offset, o * run + offset + part), o * part);
    offset += part;
    return out;
  });
}

function concat(args: Args): TensorInfo {
  const { backend } = args;
  const xs = Object.values(args.inputs) as TensorInfo[];
  const first = xs[0]!;
  const axis = tf.util.parseAxisParam(args.attrs!.axis as number, first.shape)[0]!;
  if (xs.some((x) => x.dtype !== 'float32')) return cpuKernel('Concat')(args);
  const shape = tf.backend_util.computeOutShape(
    xs.map((x) => x.shape),
    axis,
  );
  const out = backend.output(shape);
  const to = backend.f32(out);
  const { outer } = blocks(shape, axis);
  const run = sizeOf(shape) / Math.max(outer, 1);
  let offset = 0;
  for (const x of xs) {
    const part = sizeOf(x.shape) / Math.max(outer, 1);
    const from = backend.f32(x);
    for (let o = 0; o < outer; o++) to.set(from.subarray(o * part, (o + 1) * part), o * run + offset);
    offset += part;
  }
  return out;
}

/** Fused kernels of our own; their gradients are wired up in ops.ts with tf.customGrad. */
function fusedKernels(): KernelConfig[] {
  return [
    kernel('MiniglmLayerNorm', ({ inputs, backend, attrs }) => {
      const { x, gamma, beta } = inputs as Record<string, TensorInfo>;
      const cols = x.shape.at(-1)!;
      const rows = sizeOf(x.shape) / cols;
      const y = backend.output(x.shape);
      const mean = backend.output([rows]);
      const rstd = backend.output([rows]);
      backend.kernels.layerNormFwd(
        backend.f32(x),
        backend.f32(gamma),
        beta ? backend.f32(beta) : null,
        backend.f32(y),
        backend.f32(mean),
        backend.f32(rstd),
        rows,
        cols,
        attrs!.eps as number,
      );
      return [y, mean, rstd];
    }),
    kernel('MiniglmLayerNormGrad', ({ inputs, backend, attrs }) => {
      const { dy, x, gamma, mean, rstd } = inputs as Record<string, TensorInfo>;
      const cols = x.shape.at(-1)!;
      const rows = sizeOf(x.shape) / cols;
      const dx = backend.output(x.shape);
      const dg = backend.output([cols]);
      const db = attrs!.hasBeta ? backend.output([cols]) : undefined;
      backend.kernels.layerNormBwd(
        backend.f32(dy),
        backend.f32(x),
        backend.f32(gamma),
        backend.f32(mean),
        backend.f32(rstd),
        backend.f32(dx),
        backend.f32(dg),
        db ? backend.f32(db) : null,
        rows,
        cols,
      );
      return db ? [dx, dg, db] : [dx, dg];
    }),
    kernel('MiniglmGelu', ({ inputs, backend }) => {
      const x = inputs.x!;
      const y = backend.output(x.shape);
      backend.kernels.geluFwd(backend.f32(x), backend.f32(y));
      return y;
    }),
    kernel('MiniglmGeluGrad', ({ inputs, backend }) => {
      const { x, dy } = inputs as Record<string, TensorInfo>;
      const dx = backend.output(x.shape);
      backend.kernels.geluBwd(backend.f32(x), backend.f32(dy), backend.f32(dx));
      return dx;
    }),
    kernel('MiniglmAttention', ({ inputs, backend, attrs }) => {
      const { q, k, v } = inputs as Record<string, TensorInfo>;
      const [b, t, c] = q.shape as [number, number, number];
      const tk = k.shape[1]!;
      const heads = attrs!.heads as number;
      const y = backend.output(q.shape);
      const p = backend.output([b, heads, t, tk]);
      const hs = c / heads;
      const f = backend.f32.bind(backend);
      backend.kernels.attnFwd(f(q), f(k), f(v), f(y), f(p), b, t, tk, heads, hs, 1 / Math.sqrt(hs), c);
      return [y, p];
    }),
    // The same over one projection qkv [B, T, 3C] (q, k, v side by side), for training.
    kernel('MiniglmAttentionQkv', ({ inputs, backend, attrs }) => {
      const { qkv } = inputs as Record<string, TensorInfo>;
      const [b, t, c3] = qkv.shape as [number, number, number];
      const c = c3 / 3;
      const heads = attrs!.heads as number;
      const hs = c / heads;
      const y = backend.output([b, t, c]);
      const p = backend.output([b, heads, t, t]);
      const all = backend.f32(qkv);
      const f = backend.f32.bind(backend);
      backend.kernels.attnFwd(
        all,
        all.subarray(c),
        all.subarray(2 * c),
        f(y),
        f(p),
        b,
        t,
        t,
        heads,
        hs,
        1 / Math.sqrt(hs),
        c3,
      );
      return [y, p];
    }),
    kernel('MiniglmAttentionQkvGrad', ({ inputs, backend, attrs }) => {
      const { qkv, p, dy } = inputs as Record<string, TensorInfo>;
      const [b, t, c3] = qkv.shape as [number, number, number];
      const c = c3 / 3;
      const heads = attrs!.heads as number;
      const hs = c / heads;
      const dqkv = backend.output(qkv.shape);
      const all = backend.f32(qkv);
      const d = backend.f32(dqkv);
      const f = backend.f32.bind(backend);
      backend.kernels.attnBwd(
        all,
        all.subarray(c),
        all.subarray(2 * c),
        f(p),
        f(dy),
        d,
        d.subarray(c),
        d.subarray(2 * c),
        b,
        t,
        t,
        heads,
        hs,
        1 / Math.sqrt(hs),
        c3,
      );
      return [dqkv];
    }),
    kernel('MiniglmAttentionGrad', ({ inputs, backend, attrs }) => {
      const { q, k, v, p, dy } = inputs as Record<string, TensorInfo>;
      const [b, t, c] = q.shape as [number, number, number];
      const tk = k.shape[1]!;
      const heads = attrs!.heads as number;
      const hs = c / heads;
      const dq = backend.output(q.shape);
      const dk = backend.output(k.shape);
      const dv = backend.output(v.shape);
      const f = backend.f32.bind(backend);
      backend.kernels.attnBwd(
        f(q),
        f(k),
        f(v),
        f(p),
        f(dy),
        f(dq),
        f(dk),
        f(dv),
        b,
        t,
        tk,
        heads,
        hs,
        1 / Math.sqrt(hs),
        c,
      );
      return [dq, dk, dv];
    }),
    kernel('MiniglmCrossEntropy', ({ inputs, backend, attrs }) => {
      const { logits, targets, weights } = inputs as Record<string, TensorInfo>;
      const [rows, vocab] = logits.shape as [number, number];
      const grad = attrs!.withGrad ? backend.output(logits.shape) : undefined;
      const loss = backend.kernels.crossEntropy(
        backend.f32(logits),
        backend.i32(targets),
        backend.f32(weights),
        rows,
        vocab,
        grad ? backend.f32(grad) : null,
      );
      const value = backend.output([], Float32Array.of(loss));
      return grad ? [value, grad] : [value];
    }),
    kernel('MiniglmEmbedding', ({ inputs, backend, attrs }) => {
      const { idx, wte, wpe } = inputs as Record<string, TensorInfo>;
      const [b, t] = idx.shape as [number, number];
      const c = wte.shape[1]!;
      const out = backend.output([b, t, c]);
      backend.kernels.embedFwd(
        backend.i32(idx),
        backend.f32(wte),
        backend.f32(wpe),
        backend.f32(out),
        b,
        t,
        c,
        attrs!.offset as number,
      );
      return out;
    }),
    kernel('MiniglmEmbeddingGrad', ({ inputs, backend, attrs }) => {
      const { idx, dy } = inputs as Record<string, TensorInfo>;
      const [b, t] = idx.shape as [number, number];
      const c = dy.shape.at(-1)!;
      const dwte = backend.output([attrs!.vocab as number, c]);
      const dwpe = backend.output([attrs!.block as number, c]);
      backend.kernels.embedBwd(
        backend.i32(idx),
        backend.f32(dy),
        backend.f32(dwte),
        backend.f32(dwpe),
        b,
        t,
        c,
        attrs!.offset as number,
      );
      return [dwte, dwpe];
    }),
  ];
}
