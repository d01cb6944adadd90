/**
 * A whole curriculum in one process, with no services: prepare the datasets, train each
 * stage from the previous stage's model, then evaluate. `miniglm train` is a view of this.
 *
 * Layout of a run folder:
 *   run.json                       the curriculum and, once done, the summary
 *   stages/<name>/model.ckpt       the stage's checkpoint (its last one)
 *   stages/<name>/metrics.jsonl    one line per iteration
 *   evaluation.json                perplexity, ROUGE-L and samples of the final model
 * Running the same command again continues where it stopped; finished stages are kept.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { createTokenizer, type TokenizerSpec } from '@miniglm/data';
import {
  activeBackend,
  checkTrainingFits,
  createModel,
  initBackend,
  parameterCount,
  readCheckpoint,
  resolveModelConfig,
  restoreModel,
  type LanguageModel,
  type StageOutcome,
  type StepMetrics,
} from '@miniglm/model';
import type { Curriculum, StageConfig } from './curriculum.ts';
import { CurriculumError } from './curriculum-file.ts';
import { checkDatasetsFit, prepareDatasets, type PreparedDataset } from './datasets.ts';
import { evaluateModel, type Evaluation } from './evaluation.ts';
import { initFromMismatch } from './init-from.ts';
import { CHECKPOINT_FILE, runStage } from './run-stage.ts';

export interface RunEvents {
  onMessage?: (message: string) => void;
  /** `backendChange`: the stage resumed a checkpoint written on another backend (see run-stage.ts). */
  onStageStart?: (stage: StageConfig, index: number, fromStep: number, backendChange?: string) => void;
  onMetrics?: (stage: StageConfig, metrics: StepMetrics) => void;
  onStageEnd?: (stage: StageConfig, outcome: StageOutcome) => void;
}

export interface LocalRunOptions {
  /** The run folder. */
  outDir: string;
  /** Relative dataset paths are resolved against this (the curriculum file's folder). */
  baseDir: string;
  /** Prepared datasets, shared between runs. Default: <outDir>/../.datasets. */
  dataDir?: string;
  backend?: string;
  events?: RunEvents;
  shouldStop?: () => boolean;
}

export interface StageSummary {
  name: string;
  kind: StageConfig['kind'];
  status: StageOutcome['status'];
  steps: number;
  trainLoss?: number;
  valLoss?: number;
  checkpoint?: string;
  dataset: { dir: string; sha256: string; source: string; reused: boolean };
  message?: string;
}

export interface RunSummary {
  name: string;
  status: 'succeeded' | 'stopped' | 'failed';
  backend: string;
  params: number;
  tokenizer: { name: string; vocabSize: number };
  stages: StageSummary[];
  evaluation?: Evaluation;
  seconds: number;
}

export async function runCurriculum(curriculum: Curriculum, options: LocalRunOptions): Promise<RunSummary> {
  try {
    return await runCurriculumSteps(curriculum, options);
  } catch (error) {
    // run.json must not go on saying "running" once this process has given up.
    await markFailed(path.join(options.outDir, 'run.json'), error);
    throw error;
  }
}

async function markFailed(file: string, error: unknown): Promise<void> {
  try {
    const run = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
    if (run.status !== 'running') return;
    await writeJson(file, { ...run, status: 'failed', error: error instanceof Error ? error.message : String(error) });
  } catch {
    // no run.json of this attempt (it failed before writing one): nothing to correct
  }
}

