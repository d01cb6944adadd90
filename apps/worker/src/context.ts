/**
 * What every job processor of one worker process shares: its database, artifact store,
 * Redis, key prefix, identity and local working folder.
 */
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { ArtifactStore, type Db } from '@miniglm/core/db';

export interface WorkerSettings {
  /** BullMQ lock: a job whose lock is not renewed for this long counts as stalled (default 30 s). */
  lockDurationMs: number;
  /** How often this worker looks for stalled jobs (default 30 s). */
  stalledIntervalMs: number;
  /** The TensorFlow.js backend to ask for (default: the best available). */
  backend?: string;
  /** Models kept loaded for POST /v1/generate (default 3). */
  generateCacheSize: number;
  /** Most bytes the local artifact cache may hold (default 8 GiB); least recently used go first. */
  cacheBytes: number;
  /**
   * Fewest seconds between two periodic checkpoints of a stage (default 0 here: as often as
   * the curriculum's checkpointEvery says; `miniglm worker` defaults to 5, see its help). The
   * first checkpoint, a stage's last step and a stop or cancel are always written.
   */
  minCheckpointSeconds: number;
  /** How often runs whose jobs Redis has lost are looked for and queued again (default 30 s; reconcile.ts). */
  reconcileIntervalMs: number;
  /** Runs younger than this are not reconciled: their submission may still be queueing them (default 60 s). */
  reconcileGraceMs: number;
  /** How often unreferenced rows, bytes and local copies are looked for and removed (default 10 min; garbage.ts). */
  collectIntervalMs: number;
  /**
   * How many runs of one key may run at once when its key has no limit of its own (default
   * 20, DEFAULT_QUOTAS; `miniglm worker` reads MINIGLM_QUOTA_RUNNING_RUNS, as the API does).
   */
  defaultMaxRunningRuns: number;
  /** How long a run held back by its key's running runs quota waits before it is looked at again (default 3 s; running-quota.ts). */
  heldBackDelayMs: number;
}

export interface WorkerContext {
  db: Db;
  store: ArtifactStore;
  redis: Redis;
  prefix: string;
  workerId: string;
  /** Local cache: datasets, uploaded files, stage folders. Losing it loses nothing. */
  workDir: string;
  settings: WorkerSettings;
  log: (message: string) => void;
}

export function defaultWorkerId(): string {
  return `${os.hostname()}:${process.pid}`;
}

export function createContext(input: Omit<WorkerContext, 'store'>): WorkerContext {
  return {
    ...input,
    store: new ArtifactStore(input.db, {
      cacheDir: path.join(input.workDir, 'artifacts'),
      maxCacheBytes: input.settings.cacheBytes,
    }),
  };
}
