/**
 * Kernels we register on the wasm backend so that training is fast and complete there.
 *
 * Measured on this project's 2-core machine (tfjs 4.22, one wasm thread, SIMD):
 * - XNNPACK only serves a plain 2-D matMul: [2048,128]x[128,384] takes 5.6 ms (36 GFLOP/s).
 *   The same product with transposeB takes 70 ms, and a batched [64,128,32]x[64,32,128]
 *   takes 25 ms (2.7 GFLOP/s) in the backend's generic loop.
 * - Slicing a batch out of a tensor copies the whole tensor first (readSync), so looping
 *   over batch rows with tf.slice / tf.unstack costs more than the slow kernel it replaces.
 *
 * So `BatchMatMul` is replaced by one that (1) materializes a transposed operand with the
 * backend's own Transpose kernel and (2) runs one XNNPACK matmul per batch entry on views
 * into the operands' wasm memory: no copies, no tape entries, same results.
 * `UnsortedSegmentSum` (the gradient of `gather`, i.e. of the token embedding) has no wasm
 * kernel at all; ours is a plain loop over the heap.
 * `Sum` over leading axes ([2048,128] → [128], the gradient of every bias and broadcast
 * add) transposes first and takes 2.6 ms; a column-sum loop over the heap takes 0.3 ms.
 * `OneHot` with dtype float32 writes the integer bit pattern of 1 into the float buffer
 * (reading back 1.4e-45), which silently zeroes a cross-entropy's target term; ours builds
 * the int32 one-hot and casts it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

/** The parts of tfjs-backend-wasm's BackendWasm that these kernels use. */
interface WasmBackend {
  wasm: {
    cwrap: (name: string, ret: null, args: string[]) => (...args: unknown[]) => void;
    tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
  };
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object): void;
}

type KernelArgs = { inputs: Record<string, TensorInfo>; backend: WasmBackend; attrs: Record<string, unknown> };

let registered = false;

/** Registers our wasm kernels once; call after the wasm backend is registered. */
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  const transpose = tf.getKernel('Transpose', 'wasm');
  const original = tf.getKernel('BatchMatMul', 'wasm');
  if (!transpose || !original) throw new Error('wasm backend kernels are not registered');
  replaceKernel(batchMatMulConfig(original, transpose.kernelFunc));
  replaceKernel(sumConfig(tf.getKernel('Sum', 'wasm')!));
  replaceKernel(oneHotConfig(tf.getKernel('OneHot', 'wasm')!, tf.getKernel('Cast', 'wasm')!.kernelFunc));
  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) tf.registerKernel(unsortedSegmentSumConfig);
}

function replaceKernel(config: KernelConfig): void {
  tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}