async function runCurriculumSteps(curriculum: Curriculum, options: LocalRunOptions): Promise<RunSummary> {
  const started = performance.now();
  const events = options.events ?? {};
  const backend = await initBackend(options.backend);
  const { seed } = curriculum;
  const dataDir = options.dataDir ?? path.join(path.dirname(path.resolve(options.outDir)), '.datasets');
  await fs.mkdir(options.outDir, { recursive: true });
  // Keep what an earlier attempt recorded (its summary) until this one has its own.
  const runFile = path.join(options.outDir, 'run.json');
  const earlier = await fs.readFile(runFile, 'utf8').then(
    (t) => JSON.parse(t) as object,
    () => ({}),
  );
  await writeJson(runFile, { ...earlier, curriculum, status: 'running', backend });

  const init = curriculum.initFrom ? await readInitCheckpoint(curriculum, options.baseDir) : undefined;
  const { tokenizer, datasets } = await prepareDatasets(curriculum, {
    dataDir,
    baseDir: options.baseDir,
    tokenizer: init?.tokenizer,
    onProgress: events.onMessage,
  });
  const vocabSize = createTokenizer(tokenizer).vocabSize;
  checkDatasetsFit(datasets, init?.model.config.blockSize ?? curriculum.model.blockSize);
  let model: LanguageModel;
  if (init) model = init.model;
  else {
    const config = resolveModelConfig({ ...curriculum.model, vocabSize });
    // runStage checks each stage again before training; this is before building, for every
    // stage at once: a model whose weights alone overflow the backend would die here, and a
    // later stage's batch that cannot fit should not wait for the earlier stages to train.
    for (const stage of curriculum.stages) checkTrainingFits(config, stage.batchSize, backend);
    model = createModel(config, seed);
  }
  events.onMessage?.(
    `model: ${model.config.kind}, ${parameterCount(model).toLocaleString('en-US')} parameters, vocabulary ${vocabSize}, backend ${backend}`,
  );

  const stages: StageSummary[] = [];
  let parentCheckpoint = init ? path.resolve(options.baseDir, curriculum.initFrom!) : undefined;
  let status: RunSummary['status'] = 'succeeded';
  for (const [index, stage] of curriculum.stages.entries()) {
    const dataset = datasets[index]!;
    const dir = path.join(options.outDir, 'stages', stage.name);
    const result = await runStage({
      stage,
      index,
      dataset,
      tokenizer,
      parent: model,
      dir,
      seed,
      parentCheckpoint,
      onStart: (fromStep, backendChange) => events.onStageStart?.(stage, index, fromStep, backendChange),
      onMetrics: (m) => events.onMetrics?.(stage, m),
      shouldStop: options.shouldStop,
    });
    // The stage may have resumed from its own checkpoint with a fresh model object.
    if (result.model !== model) model.dispose();
    model = result.model;
    const { outcome } = result;
    events.onStageEnd?.(stage, outcome);
    stages.push(stageSummary(stage, dataset, outcome));
    if (outcome.status !== 'finished') {
      status = outcome.status === 'stopped' ? 'stopped' : 'failed';
      break;
    }
    parentCheckpoint = path.resolve(dir, CHECKPOINT_FILE);
  }

  let evaluation: Evaluation | undefined;
  if (status === 'succeeded') {
    events.onMessage?.('evaluating the final model');
    evaluation = await evaluateModel(model, createTokenizer(tokenizer), curriculum, datasets);
    await writeJson(path.join(options.outDir, 'evaluation.json'), evaluation);
  }
  const summary: RunSummary = {
    name: curriculum.name,
    status,
    backend: activeBackend(),
    params: parameterCount(model),
    tokenizer: { name: tokenizer.name, vocabSize },
    stages,
    evaluation,
    seconds: (performance.now() - started) / 1000,
  };
  model.dispose();
  await writeJson(path.join(options.outDir, 'run.json'), { curriculum, ...summary });
  return summary;
}

function stageSummary(stage: StageConfig, dataset: PreparedDataset, outcome: StageOutcome): StageSummary {
  const base = {
    name: stage.name,
    kind: stage.kind,
    status: outcome.status,
    steps: outcome.step,
    checkpoint: outcome.checkpoint,
    dataset: {
      dir: dataset.dir,
      sha256: dataset.manifest.sha256,
      source: dataset.manifest.source,
      reused: dataset.reused,
    },
  };
  return outcome.status === 'diverged'
    ? { ...base, message: outcome.message }
    : { ...base, trainLoss: outcome.trainLoss, valLoss: outcome.valLoss };
}

/** The model and tokenizer of `initFrom`, checked against the curriculum's model section. */
async function readInitCheckpoint(
  curriculum: Curriculum,
  baseDir: string,
): Promise<{ model: LanguageModel; tokenizer: TokenizerSpec }> {
  const file = path.resolve(baseDir, curriculum.initFrom!);
  const ckpt = await readCheckpoint(file);
  const mismatch = initFromMismatch(
    curriculum,
    { model: ckpt.header.model, tokenizer: ckpt.header.tokenizer.name },
    file,
  );
  if (mismatch) throw new CurriculumError(mismatch);
  return { model: restoreModel(ckpt), tokenizer: ckpt.header.tokenizer };
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await fs.writeFile(`${file}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  await fs.rename(`${file}.tmp`, file);
}
