/**
 * Messages between a worker and the child process it trains or evaluates in.
 *
 * Training is synchronous TensorFlow.js work: in the worker's own process it would starve
 * BullMQ's lock renewal and the cancel channel. So the worker forks a child per task and
 * keeps its event loop free; the child talks only to its parent (no database, no Redis),
 * which is also what lets it run beside an embedded PGlite that one process owns.
 */
import type { StageOutcome, StepMetrics } from '@miniglm/model';
import type { TokenizerSpec } from '@miniglm/data';
import type { Curriculum, Evaluation } from '@miniglm/core';

export interface TrainTask {
  kind: 'train';
  curriculum: Curriculum;
  stageIndex: number;
  datasetDir: string;
  tokenizer: TokenizerSpec;
  /** The model to start from (previous stage or initFrom); none: a fresh model. */
  parentCheckpoint?: { id: string; file: string };
  /** The stage folder; holds model.ckpt when resuming. */
  dir: string;
  backend?: string;
  /** Fewest seconds between two periodic checkpoints (WorkerSettings.minCheckpointSeconds; default 0). */
  minCheckpointSeconds?: number;
}

export interface EvaluateTask {
  kind: 'evaluate';
  curriculum: Curriculum;
  checkpointFile: string;
  /** One prepared dataset folder per stage, in order. */
  datasetDirs: string[];
  tokenizer: TokenizerSpec;
  backend?: string;
}

export type ChildTask = TrainTask | EvaluateTask;

/**
 * Parent → child. `stored` answers a checkpoint message once the parent has recorded it (or
 * refused it): the child does not train on until then, so checkpoints can never pile up
 * faster than the parent stores them, and a cancel never finds a backlog still being written.
 */
export type ParentMessage = { type: 'task'; task: ChildTask } | { type: 'stop' } | { type: 'stored'; seq: number };

/** Child → parent. */
export type ChildMessage =
  /** backendChange: the stage resumed a checkpoint written on another backend (run-stage.ts). */
  | { type: 'started'; fromStep: number; backend: string; params: number; backendChange?: string }
  | { type: 'metrics'; metrics: StepMetrics }
  /**
   * `file` is a hard link to the checkpoint as written at `step`; the parent removes it and
   * answers `stored` with the same `seq`.
   */
  | { type: 'checkpoint'; seq: number; step: number; file: string }
  | { type: 'trained'; outcome: StageOutcome }
  | { type: 'evaluated'; evaluation: Evaluation }
  | { type: 'failed'; message: string; userError: boolean };

/** Worker → generation child (generate-child.ts): one request, answered by id. */
export interface GenerateChildRequest {
  id: number;
  job: import('@miniglm/core/service').GenerateJob;
  /** The checkpoint's local file (the worker fetched it from the artifact store). */
  file: string;
  cacheSize: number;
  backend?: string;
}

export type GenerateChildReply =
  | { id: number; ok: true; outputs: string[]; tokens: number; tokensPerSec: number; seconds: number; warm: boolean }
  | { id: number; ok: false; message: string };