function batchMatMulConfig(original: KernelConfig, transposeKernel: KernelFunc): KernelConfig {
  // The C++ entry point: (aId, aShape, aRank, bId, bShape, bRank, transA, transB, outId).
  // Bound lazily: a kernel registered after the backend started never gets its setupFunc.
  let wasmBatchMatMul: ((...args: unknown[]) => void) | undefined;
  const shapeBytes = (shape: number[]) => new Uint8Array(new Int32Array(shape).buffer);

  const size = (t: TensorInfo) => t.shape.reduce((n, d) => n * d, 1);

  const kernelFunc = (({ inputs, backend, attrs }: KernelArgs): TensorInfo => {
    const { a, b } = inputs;
    const transposeA = attrs.transposeA as boolean;
    const transposeB = attrs.transposeB as boolean;
    const batchA = size(a) / (a.shape.at(-1)! * a.shape.at(-2)!);
    const batchB = size(b) / (b.shape.at(-1)! * b.shape.at(-2)!);
    if (!transposeA && !transposeB && batchA === 1 && batchB === 1) {
      return original.kernelFunc({ inputs, backend: backend as never, attrs: attrs as never }) as TensorInfo;
    }
    wasmBatchMatMul ??= backend.wasm.cwrap('BatchMatMul', null, [
      'number',
      'array',
      'number',
      'number',
      'array',
      'number',
      'number',
      'number',
      'number',
    ]);
    // Transposes cost time in proportion to their size, so pick the cheaper of
    //   op(A)·op(B)                      (transpose whichever operand is flagged), and
    //   (op(B)ᵀ·op(A)ᵀ)ᵀ                 (transpose the unflagged operands and the result).
    // For the tied output layer's weight gradient, dlogitsᵀ·h, the second avoids
    // transposing the [tokens, vocab] logits gradient: 0.8M elements moved instead of 8M.
    const m = transposeA ? a.shape.at(-1)! : a.shape.at(-2)!;
    const n = transposeB ? b.shape.at(-2)! : b.shape.at(-1)!;
    const direct = (transposeA ? size(a) : 0) + (transposeB ? size(b) : 0);
    const swapped = (transposeA ? 0 : size(a)) + (transposeB ? 0 : size(b)) + Math.max(batchA, batchB) * m * n;
    if (swapped < direct) {
      const outT = multiply(backend, b, a, !transposeB, !transposeA);
      const out = swapLastTwo(backend, outT);
      backend.disposeData(outT.dataId);
      return out;
    }
    return multiply(backend, a, b, transposeA, transposeB);
  }) as unknown as KernelFunc;

  const swapLastTwo = (backend: WasmBackend, t: TensorInfo): TensorInfo => {
    const perm = t.shape.map((_, i) => i);
    perm.push(perm.splice(-2, 1)[0]!);
    return transposeKernel({ inputs: { x: t }, backend: backend as never, attrs: { perm } }) as TensorInfo;
  };

  /** op(a)·op(b): materializes flagged operands transposed, then one XNNPACK matmul per batch entry. */
  const multiply = (
    backend: WasmBackend,
    a: TensorInfo,
    b: TensorInfo,
    transposeA: boolean,
    transposeB: boolean,
  ): TensorInfo => {
    const temporaries: TensorInfo[] = [];
    if (transposeA) temporaries.push((a = swapLastTwo(backend, a)));
    if (transposeB) temporaries.push((b = swapLastTwo(backend, b)));
    const batchA = size(a) / (a.shape.at(-1)! * a.shape.at(-2)!);
    const batchB = size(b) / (b.shape.at(-1)! * b.shape.at(-2)!);
    const [m, k] = a.shape.slice(-2) as [number, number];
    const [k2, n] = b.shape.slice(-2) as [number, number];
    if (k !== k2)
      throw new Error(`matMul: inner dimensions ${k} and ${k2} of shapes [${a.shape}] and [${b.shape}] differ`);
    if (batchA !== batchB && batchA !== 1 && batchB !== 1)
      throw new Error(`matMul: batch dimensions of [${a.shape}] and [${b.shape}] cannot be broadcast`);
    const batch = Math.max(batchA, batchB);
    const outerShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    // One operand's batch repeats against the other's; both broadcasting ([1,3] × [3,1]) is
    // not supported (tfjs' own kernels do not support it either).
    if (outerShape.reduce((n, d) => n * d, 1) !== batch)
      throw new Error(`matMul: batch dimensions of [${a.shape}] and [${b.shape}] broadcast in both directions`);
    const out = backend.makeOutput([...outerShape, m, n], 'float32');

    const aInfo = backend.dataIdMap.get(a.dataId);
    const bInfo = backend.dataIdMap.get(b.dataId);
    const outInfo = backend.dataIdMap.get(out.dataId);
    const aShape = shapeBytes([1, m, k]);
    const bShape = shapeBytes([1, k, n]);
    for (let i = 0; i < batch; i++) {
      // Views into the operands' memory, registered under fresh ids so that XNNPACK's
      // operator cache (keyed by the weights' id) never confuses two batch entries.
      const aId = view(backend, aInfo.memoryOffset + (batchA === 1 ? 0 : i * m * k) * 4, m * k);
      const bId = view(backend, bInfo.memoryOffset + (batchB === 1 ? 0 : i * k * n) * 4, k * n);
      const outId = view(backend, outInfo.memoryOffset + i * m * n * 4, m * n);
      wasmBatchMatMul!(aId, aShape, 3, bId, bShape, 3, false, false, outId);
      backend.wasm.tfjs.disposeData(aId);
      backend.wasm.tfjs.disposeData(bId);
      backend.wasm.tfjs.disposeData(outId);
    }
    for (const t of temporaries) backend.disposeData(t.dataId);
    return out;
  };

  return {
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    setupFunc: original.setupFunc,
    kernelFunc,
  };
}

