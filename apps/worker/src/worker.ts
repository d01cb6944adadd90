/**
 * One worker process: a BullMQ worker per queue (prepare, train-stage, evaluate, generate),
 * a subscriber on the cancel channel, and a graceful shutdown that lets a training stage
 * finish its iteration, checkpoint and hand its job back before the process exits.
 */
import path from 'node:path';
import { Worker, UnrecoverableError, type Job } from 'bullmq';
import type { Db } from '@miniglm/core/db';
import { cancelChannel, createRedis, DEFAULT_PREFIX, QUEUE } from '@miniglm/core/service';
import { ActiveTasks } from './active.ts';
import { createContext, defaultWorkerId, type WorkerContext, type WorkerSettings } from './context.ts';
import { processEvaluate } from './evaluate.ts';
import { ModelCache, processGenerate } from './generate.ts';
import { processPrepare } from './prepare.ts';
import { failRun } from './run-state.ts';
import { processTrainStage } from './train.ts';

export interface WorkerOptions {
  db: Db;
  redisUrl: string;
  prefix?: string;
  /** Local cache folder (default .miniglm/worker). */
  workDir?: string;
  workerId?: string;
  settings?: Partial<WorkerSettings>;
  log?: (message: string) => void;
}

export interface RunningWorker {
  workerId: string;
  context: WorkerContext;
  /** Stops taking jobs, stops running stages at a checkpoint and hands them back, then closes. */
  close(): Promise<void>;
}

export const DEFAULT_SETTINGS: WorkerSettings = { lockDurationMs: 30_000, stalledIntervalMs: 30_000, generateCacheSize: 3 };

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  // An unset knob (undefined) keeps its default.
  const given = Object.fromEntries(Object.entries(options.settings ?? {}).filter(([, v]) => v !== undefined));
  const settings: WorkerSettings = { ...DEFAULT_SETTINGS, ...given };
  const connection = createRedis(options.redisUrl, { blocking: true });
  const ctx = createContext({
    db: options.db,
    redis: connection,
    prefix,
    workerId: options.workerId ?? defaultWorkerId(),
    workDir: path.resolve(options.workDir ?? '.miniglm/worker'),
    settings,
    log: options.log ?? ((m) => console.log(`[worker ${options.workerId ?? defaultWorkerId()}] ${m}`)),
  });
  const active = new ActiveTasks();
  const models = new ModelCache(ctx, settings.generateCacheSize);

  const common = {
    connection,
    prefix,
    concurrency: 1,
    lockDuration: settings.lockDurationMs,
    stalledInterval: settings.stalledIntervalMs,
    // A killed worker's stage comes back to the queue; a few kills in a row are not a failure.
    maxStalledCount: 3,
  };
  const workers = [
    new Worker(QUEUE.prepare, (job) => processPrepare(ctx, job), common),
    new Worker(QUEUE.train, (job, token) => processTrainStage(ctx, active, job, token), common),
    new Worker(QUEUE.evaluate, (job, token) => processEvaluate(ctx, active, job, token), common),
    new Worker(QUEUE.generate, (job) => processGenerate(ctx, models, job), { ...common, lockDuration: Math.max(settings.lockDurationMs, 60_000) }),
  ];
  for (const w of workers) {
    w.on('error', (error) => ctx.log(`${w.name}: ${error.message}`));
    w.on('failed', (job, error) => void onFailed(ctx, job, error));
  }

  // Cancel: the API publishes the run id; every worker stops its tasks of that run.
  const subscriber = connection.duplicate();
  subscriber.on('error', () => {});
  await subscriber.subscribe(cancelChannel(prefix));
  subscriber.on('message', (_channel, runId: string) => {
    if (active.cancelRun(runId) > 0) ctx.log(`run ${runId}: cancelling`);
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  ctx.log(`ready (queues under "${prefix}", work folder ${ctx.workDir})`);

  let closing: Promise<void> | undefined;
  return {
    workerId: ctx.workerId,
    context: ctx,
    close: () =>
      (closing ??= (async () => {
        active.shutdown();
        await Promise.all(workers.map((w) => w.close()));
        models.dispose();
        await subscriber.quit().catch(() => {});
        await connection.quit().catch(() => {});
      })()),
  };
}

/** A job that will not run again (no attempts left, or unrecoverable) ends its run as failed. */
async function onFailed(ctx: WorkerContext, job: Job | undefined, error: Error): Promise<void> {
  if (!job) return;
  const runId = (job.data as { runId?: string }).runId;
  ctx.log(`${job.queueName} job ${job.id} failed (attempt ${job.attemptsMade}): ${error.message}`);
  if (!runId) return;
  const final = error instanceof UnrecoverableError || error.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
  if (!final) return;
  await failRun(ctx, runId, error.message).catch((e: Error) => ctx.log(`could not mark run ${runId} failed: ${e.message}`));
}
