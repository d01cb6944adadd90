/** Runs: submit a curriculum, list and read runs, their events, metrics and lineage; cancel. */
import type { FlowJob, FlowProducer } from 'bullmq';
import type { FastifyRequest } from 'fastify';
import { Curriculum } from '@miniglm/core';
import { QUEUE, cancelChannel, cancelRun, deleteRun, jobId, submitRun } from '@miniglm/core/service';
import { ownerOf, ownerScope, spareQuotas } from '../auth.ts';
import { REDIS_DEADLINE_MS, deadline, requireRedis, withTimeout, type Api, type ApiContext } from '../context.ts';
import { HttpError, HttpTooManyRequests, badRequest, fromService } from '../errors.ts';
import { SUBMIT_RATE_ENV } from '../rate-limit.ts';
import {
  CancelledRun,
  Lineage,
  RunEvents,
  RunList,
  NoContent,
  RunMetrics,
  RunView,
  SubmittedRunView,
  errors,
  tooManyRequests,
} from '../responses.ts';
import { IdParams, ListEventsQuery, ListRunsQuery, MetricsQuery } from '../schemas.ts';
import { documentationOnly } from '../validation.ts';
import { runLineage } from '../views/lineage.ts';
import { getRun, listRuns, requireRun, runEvents, runMetrics } from '../views/runs.ts';

/** How long the submission rate limit waits for Redis: one small script, answered in a millisecond when Redis is well. */
const RATE_LIMIT_DEADLINE_MS = 1000;

/**
 * The submission rate limit (rate-limit.ts): per key, or per client address when keyless.
 * A Redis that does not answer is a 503 with nothing written, as for the queueing itself.
 */
async function limitSubmissions(ctx: ApiContext, request: FastifyRequest): Promise<void> {
  const limiter = ctx.submitLimiter;
  if (!limiter) return;
  const keyId = request.principal?.keyId ?? null;
  const client = keyId ? `key:${keyId}` : `address:${request.ip}`;
  const hit = await withTimeout(limiter.hit(client), RATE_LIMIT_DEADLINE_MS);
  if (!hit)
    throw new HttpError(
      503,
      `Redis did not answer the submission rate limit within ${RATE_LIMIT_DEADLINE_MS / 1000} s; nothing was written: submit again once Redis answers`,
    );
  if (!hit.allowed)
    throw new HttpTooManyRequests(
      `submission rate limit: ${keyId ? `key ${keyId}` : `the address ${request.ip} (no key)`} may submit ` +
        `${limiter.describe(SUBMIT_RATE_ENV)} and has; submit again in ${hit.retryAfterSeconds} s (Retry-After)`,
      hit.retryAfterSeconds,
    );
}

/** Keys one metrics request may name: the answer's size is keys × stages × maxPoints. */
const MAX_METRIC_KEYS = 20;

