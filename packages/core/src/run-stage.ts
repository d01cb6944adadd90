/**
 * One stage of a curriculum, the same wherever it runs (miniglm train's process, or a queue
 * worker's training child): open its dataset, continue from the parent model, train, checkpoint.
 *
 * A stage whose checkpoint already exists continues from it (weights, optimizer, step and
 * data-sampler state), so an interrupted run loses at most the iterations since the last
 * checkpoint, and a finished stage is never trained twice.
 */
import { appendFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { deriveSeed, type TokenizerSpec } from '@miniglm/data';
import {
  activeBackend,
  backendThreads,
  checkTrainingFits,
  decays,
  readCheckpoint,
  restoreModel,
  restoreOptimizer,
  trainStage,
  type LanguageModel,
  type StageOutcome,
  type StepMetrics,
  type TrainOptions,
} from '@miniglm/model';
import { minLrOf, type StageConfig } from './curriculum.ts';
import { CurriculumError } from './curriculum-file.ts';
import { openStageData } from './stage-data.ts';
import type { PreparedDataset } from './datasets.ts';

export const CHECKPOINT_FILE = 'model.ckpt';
export const METRICS_FILE = 'metrics.jsonl';

export interface StageRunInput {
  stage: StageConfig;
  /** Position in the curriculum (for seeds and reports). */
  index: number;
  dataset: PreparedDataset;
  tokenizer: TokenizerSpec;
  /** The model to continue from; replaced by the stage checkpoint's when resuming. */
  parent: LanguageModel;
  /** Where this stage writes its checkpoint and metrics. */
  dir: string;
  seed: number;
  /** Lineage recorded in the checkpoint. */
  parentCheckpoint?: string;
  /**
   * Called once training is about to start, with the step it starts from and, when it resumes
   * a checkpoint written on another backend or thread count, a sentence saying so.
   */
  onStart?: (fromStep: number, backendChange?: string) => void;
  onMetrics?: (m: StepMetrics) => void;
  /** Training waits for it to resolve (see TrainStageInput.onCheckpoint). */
  onCheckpoint?: (step: number, file: string) => void | Promise<void>;
  shouldStop?: () => boolean;
  /** Fewest seconds between two periodic checkpoints (the trainer's minCheckpointSeconds; default 0). */
  minCheckpointSeconds?: number;
}

export interface StageRunResult {
  outcome: StageOutcome;
  /** The trained model (the parent object itself unless the stage resumed from disk). */
  model: LanguageModel;
  /** Steps already done before this call (0 for a fresh start). */
  resumedFrom: number;
}

/** The trainer's options of a (parsed) stage: every one given, none left to a default. */
export function trainOptions(stage: StageConfig): TrainOptions {
  return {
    iterations: stage.iterations,
    gradAccum: stage.gradAccum,
    lr: stage.lr,
    minLr: minLrOf(stage),
    // A stage shorter than the warmup warms up over its whole length, to nearly lr.
    warmup: Math.min(stage.warmup, stage.iterations),
    weightDecay: stage.weightDecay,
    beta1: stage.beta1,
    beta2: stage.beta2,
    gradClip: stage.gradClip,
    evalEvery: stage.evalEvery,
    checkpointEvery: stage.checkpointEvery,
  };
}

export async function runStage(input: StageRunInput): Promise<StageRunResult> {
  const { stage, parent } = input;
  const options = trainOptions(stage);
  const blockSize = parent.config.blockSize;
  // Before anything is allocated for training: a stage that cannot fit in memory fails now,
  // naming the numbers, instead of dying in the backend part way through its first step.
  checkTrainingFits(parent.config, stage.batchSize, activeBackend());
  const data = await openStageData(input.dataset, {
    blockSize,
    batchSize: stage.batchSize,
    seed: deriveSeed(input.seed, `stage:${input.index}:${stage.name}`),
    evalBatches: stage.evalBatches,
  });
  const checkpointPath = path.join(input.dir, CHECKPOINT_FILE);
  const metricsPath = path.join(input.dir, METRICS_FILE);
  await fs.mkdir(input.dir, { recursive: true });

  let model = parent;
  let resume:
    { optimizer: NonNullable<ReturnType<typeof restoreOptimizer>>; step: number; backendChange?: string } | undefined;
  if (await exists(checkpointPath)) {
    const ckpt = await readCheckpoint(checkpointPath);
    checkSameStage(checkpointPath, ckpt.header, {
      datasetSha: input.dataset.manifest.sha256,
      options,
      batch: batchSettings(stage),
      model: parent.config,
    });
    model = restoreModel(ckpt);
    // Metrics past the checkpoint will be produced again (and a crash may have torn the
    // last line): keep exactly the steps the checkpoint holds.
    await truncateMetrics(metricsPath, ckpt.header.step);
    if (ckpt.header.step >= options.iterations) {
      // Finished in an earlier run: keep it as it is.
      const meta = ckpt.header.meta as { trainLoss?: number; valLoss?: number };
      const outcome: StageOutcome = {
        status: 'finished',
        step: ckpt.header.step,
        trainLoss: meta.trainLoss ?? NaN,
        valLoss: meta.valLoss,
        checkpoint: checkpointPath,
      };
      input.onStart?.(ckpt.header.step, backendChange(ckpt.header.meta, ckpt.header.step));
      return { outcome, model, resumedFrom: ckpt.header.step };
    }
    const optimizer = restoreOptimizer(ckpt, (name) => decays(model.params.get(name)!));
    if (!optimizer || !ckpt.header.sampler)
      throw new CurriculumError(
        `${checkpointPath} has no optimizer or sampler state to continue from; delete that stage folder to train it again`,
      );
    data.train.setState(ckpt.header.sampler);
    resume = { optimizer, step: ckpt.header.step, backendChange: backendChange(ckpt.header.meta, ckpt.header.step) };
  } else {
    await fs.rm(metricsPath, { force: true });
  }

  input.onStart?.(resume?.step ?? 0, resume?.backendChange);
  const outcome = await trainStage({
    model,
    tokenizer: input.tokenizer,
    sampler: data.train,
    valBatches: () => data.valBatches,
    options,
    checkpointPath,
    resume,
    checkpointMeta: {
      stage: stage.name,
      stageIndex: input.index,
      kind: stage.kind,
      dataset: { dir: input.dataset.dir, sha256: input.dataset.manifest.sha256, source: input.dataset.manifest.source },
      parentCheckpoint: input.parentCheckpoint ?? null,
      train: options,
      batch: batchSettings(stage),
    },
    onMetrics: (m) => {
      // Synchronous: one small line per iteration, and lines must stay in step order.
      appendFileSync(metricsPath, `${JSON.stringify({ stage: stage.name, ...m })}\n`);
      input.onMetrics?.(m);
    },
    onCheckpoint: input.onCheckpoint,
    shouldStop: input.shouldStop,
    minCheckpointSeconds: input.minCheckpointSeconds,
  }).finally(() => resume?.optimizer.dispose()); // a restored optimizer is ours to free
  return { outcome, model, resumedFrom: resume?.step ?? 0 };
}

/** What shapes a stage's batches besides its training options. */
function batchSettings(stage: StageConfig): { batchSize: number; evalBatches: number } {
  return { batchSize: stage.batchSize, evalBatches: stage.evalBatches };
}

/**
 * A stage folder belongs to one configuration: continuing it on other data, with another
 * model or other hyper-parameters would silently mix two experiments. Refuse, and say how.
 */
function checkSameStage(
  file: string,
  header: { model: object; meta: Record<string, unknown> },
  now: { datasetSha: string; options: TrainOptions; batch: object; model: object },
): void {
  const recorded = header.meta as { dataset?: { sha256?: string }; train?: object; batch?: object };
  const advice = 'use another --out folder, or delete that stage folder to train it again';
  if (recorded.dataset?.sha256 && recorded.dataset.sha256 !== now.datasetSha)
    throw new CurriculumError(`${file} was trained on different data than this curriculum now gives; ${advice}`);
  const compare = (what: string, before: object | undefined, after: object) => {
    if (!before) return;
    const b = before as Record<string, unknown>;
    const a = after as Record<string, unknown>;
    const changed = Object.keys(a).filter((k) => JSON.stringify(b[k]) !== JSON.stringify(a[k]));
    if (changed.length > 0)
      throw new CurriculumError(
        `${file} was trained with another ${what} (${changed.map((k) => `${k} ${JSON.stringify(b[k])} -> ${JSON.stringify(a[k])}`).join(', ')}); ${advice}`,
      );
  };
  compare('model', header.model, now.model);
  compare('training setup', recorded.train, now.options);
  compare('batch setup', recorded.batch, now.batch);
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

async function truncateMetrics(file: string, step: number): Promise<void> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return;
  }
  const stepOf = (line: string): number => {
    try {
      return (JSON.parse(line) as { step: number }).step;
    } catch {
      return Infinity; // a line torn by a crash mid-write: drop it
    }
  };
  const kept = text
    .split('\n')
    .filter((line) => line.trim() && stepOf(line) <= step)
    .map((line) => `${line}\n`)
    .join('');
  await fs.writeFile(file, kept);
}

/**
 * A resumed stage continues where its checkpoint left off, but sums in another order on
 * another backend or thread count (see backend/select.ts): losses can then differ from an
 * uninterrupted run's in the last digits. Allowed, and said, here in one sentence.
 */
export function backendChange(meta: Record<string, unknown>, step: number): string | undefined {
  const was = { backend: meta.backend, threads: meta.threads };
  const now = { backend: activeBackend(), threads: backendThreads() };
  if (typeof was.backend !== 'string') return undefined; // written before checkpoints recorded it
  if (was.backend === now.backend && was.threads === now.threads) return undefined;
  const on = (b: { backend: unknown; threads: unknown }) =>
    typeof b.threads === 'number' ? `${b.backend} (${b.threads} thread${b.threads === 1 ? '' : 's'})` : `${b.backend}`;
  return (
    `resumed at step ${step} on ${on(now)}; its checkpoint was written on ${on(was)}, ` +
    `so losses from here on can differ from an uninterrupted run's in the last digits`
  );
}
