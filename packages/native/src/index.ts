/**
 * The native kernels (src/kernels.cc, built by build.mjs with g++ against OpenBLAS) as a
 * typed module. `loadNative()` answers the addon, or one line saying why it is not there and
 * how to get it: the model falls back to wasm with that line.
 *
 * Every kernel reads and writes the typed arrays it is given, in place: no copies, so the
 * caller must not hand it arrays that something else still reads as unchanged.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeKernels {
  /** Sets the BLAS thread count when given; returns the count in force. */
  threads(n?: number): number;
  /** OpenBLAS's build configuration, core and processor count. */
  config(): string;
  /** Strided batched sgemm, row-major: C_i = alpha·op(A_i)·op(B_i) + beta·C_i. */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    offA: number,
    lda: number,
    strideA: number,
    b: Float32Array,
    offB: number,
    ldb: number,
    strideB: number,
    beta: number,
    c: Float32Array,
    offC: number,
    ldc: number,
    strideC: number,
    batch: number,
  ): void;
  layerNormFwd(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array | null,
    y: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  layerNormBwd(
    dy: Float32Array,
    x: Float32Array,
    gamma: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array | null,
    rows: number,
    cols: number,
  ): void;
  geluFwd(x: Float32Array, y: Float32Array): void;
  geluBwd(x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  attnFwd(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    y: Float32Array,
    p: Float32Array,
    b: number,
    t: number,
    tk: number,
    heads: number,
    headSize: number,
    scale: number,
    /** Row stride of q, k and v: C, or 3C when they are column blocks of one [B, T, 3C] array. */
    ld: number,
  ): void;
  attnBwd(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    p: Float32Array,
    dy: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    b: number,
    t: number,
    tk: number,
    heads: number,
    headSize: number,
    scale: number,
    /** Row stride of q, k, v, dq, dk and dv (dy's is C). */
    ld: number,
  ): void;
  /** Weighted mean cross-entropy from logits; writes its gradient into `grad` when given. */
  crossEntropy(
    logits: Float32Array,
    targets: Int32Array,
    weights: Float32Array,
    rows: number,
    vocab: number,
    grad: Float32Array | null,
  ): number;
  /** out[i] = a[i] op b[i mod period]; op 0 add, 1 sub, 2 mul, 3 div. */
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, n: number, period: number): void;
  colSum(x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  embedFwd(
    idx: Int32Array,
    wte: Float32Array,
    wpe: Float32Array,
    out: Float32Array,
    b: number,
    t: number,
    c: number,
    offset: number,
  ): void;
  embedBwd(
    idx: Int32Array,
    dy: Float32Array,
    dwte: Float32Array,
    dwpe: Float32Array,
    b: number,
    t: number,
    c: number,
    offset: number,
  ): void;
  sumSquares(arrays: Float32Array[]): number;
  adamw(
    params: Float32Array[],
    grads: Float32Array[],
    m: Float32Array[],
    v: Float32Array[],
    decay: Uint8Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    c1: number,
    c2: number,
    gradScale: number,
  ): void;
  /**
   * Runs a GPT over t new tokens of n sequences after `pos` cached ones (dims: n, t, pos, C,
   * heads, layers, vocab, block), appending keys and values to the per-layer caches
   * [n, block, C]; writes each sequence's last logits [n, vocab]. `packed` ([weight, scale]
   * pairs from packWeight for wq, wk, wv, wo, wfc, wproj of each layer, then wte) is what a
   * call of a few rows reads; more rows (a prompt) use the float32 weights.
   */
  gptDecode(
    weights: (Float32Array | null)[],
    dims: Int32Array,
    kCache: Float32Array[],
    vCache: Float32Array[],
    idx: Int32Array,
    logits: Float32Array,
    eps: number,
    packed: PackedWeight[] | null,
  ): void;
  /**
   * W [K, N] (or [N, K] with outputRows) copied into out as [N, K], one row per output, in
   * out's format: float32, IEEE half (Uint16Array) or int8 with one scale per output.
   */
  /** How fast all threads read memory, in GB/s (best of five passes over that many megabytes). */
  readBandwidth(megabytes: number): number;
  packWeight(w: Float32Array, k: number, n: number, out: PackedWeight, scale: Float32Array, outputRows: boolean): void;
}

/** A weight copied for decoding: float32, IEEE half bits, or int8 (with its scales beside it). */
export type PackedWeight = Float32Array | Uint16Array | Int8Array;

const here = path.dirname(fileURLToPath(import.meta.url));
const buildDir = path.join(here, '..', 'build');
export const ADDON_PATH = path.join(buildDir, 'miniglm_native.node');
const HOW_TO_GET =
  'install g++ and OpenBLAS (Debian/Ubuntu: apt-get install -y g++ libopenblas-dev), then run node scripts/ensure-deps.mjs';

let loaded: { kernels: NativeKernels } | { reason: string } | undefined;

/** The addon, or why it cannot be loaded (one line, ending with how to get it). */
export function loadNative(): { kernels: NativeKernels } | { reason: string } {
  if (loaded) return loaded;
  if (process.env.MINIGLM_NO_NATIVE)
    return (loaded = { reason: 'MINIGLM_NO_NATIVE is set (unset it to use the native kernels)' });
  if (!fs.existsSync(ADDON_PATH)) {
    const why = path.join(buildDir, 'unavailable.txt');
    const reason = fs.existsSync(why)
      ? fs.readFileSync(why, 'utf8').trim()
      : `the native kernels are not built; ${HOW_TO_GET}`;
    return (loaded = { reason });
  }
  try {
    const require = createRequire(import.meta.url);
    return (loaded = { kernels: require(ADDON_PATH) as NativeKernels });
  } catch (error) {
    const first = (error instanceof Error ? error.message : String(error)).split('\n')[0];
    return (loaded = { reason: `the native kernels did not load (${first}); ${HOW_TO_GET}` });
  }
}
