/**
 * One worker process: a BullMQ worker per queue (prepare, train-stage, evaluate, generate),
 * a subscriber on the cancel channel, and a graceful shutdown that lets a training stage
 * finish its iteration, checkpoint and hand its job back before the process exits.
 */
import path from 'node:path';
import { Worker, UnrecoverableError, type Job } from 'bullmq';
import { isUserError } from '@miniglm/data';
import type { Db } from '@miniglm/core/db';
import {
  advertiseWorker,
  cancelChannel,
  createRedis,
  DEFAULT_PREFIX,
  DEFAULT_QUOTAS,
  QUEUE,
  redactRedisUrl,
  withdrawWorker,
  WORKER_AD_TTL_MS,
  type WorkerAd,
} from '@miniglm/core/service';
import { memoryLimit } from '@miniglm/model/sizing';
import { loadNative } from '../../../packages/native/src/index.ts';
import { ActiveTasks } from './active.ts';
import { createContext, defaultWorkerId, type WorkerContext, type WorkerSettings } from './context.ts';
import { processEvaluate } from './evaluate.ts';
import { startGarbageCollector, type GarbageReport } from './garbage.ts';
import { Generator, processGenerate } from './generate.ts';
import { isPrismaError, plainError, plainMessage } from './plain-error.ts';
import { processPrepare } from './prepare.ts';
import { startReconciler, type ReconcileReport } from './reconcile.ts';
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
  /** One reconciling round now (see reconcile.ts); undefined when another round holds the lock. */
  reconcile(): Promise<ReconcileReport | undefined>;
  /** One garbage collection round now (see garbage.ts); undefined when it failed (it says why in the log). */
  collectGarbage(): Promise<GarbageReport | undefined>;
  /** Stops taking jobs, stops running stages at a checkpoint and hands them back, then closes. */
  close(): Promise<void>;
}

const MAX_STALLED = 3;

