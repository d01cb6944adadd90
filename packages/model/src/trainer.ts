/**
 * The training loop of one stage: AdamW, cosine learning rate with warmup, gradient
 * accumulation and clipping, evaluation on held-out batches every N iterations, periodic
 * checkpoints, and a metrics callback. A stage started from a checkpoint written at step k
 * continues exactly as if it had never stopped (same batches, same dropout, same updates).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Batch, BatchSampler, TokenizerSpec } from '@miniglm/data';
import { AdamW, clipByGlobalNorm } from './adamw.ts';
import { activeBackend, backendThreads } from './backend/select.ts';
import { saveCheckpoint } from './checkpoint.ts';
import { decays, type LanguageModel } from './model.ts';
import { maskedCrossEntropy } from './ops.ts';
import { learningRate } from './schedule.ts';

/**
 * Every option is given: the trainer has no defaults of its own. A curriculum's come from
 * core's DEFAULTS (filled in by parseCurriculum, turned into these by core's trainOptions),
 * so there is one copy of them to read and to change.
 */
export interface TrainOptions {
  /** Optimizer steps in this stage. */
  iterations: number;
  /** Micro-batches per optimizer step; the effective batch is batchSize × gradAccum. */
  gradAccum: number;
  /** Peak learning rate, reached after `warmup` steps, then cosine-decayed to `minLr` at `iterations`. */
  lr: number;
  minLr: number;
  warmup: number;
  /** AdamW's decoupled weight decay (on matrices and embeddings only). */
  weightDecay: number;
  beta1: number;
  beta2: number;
  /** Global gradient-norm limit; 0 turns clipping off. */
  gradClip: number;
  /** Steps between val-loss evaluations (and the last step). */
  evalEvery: number;
  /** Steps between checkpoints (and the last step). */
  checkpointEvery: number;
}

export interface StepMetrics {
  step: number;
  trainLoss: number;
  /** Present on evaluation steps. */
  valLoss?: number;
  lr: number;
  gradNorm: number;
  tokensPerSec: number;
  backend: string;
}

export interface TrainStageInput {
  model: LanguageModel;
  tokenizer: TokenizerSpec;
  sampler: BatchSampler;
  /** Fixed held-out batches, so val loss is comparable across evaluations. */
  valBatches: () => Iterable<Batch>;
  options: TrainOptions;
  /** Where checkpoints go (one file, replaced atomically). */
  checkpointPath: string;
  /** To resume: the optimizer and step restored from a checkpoint of this stage. */
  resume?: { optimizer: AdamW; step: number };
  /** Extra context stored in every checkpoint (stage name, parent, ...). */
  checkpointMeta?: Record<string, unknown>;
  onMetrics?: (m: StepMetrics) => void;
  /**
   * Called after each checkpoint is written; training goes on once it resolves, so a caller
   * that stores checkpoints slower than they are made slows training down instead of
   * falling behind (backpressure).
   */
  onCheckpoint?: (step: number, file: string) => void | Promise<void>;
  /** Polled between iterations: true stops the stage after a checkpoint (cancel, SIGTERM). */
  shouldStop?: () => boolean;
  /**
   * Fewest seconds between two periodic checkpoints (default 0: every `checkpointEvery`
   * steps). A step `checkpointEvery` names is passed over while the last checkpoint of this
   * call is younger than this, so a fast stage with a small `checkpointEvery` cannot flood
   * the store. The first checkpoint, the stage's last step and a stop are always written.
   * Skipping one changes nothing but what is saved: resuming from any written one is exact.
   */
  minCheckpointSeconds?: number;
}

export type StageOutcome =
  | { status: 'finished' | 'stopped'; step: number; trainLoss: number; valLoss?: number; checkpoint: string }
  /** Loss became NaN or infinite: no checkpoint is written past the last good one. */
  | { status: 'diverged'; step: number; message: string; checkpoint?: string };

/** Loss of one batch (masked for SFT), as a scalar tensor the caller disposes. */
export function batchLoss(model: LanguageModel, batch: Batch, training: boolean, seed?: number): tf.Scalar {
  return tf.tidy(() => {
    const x = tf.tensor2d(batch.x, [batch.batchSize, batch.blockSize], 'int32');
    const y = tf.tensor1d(batch.y, 'int32');
    const w = batch.mask ? tf.tensor1d(batch.mask, 'float32') : tf.ones([batch.x.length]);
    return maskedCrossEntropy(model.logits(x, { training, seed }), y, w as tf.Tensor1D);
  });
}

/** Mean loss over held-out batches, weighted by counted positions. */
export function evaluateLoss(model: LanguageModel, batches: Iterable<Batch>): number {
  let sum = 0;
  let weight = 0;
  for (const b of batches) {
    const w = b.mask ? b.mask.reduce((s, m) => s + m, 0) : b.x.length;
    if (w === 0) continue;
    const loss = batchLoss(model, b, false);
    sum += loss.dataSync()[0]! * w;
    weight += w;
    loss.dispose();
  }
  return weight > 0 ? sum / weight : NaN;
}

