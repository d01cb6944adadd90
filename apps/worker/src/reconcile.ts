/**
 * Redis is a queue, Postgres is the truth. A Redis restarted without persistence (or
 * flushed, or failed over to a replica that missed the last writes) forgets the jobs of runs
 * that Postgres still says are queued or running; nothing would ever run them again. The
 * reconciler looks, on worker start and then every `reconcileIntervalMs`, at every such run's
 * flow in Redis by its job id (the flow's root, the evaluate job, exists for as long as the
 * flow does) and:
 *
 * - queues the whole flow again when the root is gone. Re-running it is safe: prepare reuses
 *   the datasets it built, a stage that has succeeded returns at once, a stage that was
 *   running resumes from its last checkpoint (the attempt fence keeps a worker that is still
 *   training it from writing beside the new attempt), and job ids are derived from the run,
 *   so a flow queued twice is one flow;
 * - fails the run when its root failed for good but the failure never reached Postgres (the
 *   worker that saw it died first).
 *
 * A run younger than `reconcileGraceMs` is left alone: its submission may still be adding the
 * flow. One worker reconciles at a time (a short Redis lock); one whose Redis is down or hung
 * skips the round.
 */
import { randomUUID } from 'node:crypto';
import { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { jobId, markRunFailed, QUEUE, runFlow } from '@miniglm/core/service';
import type { WorkerContext } from './context.ts';
import { plainMessage } from './plain-error.ts';

export interface ReconcileReport {
  /** Runs whose flow Redis had lost, queued again. */
  requeued: string[];
  /** Runs whose flow had failed in Redis, now failed in Postgres too. */
  failed: string[];
}

export interface Reconciler {
  /** One round now (also what the timer runs); undefined when another round or worker has the lock. */
  reconcile(): Promise<ReconcileReport | undefined>;
  close(): Promise<void>;
}

/** Redis commands of a round give up after this long: a hung Redis must not hold a round forever. */
const COMMAND_TIMEOUT_MS = 5000;

export function startReconciler(ctx: WorkerContext): Reconciler {
  // A connection of its own that fails commands instead of queueing them while Redis is away.
  const redis: Redis = ctx.redis.duplicate({
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: COMMAND_TIMEOUT_MS,
  });
  redis.on('error', () => {});
  const flows = new FlowProducer({ connection: redis, prefix: ctx.prefix });
  const queues: FlowQueues = {
    prepare: new Queue(QUEUE.prepare, { connection: redis, prefix: ctx.prefix }),
    train: new Queue(QUEUE.train, { connection: redis, prefix: ctx.prefix }),
    evaluate: new Queue(QUEUE.evaluate, { connection: redis, prefix: ctx.prefix }),
  };
  flows.on('error', () => {});
  for (const queue of Object.values(queues)) queue.on('error', () => {});
  const lockKey = `${ctx.prefix}:lock:reconcile`;

  let round: Promise<ReconcileReport | undefined> | undefined;
  const reconcile = () =>
    (round ??= (async () => {
      const token = `${ctx.workerId}:${randomUUID()}`;
      const lockMs = Math.max(ctx.settings.reconcileIntervalMs, 10_000);
      try {
        await connected(redis);
        if ((await redis.set(lockKey, token, 'PX', lockMs, 'NX')) !== 'OK') return undefined;
        return await reconcileRuns(ctx, flows, queues);
      } catch (error) {
        ctx.log(`reconciling runs with Redis: ${(error as Error).message} (trying again later)`);
        return undefined;
      } finally {
        await redis.eval(DELETE_IF_OWNER, 1, lockKey, token).catch(() => {});
      }
    })().finally(() => (round = undefined)));

  void reconcile();
  const timer = setInterval(() => void reconcile(), ctx.settings.reconcileIntervalMs);
  timer.unref();
  return {
    reconcile,
    async close() {
      clearInterval(timer);
      await round;
      await Promise.allSettled([flows.close(), ...Object.values(queues).map((q) => q.close())]);
      redis.disconnect();
    },
  };
}

/** Resolves once the connection is up; rejects when it is not within a command's timeout. */
async function connected(redis: Redis): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`Redis is not connected (${redis.status})`));
    }, COMMAND_TIMEOUT_MS);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}

type FlowQueues = Record<'prepare' | 'train' | 'evaluate', Queue>;

async function reconcileRuns(ctx: WorkerContext, flows: FlowProducer, queues: FlowQueues): Promise<ReconcileReport> {
  const prisma = ctx.db.prisma;
  const report: ReconcileReport = { requeued: [], failed: [] };
  const runs = await prisma.run.findMany({
    where: {
      status: { in: ['queued', 'running'] },
      createdAt: { lt: new Date(Date.now() - ctx.settings.reconcileGraceMs) },
    },
    select: { id: true, stages: { select: { id: true, status: true }, orderBy: { index: 'asc' } } },
  });
  for (const run of runs) {
    const root = await queues.evaluate.getJob(jobId.evaluate(run.id));
    if (root) {
      if ((await root.getState()) !== 'failed') continue;
      const reason = await flowFailure(queues, run.id, run.stages.length);
      await markRunFailed(prisma, run.id, reason, ctx.workerId);
      ctx.log(`run ${run.id}: its flow failed in Redis (${reason}); marked failed`);
      report.failed.push(run.id);
      continue;
    }
    await flows.add(
      runFlow(
        run.id,
        run.stages.map((s) => s.id),
      ),
    );
    const open = run.stages.find((s) => s.status !== 'succeeded');
    if (open)
      await prisma.stageEvent.create({
        data: {
          stageId: open.id,
          type: 'queued',
          workerId: ctx.workerId,
          message: "queued again: Redis had lost the run's jobs",
        },
      });
    ctx.log(`run ${run.id}: Redis had lost its jobs; queued its flow again`);
    report.requeued.push(run.id);
  }
  return report;
}

/** Why a run's flow failed: the reason of its first failed job, in plain words. */
async function flowFailure(queues: FlowQueues, runId: string, stages: number): Promise<string> {
  const jobs = [
    { queue: queues.prepare, id: jobId.prepare(runId) },
    ...Array.from({ length: stages }, (_, i) => ({ queue: queues.train, id: jobId.stage(runId, i) })),
    { queue: queues.evaluate, id: jobId.evaluate(runId) },
  ];
  for (const { queue, id } of jobs) {
    const job = await queue.getJob(id);
    if (job?.failedReason && (await job.getState()) === 'failed')
      return `${job.name}: ${plainMessage(job.failedReason)}`;
  }
  return 'a job of the run failed';
}

const DELETE_IF_OWNER = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