function sumConfig(original: KernelConfig): KernelConfig {
  return {
    kernelName: 'Sum',
    backendName: 'wasm',
    setupFunc: original.setupFunc,
    kernelFunc: (({ inputs, backend, attrs }: KernelArgs): TensorInfo => {
      const { x } = inputs;
      const rank = x.shape.length;
      const axes = (Array.isArray(attrs.axis) ? (attrs.axis as number[]) : [attrs.axis as number]).map((a) =>
        a < 0 ? a + rank : a,
      );
      const leading = axes.length > 0 && axes.length < rank && [...axes].sort((a, b) => a - b).every((a, i) => a === i);
      if (x.dtype !== 'float32' || !leading) {
        return original.kernelFunc({ inputs, backend: backend as never, attrs: attrs as never }) as TensorInfo;
      }
      const kept = x.shape.slice(axes.length);
      const cols = kept.reduce((n, d) => n * d, 1);
      const rows = x.shape.slice(0, axes.length).reduce((n, d) => n * d, 1);
      const out = backend.makeOutput(attrs.keepDims ? [...axes.map(() => 1), ...kept] : kept, 'float32');
      const xVals = backend.typedArrayFromHeap(x);
      const acc = new Float64Array(cols); // float64: thousands of rows add up without drift
      for (let r = 0; r < rows; r++) {
        const base = r * cols;
        for (let c = 0; c < cols; c++) acc[c]! += xVals[base + c]!;
      }
      backend.typedArrayFromHeap(out).set(acc);
      return out;
    }) as unknown as KernelFunc,
  };
}

function oneHotConfig(original: KernelConfig, cast: KernelFunc): KernelConfig {
  return {
    kernelName: 'OneHot',
    backendName: 'wasm',
    setupFunc: original.setupFunc,
    kernelFunc: (({ inputs, backend, attrs }: KernelArgs): TensorInfo => {
      const run = (a: Record<string, unknown>) =>
        original.kernelFunc({ inputs, backend: backend as never, attrs: a as never }) as TensorInfo;
      if (attrs.dtype === 'int32') return run(attrs);
      const ints = run({ ...attrs, dtype: 'int32' });
      const out = cast({
        inputs: { x: ints },
        backend: backend as never,
        attrs: { dtype: attrs.dtype } as never,
      }) as TensorInfo;
      backend.disposeData(ints.dataId);
      return out;
    }) as unknown as KernelFunc,
  };
}

/** Registers `size` floats at byte `offset` of the wasm heap as a tensor id of its own. */
function view(backend: WasmBackend, offset: number, size: number): number {
  const id = backend.dataIdNextNumber++;
  backend.wasm.tfjs.registerTensor(id, size, offset);
  return id;
}

const unsortedSegmentSumConfig: KernelConfig = {
  kernelName: 'UnsortedSegmentSum',
  backendName: 'wasm',
  kernelFunc: (({ inputs, backend, attrs }: KernelArgs): TensorInfo => {
    const { x, segmentIds } = inputs;
    const numSegments = attrs.numSegments as number;
    if (x.dtype !== 'float32') throw new Error(`UnsortedSegmentSum on wasm supports float32, got ${x.dtype}`);
    const inner = x.shape.slice(segmentIds.shape.length).reduce((n, d) => n * d, 1);
    const out = backend.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], 'float32');
    const outVals = backend.typedArrayFromHeap(out);
    outVals.fill(0);
    const xVals = backend.typedArrayFromHeap(x);
    const ids = backend.typedArrayFromHeap(segmentIds);
    for (let row = 0; row < ids.length; row++) {
      const seg = ids[row]!;
      if (seg < 0 || seg >= numSegments) continue; // TensorFlow drops out-of-range ids
      const src = row * inner;
      const dst = seg * inner;
      for (let j = 0; j < inner; j++) outVals[dst + j]! += xVals[src + j]!;
    }
    return out;
  }) as unknown as KernelFunc,
};