export async function trainStage(input: TrainStageInput): Promise<StageOutcome> {
  const { model, sampler, options: o } = input;
  const optimizer =
    input.resume?.optimizer ??
    new AdamW({ beta1: o.beta1, beta2: o.beta2, eps: 1e-8, weightDecay: o.weightDecay }, (n) =>
      decays(model.params.get(n)!),
    );
  const schedule = { lr: o.lr, minLr: o.minLr, warmup: o.warmup, decayIters: o.iterations };
  // tfjs reports gradients under the variables' own (generated) names.
  const byVarName = new Map([...model.params].map(([name, v]) => [v.name, name]));
  const vars = [...model.params.values()];
  const tokensPerStep = sampler.batchSize * sampler.blockSize * o.gradAccum;

  let step = input.resume?.step ?? 0;
  let lastCheckpoint = input.resume ? input.checkpointPath : undefined;
  let lastCheckpointStep = input.resume?.step;
  let trainLoss = NaN;
  let valLoss: number | undefined;
  const minCheckpointMs = (input.minCheckpointSeconds ?? 0) * 1000;
  // When the last checkpoint was stored (the caller's onCheckpoint included); none yet.
  let lastCheckpointAt = -Infinity;
  const checkpoint = async () => {
    await saveCheckpoint(input.checkpointPath, {
      model,
      tokenizer: input.tokenizer,
      step,
      optimizer,
      sampler: sampler.getState(),
      // The backend and its BLAS thread count: results depend on both (see backend/select.ts).
      meta: { ...input.checkpointMeta, trainLoss, valLoss, backend: activeBackend(), threads: backendThreads() },
    });
    lastCheckpoint = input.checkpointPath;
    lastCheckpointStep = step;
    await input.onCheckpoint?.(step, input.checkpointPath);
    lastCheckpointAt = performance.now();
  };

  const diverged = (what: string): StageOutcome => ({
    status: 'diverged',
    step,
    message:
      `${what} at step ${step + 1}; the stage stopped` +
      (lastCheckpoint
        ? ` and kept its last good checkpoint (step ${lastCheckpointStep}) at ${lastCheckpoint}`
        : ' before writing any checkpoint'),
    checkpoint: lastCheckpoint,
  });

  // An optimizer made here is ours to free; a resumed one belongs to the caller.
  const ownsOptimizer = !input.resume;
  try {
    while (step < o.iterations) {
      if (input.shouldStop?.()) {
        await checkpoint();
        return { status: 'stopped', step, trainLoss, valLoss, checkpoint: input.checkpointPath };
      }
      const started = performance.now();
      const lr = learningRate(step, schedule);
      let grads = new Map<string, tf.Tensor>();
      let lossSum = 0;
      for (let micro = 0; micro < o.gradAccum; micro++) {
        const batch = sampler.next();
        const { value, grads: g } = tf.variableGrads(
          () => batchLoss(model, batch, true, step * o.gradAccum + micro),
          vars,
        );
        lossSum += value.dataSync()[0]!;
        value.dispose();
        for (const [varName, grad] of Object.entries(g)) {
          const name = byVarName.get(varName)!;
          const prev = grads.get(name);
          const scaled = o.gradAccum > 1 ? tf.tidy(() => tf.div(grad, o.gradAccum)) : grad;
          if (scaled !== grad) grad.dispose();
          grads.set(name, prev ? tf.tidy(() => tf.add(prev, scaled)) : scaled);
          if (prev) {
            prev.dispose();
            scaled.dispose();
          }
        }
      }
      trainLoss = lossSum / o.gradAccum;
      if (!Number.isFinite(trainLoss)) {
        tf.dispose([...grads.values()]);
        return diverged(`loss became ${trainLoss}`);
      }
      const clipped = clipByGlobalNorm(grads, o.gradClip);
      grads = clipped.grads;
      if (!Number.isFinite(clipped.norm)) {
        // A finite loss can still have an overflowing gradient: updating would write NaN
        // into the weights (and the next checkpoint), so stop here like for a NaN loss.
        tf.dispose([...grads.values()]);
        return diverged(`the gradient norm became ${clipped.norm}`);
      }
      optimizer.apply(model.params, grads, lr);
      tf.dispose([...grads.values()]);
      step += 1;

      const seconds = (performance.now() - started) / 1000; // training only, not evaluation
      const isEval = step % o.evalEvery === 0 || step === o.iterations;
      if (isEval) valLoss = evaluateLoss(model, input.valBatches());
      input.onMetrics?.({
        step,
        trainLoss,
        valLoss: isEval ? valLoss : undefined,
        lr,
        gradNorm: clipped.norm,
        tokensPerSec: tokensPerStep / seconds,
        backend: activeBackend(),
      });
      const periodic = step % o.checkpointEvery === 0 && performance.now() - lastCheckpointAt >= minCheckpointMs;
      if (periodic || step === o.iterations) await checkpoint();
      // Let timers, signals and progress output run between (synchronous) iterations.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return { status: 'finished', step, trainLoss, valLoss, checkpoint: lastCheckpoint ?? input.checkpointPath };
  } finally {
    if (ownsOptimizer) optimizer.dispose();
  }
}
