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

  const kernelFunc = (({ inputs, backend, attrs }: KernelArgs): TensorInfo => {
    let { a, b } = inputs;
    const transposeA = attrs.transposeA as boolean;
    const transposeB = attrs.transposeB as boolean;
    const batchA = a.shape.slice(0, -2).reduce((n, d) => n * d, 1);
    const batchB = b.shape.slice(0, -2).reduce((n, d) => n * d, 1);
    if (!transposeA && !transposeB && batchA === 1 && batchB === 1) {
      return original.kernelFunc({ inputs, backend: backend as never, attrs: attrs as never }) as TensorInfo;
    }
    wasmBatchMatMul ??= backend.wasm.cwrap('BatchMatMul', null, [
      'number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number',
    ]);
    const temporaries: TensorInfo[] = [];
    const swapLastTwo = (t: TensorInfo): TensorInfo => {
      const perm = t.shape.map((_, i) => i);
      perm.push(perm.splice(-2, 1)[0]!);
      const out = transposeKernel({ inputs: { x: t }, backend: backend as never, attrs: { perm } }) as TensorInfo;
      temporaries.push(out);
      return out;
    };
    if (transposeA) a = swapLastTwo(a);
    if (transposeB) b = swapLastTwo(b);

    const [m, k] = a.shape.slice(-2) as [number, number];
    const [k2, n] = b.shape.slice(-2) as [number, number];
    if (k !== k2) throw new Error(`matMul: inner dimensions ${k} and ${k2} of shapes [${a.shape}] and [${b.shape}] differ`);
    if (batchA !== batchB && batchA !== 1 && batchB !== 1)
      throw new Error(`matMul: batch dimensions of [${a.shape}] and [${b.shape}] cannot be broadcast`);
    const batch = Math.max(batchA, batchB);
    const outerShape = (batchA >= batchB ? a : b).shape.slice(0, -2);
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
      wasmBatchMatMul(aId, aShape, 3, bId, bShape, 3, false, false, outId);
      backend.wasm.tfjs.disposeData(aId);
      backend.wasm.tfjs.disposeData(bId);
      backend.wasm.tfjs.disposeData(outId);
    }
    for (const t of temporaries) backend.disposeData(t.dataId);
    return out;
  }) as unknown as KernelFunc;

  return {
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    setupFunc: original.setupFunc,
    kernelFunc,
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