export const DEFAULT_SETTINGS: WorkerSettings = {
  lockDurationMs: 30_000,
  stalledIntervalMs: 30_000,
  generateCacheSize: 3,
  cacheBytes: 8 * 1024 ** 3,
  minCheckpointSeconds: 0,
  reconcileIntervalMs: 30_000,
  reconcileGraceMs: 60_000,
  collectIntervalMs: 600_000,
  defaultMaxRunningRuns: DEFAULT_QUOTAS.runningRuns,
  heldBackDelayMs: 3000,
};

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  // An unset knob (undefined) keeps its default.
  const given = Object.fromEntries(Object.entries(options.settings ?? {}).filter(([, v]) => v !== undefined));
  const settings: WorkerSettings = { ...DEFAULT_SETTINGS, ...given };
  const connection = createRedis(options.redisUrl, { blocking: true });
  // BullMQ would wait for Redis forever, silently: say so instead when it does not answer.
  const answered = await Promise.race([
    connection.ping().then(() => true),
    new Promise<false>((r) => setTimeout(() => r(false), 5000).unref()),
  ]);
  if (!answered) {
    connection.disconnect();
    throw new Error(
      `Redis at ${redactRedisUrl(options.redisUrl)} did not answer within 5 s; is it running? (REDIS_URL)`,
    );
  }
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
  const generator = new Generator(ctx);

  const common = {
    connection,
    prefix,
    concurrency: 1,
    lockDuration: settings.lockDurationMs,
    stalledInterval: settings.stalledIntervalMs,
    // A killed worker's stage comes back to the queue; a few kills in a row are not a failure.
    maxStalledCount: MAX_STALLED,
  };
  const workers = [
    new Worker(QUEUE.prepare, (job, token) => failFast(job, processPrepare(ctx, job, token)), common),
    new Worker(QUEUE.train, (job, token) => failFast(job, processTrainStage(ctx, active, job, token)), common),
    new Worker(QUEUE.evaluate, (job, token) => failFast(job, processEvaluate(ctx, active, job, token)), common),
    new Worker(QUEUE.generate, (job) => failFast(job, processGenerate(ctx, generator, job)), common),
  ];
  // Failure handlers write to the database: close() waits for them before it closes anything.
  const failing = new Set<Promise<void>>();
  for (const w of workers) {
    w.on('error', (error) => ctx.log(`${w.name}: ${error.message}`));
    w.on('failed', (job, error) => {
      const p = onFailed(ctx, job, error).finally(() => failing.delete(p));
      failing.add(p);
    });
  }

  // Cancel: the API publishes the run id; every worker stops its tasks of that run.
  const subscriber = connection.duplicate();
  subscriber.on('error', () => {});
  await subscriber.subscribe(cancelChannel(prefix));
  subscriber.on('message', (_channel, runId: string) => {
    if (active.cancelRun(runId) > 0) ctx.log(`run ${runId}: cancelling`);
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  // Runs whose jobs Redis has lost are queued again: now, and every reconcileIntervalMs.
  const reconciler = startReconciler(ctx);
  // Unreferenced rows, bytes and local copies go: now, and every collectIntervalMs.
  const collector = startGarbageCollector(ctx);
  // What this worker can train, for the check at submit (core/service/capacity.ts).
  const ad = workerAd(ctx.workerId, settings.backend);
  const advertise = () => advertiseWorker(connection, prefix, ad).catch(() => {});
  await advertise();
  const advertising = setInterval(() => void advertise(), WORKER_AD_TTL_MS / 3);
  advertising.unref();
  ctx.log(`ready (queues under "${prefix}", work folder ${ctx.workDir})`);

  let closing: Promise<void> | undefined;
  return {
    workerId: ctx.workerId,
    context: ctx,
    reconcile: () => reconciler.reconcile(),
    collectGarbage: () => collector.collect(),
    close: () =>
      (closing ??= (async () => {
        await reconciler.close();
        await collector.close();
        clearInterval(advertising);
        await withdrawWorker(connection, prefix, ad.id).catch(() => {});
        active.shutdown();
        await Promise.all(workers.map((w) => w.close()));
        await Promise.all(failing);
        generator.close();
        await subscriber.quit().catch(() => {});
        await connection.quit().catch(() => {});
      })()),
  };
}

/**
 * The backend this worker's tasks train on and the memory it gives them. The tasks pick their
 * backend in their own process (initBackend); here, without loading TensorFlow.js, the same
 * choice is made for the two backends this project builds: native where its kernels load,
 * else wasm (a worker forced onto another one says so in its settings).
 */
function workerAd(id: string, backend: string | undefined): WorkerAd {
  const name = backend ?? ('kernels' in loadNative() ? 'native' : 'wasm');
  return { id, backend: name, memoryBytes: memoryLimit(name).bytes };
}

/**
 * A user error thrown in the worker itself (a corrupt checkpoint artifact, ...) fails its job
 * at once: another attempt would read the same bytes. onFailed then fails the run with the
 * message. (The training child's errors arrive already classified, as its `userError`.)
 * Anything else is infrastructure (a lost connection, a database that refused a write): it is
 * retried with backoff (queues.ts), under a plain message, never a library's source code.
 */
async function failFast<T>(job: Job, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (isUserError(error)) throw new UnrecoverableError(`${job.name}: ${error.message}`);
    if (isPrismaError(error)) throw new Error(`${job.name}: ${plainError(error)}`, { cause: error });
    throw error;
  }
}

/** A job that will not run again (no attempts left, or unrecoverable) ends its run as failed. */
async function onFailed(ctx: WorkerContext, job: Job | undefined, error: Error): Promise<void> {
  if (!job) return;
  const runId = (job.data as { runId?: string }).runId;
  ctx.log(`${job.queueName} job ${job.id} failed (attempt ${job.attemptsMade}): ${error.message}`);
  if (!runId) return;
  const final =
    error instanceof UnrecoverableError ||
    error.name === 'UnrecoverableError' ||
    job.attemptsMade >= (job.opts.attempts ?? 1);
  if (!final) return;
  // A job failed because one it depends on failed: that job fails the run with its own reason
  // (or, were its report lost, the reconciler does). Failing it here too would race that
  // report and, when first, put "an earlier job failed" in place of what went wrong.
  if (CHILD_FAILED.test(error.message)) return;
  await failRun(ctx, runId, plainReason(job, error)).catch((e: Error) =>
    ctx.log(`could not mark run ${runId} failed: ${e.message}`),
  );
}

/** BullMQ's reason for a parent job whose child failed (failParentOnFailure). */
const CHILD_FAILED = /^child .* failed$/;

/** BullMQ's own failure texts, in words a user of the run understands. */
function plainReason(job: Job, error: Error): string {
  if (/stalled more than allowable limit/.test(error.message))
    return `the worker running ${job.name} stopped answering ${MAX_STALLED + 1} times in a row (killed or out of memory?)`;
  return plainMessage(error.message);
}
