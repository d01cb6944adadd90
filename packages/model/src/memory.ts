/**
 * How much memory training takes, estimated before anything is allocated: a model that does
 * not fit fails at once with the numbers, instead of growing the backend's memory for minutes
 * and dying in it (on wasm: `Aborted()` once the heap reaches 4 GiB).
 *
 * In bytes, with B the batch size, T the block size, L layers, C dim, H heads, V vocabulary
 * and P parameters (float32: 4 bytes a number):
 *
 *   parameters   16·P          weights, their gradients and AdamW's two moments
 *   activations  4·B·T·a + r   what one training step holds at its peak: every position's
 *                              activations, kept for the backward pass, and their gradients
 *                              (tfjs frees a node's gradient only when the backward pass ends)
 *   GPT    a = 195·L·C + 9·L·H·T + 34·C + 5·V,   dropout adds 15·L·C + 4·L·H·T;  r = 0
 *   LSTM   a =  77·L·C + 8·C + 6·V,              dropout adds 5·(L+1)·C;
 *          r = 32·L·T·C²: the recurrent weights' gradient of every time step, kept to the end
 *
 * The coefficients are measured, not derived: tf.profile's peakBytes (the tensor bytes tfjs
 * counts) over a whole training step (forward, backward, clipping, AdamW) with tfjs 4.22, for
 * 31 configurations (L 1-4, C 16-256, T 16-256, V 100-5000, B 4-32, with and without dropout)
 * and three of 2.4-4.6 GiB. The formula is within 5% of every one, within 1% of the three.
 *
 * On wasm the heap holds less than tfjs counts: 86-88% at 2.4-4.6 GiB (its heap size after the
 * step; 4 layers, C 128, T 128, V 1000). That model trained with batch 76 (counted 4.6 GiB) and
 * aborted with batch 80 (estimated 4.9 GiB). So on wasm the estimate is the count × 0.84, below
 * every share measured: a model this refuses would not have fit, and one that misses by less
 * than a few percent still dies in the backend. Other backends hold what tfjs counts.
 *
 * The native backend (backend/native.ts) runs LayerNorm, GELU, attention and the loss as fused
 * kernels that keep fewer intermediates: there a = 72·L·C + 1.1·L·H·T + 9·C + 2.5·V and the
 * parameters take 22·P (the embedding's gradient arrives by two paths and is added), fitted
 * the same way (tf.profile's peakBytes, 12 configurations, L 1-4, C 32-256, T 32-256, H 2-8,
 * V 100-4096, B 1-16; within 5% of each, rounded up). Refitted on 7 of them when q, k and v
 * became one projection (80 → 72·L·C; activations 0.5-7 % above the measured peak).
 *
 * Not counted: gradient accumulation (gradAccum > 1) holds up to two more copies of the
 * gradients while it adds them up; datasets live outside the backend's memory.
 */
import os from 'node:os';
import { UserError } from '@miniglm/data';
import { countParameters, type ModelConfig } from './config.ts';

export interface TrainingMemory {
  /** Weights, gradients and AdamW's two moments: 16 bytes a parameter. */
  parameters: number;
  /** What one training step of `batchSize` sequences of `blockSize` holds for its backward pass. */
  activations: number;
  total: number;
}

/** The share of the counted bytes that the wasm heap holds (see above). */
const WASM_HEAP_SHARE = 0.84;

/**
 * Bytes training `config` takes at its peak on `backend`, for batches of `batchSize` ×
 * config.blockSize tokens. Without a backend: the tensor bytes tfjs counts.
 */
export function estimateTrainingMemory(config: ModelConfig, batchSize: number, backend?: string): TrainingMemory {
  const { layers: L, dim: C, blockSize: T, vocabSize: V } = config;
  const dropout = config.dropout > 0;
  let perPosition: number;
  let perStep = 0;
  if (config.kind === 'gpt' && backend === 'native' && !dropout) {
    const H = config.heads;
    const parameters = 22 * countParameters(config);
    const activations = 4 * batchSize * T * (72 * L * C + 1.1 * L * H * T + 9 * C + 2.5 * V);
    return { parameters, activations, total: parameters + activations };
  }
  if (config.kind === 'gpt') {
    const H = config.heads;
    perPosition = 195 * L * C + 9 * L * H * T + 34 * C + 5 * V + (dropout ? 15 * L * C + 4 * L * H * T : 0);
  } else {
    perPosition = 77 * L * C + 8 * C + 6 * V + (dropout ? 5 * (L + 1) * C : 0);
    perStep = 32 * L * T * C * C;
  }
  const share = backend === 'wasm' ? WASM_HEAP_SHARE : 1;
  const parameters = share * 16 * countParameters(config);
  const activations = share * (4 * batchSize * T * perPosition + perStep);
  return { parameters, activations, total: parameters + activations };
}

/** The most memory training may take on a backend, and how to say so. */
export function memoryLimit(backend: string): { bytes: number; what: string } {
  // wasm32 addresses 4 GiB; tfjs-backend-wasm's heap stops one 64 KiB page short (getHeapMax).
  if (backend === 'wasm') return { bytes: 4 * 1024 ** 3 - 64 * 1024, what: 'the wasm backend can address' };
  return { bytes: os.totalmem(), what: `this machine has (backend ${backend})` };
}

/** Training that would not fit in the backend's memory. */
export class MemoryLimitError extends UserError {}

/**
 * Throws MemoryLimitError, naming the batch size, the estimate and the limit, when training
 * `config` with `batchSize` would need more memory than `backend` has. Returns the estimate.
 */
export function checkTrainingFits(config: ModelConfig, batchSize: number, backend: string): TrainingMemory {
  const need = estimateTrainingMemory(config, batchSize, backend);
  const limit = memoryLimit(backend);
  if (need.total > limit.bytes)
    throw new MemoryLimitError(
      `training this model with batchSize ${batchSize} and blockSize ${config.blockSize} needs about ` +
        `${formatBytes(need.total)} (parameters with their gradients and AdamW moments ${formatBytes(need.parameters)}, ` +
        `activations ${formatBytes(need.activations)}), more than the ${formatBytes(limit.bytes)} ${limit.what}; ` +
        `use a smaller batchSize (gradAccum keeps the effective batch), blockSize or model`,
    );
  return need;
}

export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}
