/**
 * `miniglm worker`: one worker process of the training service. Run as many as you like,
 * on as many machines: they share only Postgres and Redis.
 */
import { quotasFromEnv } from '@miniglm/core/service';
import { startWorker } from '@miniglm/worker';
import { numberFlag, parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';
import { envMs, envSeconds, onShutdownSignal, openServiceDb, queuePrefix, requireRedisUrl } from '../services.ts';

/**
 * A deployed worker's floor between two checkpoints of a stage. A tiny model with
 * checkpointEvery 1 trains many steps a second, and each checkpoint is a write of its weights
 * and optimizer state; 5 s keeps that to a trickle while costing a real stage (minutes to
 * days) nothing. In-process workers (tests, the demo) default to 0: startWorker's settings.
 */
const DEFAULT_MIN_CHECKPOINT_SECONDS = 5;

const HELP = `usage: miniglm worker [options]

  --redis-url   Redis (default REDIS_URL)
  --prefix      queue key prefix (default MINIGLM_PREFIX, then "miniglm")
  --work-dir    local cache of datasets and checkpoints (default .miniglm/worker)
  --backend     wasm | cpu | tensorflow | tensorflow-gpu (default: best available)
  --id          worker id shown in stage events (default host:pid)
  --cache-gb    most GiB the local artifact cache keeps (default 8)

The database is DATABASE_URL, or an embedded PGlite in .miniglm/pglite (one process only).
A stage writes a checkpoint at most every MINIGLM_MIN_CHECKPOINT_SECONDS (default 5; 0: as
often as its checkpointEvery says); its first and last checkpoint and the one at a stop or
cancel are always written.
Every MINIGLM_RECONCILE_INTERVAL_MS (default 30000) the worker queues again the runs that
Postgres says are queued or running and whose jobs Redis has lost (a restart without
persistence, say). Every MINIGLM_COLLECT_INTERVAL_MS (default 600000) it removes stored bytes
and datasets nothing refers to any more (after an hour's grace) and its local copies of
what is gone.
A key runs at most MINIGLM_QUOTA_RUNNING_RUNS runs at once (default 20; a key's own limit,
miniglm keys set ID --max-running-runs N, comes first; admin keys have none): give the
workers the API's value. A run past it stays queued, and is looked at again every
MINIGLM_HELD_BACK_DELAY_MS (default 3000).
SIGTERM or Ctrl-C: running stages finish their iteration, checkpoint and go back to the
queue; then the worker exits 0.`;

export async function worker(argv: string[]): Promise<void> {
  const f = parseCommandArgs(
    'worker',
    argv,
    {
      'redis-url': { type: 'string' },
      prefix: { type: 'string' },
      'work-dir': { type: 'string' },
      backend: { type: 'string' },
      id: { type: 'string' },
      'cache-gb': { type: 'string' },
    },
    HELP,
  );
  const redisUrl = requireRedisUrl(f['redis-url']);
  const prefix = queuePrefix(f.prefix);
  const cacheBytes =
    f['cache-gb'] === undefined
      ? undefined
      : numberFlag('cache-gb', f['cache-gb'], 8, { min: 0.01, max: 1e6 }) * 1024 ** 3;
  const lockDurationMs = envMs('MINIGLM_LOCK_DURATION_MS');
  const stalledIntervalMs = envMs('MINIGLM_STALLED_INTERVAL_MS');
  const reconcileIntervalMs = envMs('MINIGLM_RECONCILE_INTERVAL_MS');
  const collectIntervalMs = envMs('MINIGLM_COLLECT_INTERVAL_MS');
  const heldBackDelayMs = envMs('MINIGLM_HELD_BACK_DELAY_MS');
  const defaultMaxRunningRuns = quotasFromEnv().runningRuns;
  const minCheckpointSeconds = envSeconds('MINIGLM_MIN_CHECKPOINT_SECONDS', DEFAULT_MIN_CHECKPOINT_SECONDS);
  const db = await openServiceDb();
  const running = await startWorker({
    db,
    redisUrl,
    prefix,
    workDir: f['work-dir'] ?? process.env.MINIGLM_WORK_DIR,
    workerId: f.id,
    settings: {
      backend: f.backend ?? process.env.MINIGLM_BACKEND,
      lockDurationMs,
      stalledIntervalMs,
      reconcileIntervalMs,
      collectIntervalMs,
      cacheBytes,
      minCheckpointSeconds,
      defaultMaxRunningRuns,
      heldBackDelayMs,
    },
  }).catch(async (error: Error) => {
    await db.close(); // an open PGlite would keep the process alive
    throw new UsageError(error.message);
  });
  onShutdownSignal(async (signal) => {
    console.log(`[worker ${running.workerId}] ${signal}: handing running stages back at a checkpoint`);
    await running.close();
    await db.close();
    console.log(`[worker ${running.workerId}] stopped`);
  });
}
