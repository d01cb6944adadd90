/**
 * What the API and the workers agree on about the queue: queue names, job payloads, job ids
 * and the options each kind of job is added with.
 *
 * A run is one BullMQ flow. In a flow the deepest child runs first, so the chain is built
 * upside down: evaluate is the root, its child is the last stage, ..., whose child is
 * prepare. Every child fails its parent (`failParentOnFailure`): a failed or cancelled stage
 * ends the whole flow instead of leaving the later stages waiting forever.
 */
import type { FlowJob, JobsOptions } from 'bullmq';

export const QUEUE = {
  prepare: 'miniglm-prepare',
  train: 'miniglm-train',
  evaluate: 'miniglm-evaluate',
  generate: 'miniglm-generate',
} as const;
export type QueueName = (typeof QUEUE)[keyof typeof QUEUE];

/** Key prefix of every BullMQ key, lock and channel (tests use their own). */
export const DEFAULT_PREFIX = 'miniglm';

export interface PrepareJob {
  runId: string;
}
export interface TrainStageJob {
  runId: string;
  stageId: string;
  stageIndex: number;
}
export interface EvaluateJob {
  runId: string;
}
export interface GenerateJob {
  checkpointId: string;
  prompt: string;
  /** Completion, or an answer to a question (SFT models: the prompt is `question [SEP]`). */
  mode: 'completion' | 'answer';
  temperature: number;
  topK: number;
  topP: number;
  maxTokens: number;
  samples: number;
  seed?: number;
}
export interface GenerateResult {
  checkpointId: string;
  outputs: string[];
  tokens: number;
  tokensPerSec: number;
  seconds: number;
  workerId: string;
  /** True when the model was already loaded on the worker. */
  warm: boolean;
}

/** Job ids are derived from the run, so adding a flow twice cannot queue a stage twice. */
export const jobId = {
  prepare: (runId: string) => `${runId}.prepare`,
  stage: (runId: string, index: number) => `${runId}.stage-${index}`,
  evaluate: (runId: string) => `${runId}.evaluate`,
};

/**
 * Retries are for infrastructure trouble (a lost connection, a killed worker); a problem in
 * the user's data or a diverged stage is thrown as UnrecoverableError and is not retried.
 */
const childOptions: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 2000 },
  failParentOnFailure: true,
  removeOnComplete: { age: 7 * 24 * 3600 },
  removeOnFail: { age: 30 * 24 * 3600 },
};

/** The flow of one run: prepare → stage 0 → … → stage n-1 → evaluate. */
export function runFlow(runId: string, stageIds: string[]): FlowJob {
  let child: FlowJob = {
    name: 'prepare',
    queueName: QUEUE.prepare,
    data: { runId } satisfies PrepareJob,
    opts: { ...childOptions, jobId: jobId.prepare(runId) },
  };
  stageIds.forEach((stageId, stageIndex) => {
    child = {
      name: `stage-${stageIndex}`,
      queueName: QUEUE.train,
      data: { runId, stageId, stageIndex } satisfies TrainStageJob,
      opts: { ...childOptions, jobId: jobId.stage(runId, stageIndex) },
      children: [child],
    };
  });
  return {
    name: 'evaluate',
    queueName: QUEUE.evaluate,
    data: { runId } satisfies EvaluateJob,
    opts: { ...childOptions, jobId: jobId.evaluate(runId) },
    children: [child],
  };
}

/** Redis pub/sub channel on which the API announces cancelled runs to every worker. */
export function cancelChannel(prefix: string): string {
  return `${prefix}:cancel`;
}

/** Key of the lock that makes one worker build a dataset while the others wait for it. */
export function datasetLockKey(prefix: string, contentHash: string, tokenizerHash: string): string {
  return `${prefix}:lock:dataset:${contentHash}:${tokenizerHash}`;
}
