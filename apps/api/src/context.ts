/**
 * What every route needs: the database, Redis, and the BullMQ objects the API uses to queue
 * work. Built once per app by buildApi and closed by its onClose hook.
 */
import { FlowProducer, Queue, QueueEvents } from 'bullmq';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Redis } from 'ioredis';
import { ArtifactStore, type Db, type PrismaClient } from '@miniglm/core/db';
import {
  QUEUE,
  readWorkerAds,
  runLimitsFromEnv,
  type Capacity,
  type OwnerQuotas,
  type QueueName,
} from '@miniglm/core/service';
import { HttpError } from './errors.ts';
import { RateLimiter, type Rate } from './rate-limit.ts';

/** The app as the routes see it: each route's request parts and answers are typed by its schemas. */
export type Api = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface ApiContext {
  db: Db;
  prisma: PrismaClient;
  /** Non-blocking, fail-fast client: commands fail at once while Redis is down. */
  redis: Redis;
  prefix: string;
  flows: FlowProducer;
  /** One Queue per QUEUE name, for adding generate jobs, reading jobs and counting them. */
  queues: Record<QueueName, Queue>;
  artifacts: ArtifactStore;
  /** What one run may ask (MINIGLM_MAX_* in the environment) and the workers' advertised memory. */
  capacity: Capacity;
  /** The default per-key quotas (MINIGLM_QUOTA_* or ApiOptions.quotas); a key's own limits are in its row. */
  quotas: OwnerQuotas;
  /** Submissions per key, or per client address when keyless (MINIGLM_SUBMIT_RATE); undefined: off. */
  submitLimiter: RateLimiter | undefined;
  generateTimeoutMs: number;
  /** The generate queue's event stream, opened on first use (see below). */
  generateEvents(): Promise<QueueEvents>;
  close(): Promise<void>;
}

/** How long a request waits for Redis to take a job before answering 503. */
export const REDIS_DEADLINE_MS = 5000;

/** How long closing one BullMQ object may take before we stop waiting for it. */
const CLOSE_TIMEOUT_MS = 2000;

export function createContext(options: {
  db: Db;
  redis: Redis;
  prefix: string;
  generateTimeoutMs: number;
  quotas: OwnerQuotas;
  submitRate: Rate | null;
}): ApiContext {
  const { db, redis, prefix } = options;
  const connection = { connection: redis, prefix };
  const flows = new FlowProducer(connection);
  const queues = Object.fromEntries(Object.values(QUEUE).map((name) => [name, new Queue(name, connection)])) as Record<
    QueueName,
    Queue
  >;
  // Redis trouble is reported by the requests that need it (503) and by /readyz; without a
  // listener an 'error' event would crash the process.
  flows.on('error', () => {});
  for (const queue of Object.values(queues)) queue.on('error', () => {});

  // QueueEvents reads the event stream with a blocking XREAD, so it needs a connection of
  // its own that never gives up on a command (maxRetriesPerRequest null). It is opened on
  // the first generate request: most API processes never generate, and one that is started
  // while Redis is down must still close promptly (a QueueEvents that never connected
  // cannot be closed cleanly by BullMQ 6).
  let events: { queueEvents: QueueEvents; blocking: Redis } | undefined;
  let opening: Promise<QueueEvents> | undefined;
  const generateEvents = (): Promise<QueueEvents> => {
    opening ??= (async () => {
      const blocking = redis.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true });
      blocking.on('error', () => {});
      const queueEvents = new QueueEvents(QUEUE.generate, { connection: blocking, prefix });
      queueEvents.on('error', () => {});
      events = { queueEvents, blocking };
      await queueEvents.waitUntilReady();
      return queueEvents;
    })().catch((error: unknown) => {
      opening = undefined; // try again on the next request
      throw error;
    });
    return opening;
  };

  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      const closing: Promise<unknown>[] = [flows.close(), ...Object.values(queues).map((q) => q.close())];
      if (events) closing.push(events.queueEvents.close());
      await Promise.all(
        closing.map((p) =>
          withTimeout(
            p.catch(() => {}),
            CLOSE_TIMEOUT_MS,
          ),
        ),
      );
      events?.blocking.disconnect();
    })());

  return {
    db,
    prisma: db.prisma,
    redis,
    prefix,
    flows,
    queues,
    artifacts: new ArtifactStore(db),
    capacity: { limits: runLimitsFromEnv(), workers: () => readWorkerAds(redis, prefix) },
    quotas: options.quotas,
    submitLimiter: options.submitRate ? new RateLimiter(redis, prefix, 'submit', options.submitRate) : undefined,
    generateTimeoutMs: options.generateTimeoutMs,
    generateEvents,
    close,
  };
}

/**
 * Refuses at once when Redis is not connected. BullMQ waits for its first connection
 * before running any command, so without this check a request that queues work would hang
 * for as long as Redis is down instead of answering 503.
 */
export function requireRedis(ctx: Pick<ApiContext, 'redis'>): void {
  if (ctx.redis.status !== 'ready')
    throw new HttpError(
      503,
      `Redis is not connected (${ctx.redis.status}); nothing was queued or written, try again when it is back`,
    );
}

/** Rejects with a 503 when the promise has not settled after `ms`. */
export async function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const result = await withTimeout(
    promise.then((value) => ({ value })),
    ms,
  );
  if (!result) throw new HttpError(503, `${what}: Redis did not answer within ${ms / 1000} s`);
  return result.value;
}

/** Resolves with the promise, or with undefined after `ms` (the timer does not hold the process open). */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
