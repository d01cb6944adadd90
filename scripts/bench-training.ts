/**
 * What `npm run bench` and scripts/profile-step.ts train: the bench's two configs on uniform
 * random tokens (as torch_ref.py trains on: throughput does not depend on the data), with
 * torch_ref's AdamW (lr 1e-3, weight decay 0.01) and a curriculum stage's other defaults.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRng, type Batch, type BatchSampler, type SamplerState } from '@miniglm/data';
import { createModel, parameterCount, resolveModelConfig, trainStage, type StepMetrics } from '@miniglm/model';

export const WARMUP = 3;
export interface BenchConfig {
  vocab: number;
  layers: number;
  heads: number;
  dim: number;
  block: number;
  batch: number;
}
export const REF: BenchConfig = { vocab: 4096, layers: 4, heads: 4, dim: 128, block: 128, batch: 16 };
export const HANDOUT: BenchConfig = { vocab: 8192, layers: 6, heads: 8, dim: 512, block: 256, batch: 8 };

/** Uniform random tokens. */
function randomSampler(vocab: number, batchSize: number, blockSize: number): BatchSampler {
  const rng = createRng(0);
  let drawn = 0;
  const ids = () => Int32Array.from({ length: batchSize * blockSize }, () => rng.int(vocab));
  return {
    batchSize,
    blockSize,
    next: (): Batch => (drawn++, { batchSize, blockSize, x: ids(), y: ids() }),
    getState: (): SamplerState => ({ kind: 'pretrain', rng: rng.getState(), drawn }),
    setState: (s) => rng.setState(s.rng),
  };
}

export function gptOf(c: BenchConfig, vocab = c.vocab) {
  return resolveModelConfig({
    kind: 'gpt',
    vocabSize: vocab,
    blockSize: c.block,
    layers: c.layers,
    heads: c.heads,
    dim: c.dim,
    bias: true,
  });
}

/** Trains a fresh model of `c` for WARMUP + `steps` steps; returns its parameter count. */
export async function trainOnRandomTokens(
  c: BenchConfig,
  steps: number,
  onMetrics: (m: StepMetrics) => void,
): Promise<number> {
  const model = createModel(gptOf(c), 0);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-bench-'));
  try {
    await trainStage({
      model,
      tokenizer: { name: 'char' },
      sampler: randomSampler(c.vocab, c.batch, c.block),
      valBatches: () => [],
      options: {
        iterations: WARMUP + steps,
        gradAccum: 1,
        lr: 1e-3,
        minLr: 1e-4,
        warmup: 100,
        weightDecay: 0.01,
        beta1: 0.9,
        beta2: 0.99,
        gradClip: 1,
        evalEvery: 1e9,
        checkpointEvery: 1e9,
      },
      checkpointPath: path.join(dir, 'bench.ckpt'),
      onMetrics,
    });
    return parameterCount(model);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    model.dispose();
  }
}
