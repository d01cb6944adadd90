/**
 * The child process of a train or evaluate task (see child-protocol.ts). It does exactly
 * one task and exits. If the parent dies, the IPC channel closes and the child exits at
 * once: a retried job must never train the same stage beside an orphan.
 */
import fs from 'node:fs';
import { createTokenizer, isUserError, readManifest } from '@miniglm/data';
import {
  CheckpointError,
  checkTrainingFits,
  createModel,
  initBackend,
  parameterCount,
  readCheckpoint,
  resolveModelConfig,
  restoreModel,
  type LanguageModel,
} from '@miniglm/model';
import { evaluateModel, runStage, type PreparedDataset } from '@miniglm/core';
import type { ChildMessage, EvaluateTask, ParentMessage, TrainTask } from './child-protocol.ts';

let stopRequested = false;
let checkpoints = 0;
/** Checkpoints sent and not yet answered by the parent, by their sequence number. */
const awaitingStored = new Map<number, () => void>();
const send = (message: ChildMessage) => process.send?.(message);
/** Sends the last message and exits once it is on its way (an exit could drop it). */
const finish = (message: ChildMessage) => process.send?.(message, () => process.exit(0));

// Signals go to the parent, which decides (SIGTERM: checkpoint and hand back). A terminal's
// Ctrl-C reaches the whole process group; ignoring it here keeps the child until told.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => process.exit(70));

process.on('message', (message: ParentMessage) => {
  if (message.type === 'stop') stopRequested = true;
  else if (message.type === 'stored') awaitingStored.get(message.seq)?.();
  else void run(message.task);
});

async function run(task: TrainTask | EvaluateTask): Promise<void> {
  try {
    finish(task.kind === 'train' ? await train(task) : await evaluate(task));
  } catch (error) {
    // Classified here, where the error is still an object: the parent gets only the message.
    const message = error instanceof Error ? error.message : String(error);
    finish({ type: 'failed', message, userError: isUserError(error) });
  }
}

async function openDataset(stage: string, dir: string): Promise<PreparedDataset> {
  return { stage, dir, manifest: await readManifest(dir), reused: true };
}

async function train(task: TrainTask): Promise<ChildMessage> {
  const backend = await initBackend(task.backend);
  const { curriculum, stageIndex } = task;
  const stage = curriculum.stages[stageIndex]!;
  const { seed } = curriculum;
  const vocabSize = createTokenizer(task.tokenizer).vocabSize;
  let parent: LanguageModel;
  if (task.parentCheckpoint) parent = await readParent(task.parentCheckpoint);
  else {
    const config = resolveModelConfig({ ...curriculum.model, vocabSize });
    // runStage checks again before training; this is before building: a model whose weights
    // alone overflow the backend would die here.
    checkTrainingFits(config, stage.batchSize, backend);
    parent = createModel(config, seed);
  }
  const result = await runStage({
    stage,
    index: stageIndex,
    dataset: await openDataset(stage.name, task.datasetDir),
    tokenizer: task.tokenizer,
    parent,
    dir: task.dir,
    seed,
    parentCheckpoint: task.parentCheckpoint?.id,
    onStart: (fromStep, backendChange) =>
      send({ type: 'started', fromStep, backend, params: parameterCount(parent), backendChange }),
    onMetrics: (metrics) => send({ type: 'metrics', metrics }),
    onCheckpoint: (step, file) => {
      // The file is replaced at the next checkpoint: give the parent a link that stays until
      // it has stored the bytes. Named uniquely: a stop right after a periodic checkpoint
      // writes the same step again.
      const seq = ++checkpoints;
      const link = `${file}.${step}.${seq}`;
      fs.linkSync(file, link);
      // Backpressure: train on only once the parent has stored it (a parent that refuses it,
      // because the run was cancelled, kills us instead of answering).
      const stored = new Promise<void>((resolve) => awaitingStored.set(seq, resolve));
      send({ type: 'checkpoint', seq, step, file: link });
      return stored.finally(() => awaitingStored.delete(seq));
    },
    shouldStop: () => stopRequested,
    minCheckpointSeconds: task.minCheckpointSeconds,
  });
  return { type: 'trained', outcome: result.outcome };
}

/** The model a stage continues from; one that cannot be read is named by its checkpoint id. */
async function readParent(parent: { id: string; file: string }): Promise<LanguageModel> {
  try {
    return restoreModel(await readCheckpoint(parent.file));
  } catch (error) {
    if (error instanceof CheckpointError)
      throw new CheckpointError(`parent checkpoint ${parent.id}: ${error.message}`, { cause: error });
    throw error;
  }
}

async function evaluate(task: EvaluateTask): Promise<ChildMessage> {
  await initBackend(task.backend);
  const model = restoreModel(await readCheckpoint(task.checkpointFile));
  const datasets = await Promise.all(task.curriculum.stages.map((s, i) => openDataset(s.name, task.datasetDirs[i]!)));
  const evaluation = await evaluateModel(model, createTokenizer(task.tokenizer), task.curriculum, datasets);
  model.dispose();
  return { type: 'evaluated', evaluation };
}