export function runRoutes(app: Api, ctx: ApiContext): void {
  const { prisma } = ctx;

  app.post(
    '/v1/runs',
    {
      schema: {
        tags: ['runs'],
        summary: 'Submit a curriculum; its flow is queued at once',
        body: Curriculum,
        response: {
          201: SubmittedRunView,
          ...errors(400, 404, 413, 415, 503),
          ...tooManyRequests(
            'A quota of the key (queued runs, running runs, stored bytes); the submission rate limit or too many failed API-key checks from this address (both with Retry-After)',
          ),
        },
      },
      // Before the body is parsed: a flood of submissions is refused at the door, and a
      // submission that Redis cannot queue is refused before anything is read or written.
      onRequest: async (request) => {
        requireRedis(ctx);
        await limitSubmissions(ctx, request);
      },
      // The Curriculum schema is here for the OpenAPI document only: core's submitRun
      // validates (defaults, JSON-path errors, semantic checks, sources), so the route and
      // `miniglm train` accept exactly the same curricula. The body is therefore not yet a
      // Curriculum, whatever its type says: submitRun takes it as unknown.
      validatorCompiler: documentationOnly,
    },
    async (request, reply) => {
      // submitRun only calls `add`; the deadline turns a Redis that stops answering midway
      // into a 503 naming Redis (core takes the run's rows back) instead of a hung request.
      const flows = {
        add: (flow: FlowJob) => deadline(ctx.flows.add(flow), REDIS_DEADLINE_MS, 'queueing the run'),
      } as unknown as FlowProducer;
      const body: unknown = request.body;
      const submitted = fromService(
        await submitRun(
          {
            prisma,
            flows,
            capacity: ctx.capacity,
            quotas: spareQuotas(request) ? undefined : ctx.quotas,
            ownerId: ownerOf(request),
            visibleTo: ownerScope(request),
          },
          body,
        ),
      );
      return reply.status(201).header('location', `/v1/runs/${submitted.id}`).send(submitted);
    },
  );

  app.get(
    '/v1/runs',
    {
      schema: {
        tags: ['runs'],
        summary: 'Runs, newest first, a page at a time (?limit=, ?cursor= from nextCursor)',
        querystring: ListRunsQuery,
        response: { 200: RunList, ...errors(400) },
      },
    },
    async (request) => listRuns(prisma, request.query, ownerScope(request)),
  );

  app.get(
    '/v1/runs/:id',
    {
      schema: {
        tags: ['runs'],
        summary: 'A run with its stages, latest evaluation and aliases',
        params: IdParams,
        response: { 200: RunView, ...errors(404) },
      },
    },
    async (request) => getRun(prisma, ctx.db.sql, request.params.id, ownerScope(request)),
  );

  app.get(
    '/v1/runs/:id/events',
    {
      schema: {
        tags: ['runs'],
        summary: "The run's stage events in time order, a page at a time (?limit=, ?cursor= from nextCursor)",
        params: IdParams,
        querystring: ListEventsQuery,
        response: { 200: RunEvents, ...errors(400, 404) },
      },
    },
    async (request) => runEvents(prisma, request.params.id, request.query, ownerScope(request)),
  );

  app.get(
    '/v1/runs/:id/metrics',
    {
      schema: {
        tags: ['runs'],
        summary: 'Metric histories by key and stage, with stage offsets, downsampled to ?maxPoints= (default 1000)',
        params: IdParams,
        querystring: MetricsQuery,
        response: { 200: RunMetrics, ...errors(400, 404) },
      },
    },
    async (request) => {
      const keys = [...new Set(request.query.keys.split(','))];
      if (keys.length > MAX_METRIC_KEYS)
        throw badRequest(`query string /keys: name at most ${MAX_METRIC_KEYS} metric keys, not ${keys.length}`);
      return runMetrics(prisma, ctx.db.sql, request.params.id, keys, request.query.maxPoints, ownerScope(request));
    },
  );

  app.get(
    '/v1/runs/:id/lineage',
    {
      schema: {
        tags: ['runs'],
        summary: 'Datasets, stages and checkpoints this run comes from and leads to, across runs',
        params: IdParams,
        response: { 200: Lineage, ...errors(404) },
      },
    },
    async (request) => runLineage(prisma, request.params.id, ownerScope(request)),
  );

  app.post(
    '/v1/runs/:id/cancel',
    {
      schema: {
        tags: ['runs'],
        summary: 'Cancel a run: recorded at once (Redis may be down); a running stage stops writing at once',
        params: IdParams,
        response: { 202: CancelledRun, ...errors(404, 409, 503) },
      },
    },
    async (request, reply) => {
      // No requireRedis: the cancel is recorded in Postgres, which is what workers obey; Redis
      // is told best effort, within cancelRun's deadline, and may be down or hung.
      // A member cancels only its own runs; another member's is not found.
      const owner = ownerScope(request);
      if (owner) await requireRun(prisma, request.params.id, owner);
      const evaluate = ctx.queues[QUEUE.evaluate];
      const result = fromService(
        await cancelRun(
          {
            prisma,
            publish: (runId) => ctx.redis.publish(cancelChannel(ctx.prefix), runId),
            // The flow's root with its children: nothing if a worker holds one of its jobs.
            removeJobs: (runId) => evaluate.remove(jobId.evaluate(runId), { removeChildren: true }),
          },
          request.params.id,
        ),
      );
      return reply.status(202).send(result);
    },
  );

  app.delete(
    '/v1/runs/:id',
    {
      schema: {
        tags: ['runs'],
        summary:
          'Delete a finished run with its stages, checkpoints, metrics, evaluations and events; its bytes are collected (409 while it runs or an alias or another run uses its checkpoints)',
        params: IdParams,
        response: { 204: NoContent, ...errors(404, 409) },
      },
    },
    async (request, reply) => {
      // A member deletes only its own runs; another member's is not found.
      const deps = { db: ctx.db, store: ctx.artifacts, owner: ownerScope(request) };
      fromService(await deleteRun(deps, request.params.id));
      return reply.status(204).send();
    },
  );
}
