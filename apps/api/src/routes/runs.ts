/** Runs: submit a curriculum, list and read runs, their events, metrics and lineage; cancel. */
import type { FlowJob, FlowProducer } from 'bullmq';
import { Curriculum } from '@miniglm/core';
import { QUEUE, cancelChannel, cancelRun, deleteRun, jobId, submitRun } from '@miniglm/core/service';
import { ownerOf, ownerScope } from '../auth.ts';
import { REDIS_DEADLINE_MS, deadline, requireRedis, type Api, type ApiContext } from '../context.ts';
import { badRequest, fromService } from '../errors.ts';
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
} from '../responses.ts';
import { IdParams, ListEventsQuery, ListRunsQuery, MetricsQuery } from '../schemas.ts';
import { documentationOnly } from '../validation.ts';
import { runLineage } from '../views/lineage.ts';
import { getRun, listRuns, requireRun, runEvents, runMetrics } from '../views/runs.ts';

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
        response: { 201: SubmittedRunView, ...errors(400, 404, 413, 415, 503) },
      },
      // The Curriculum schema is here for the OpenAPI document only: core's submitRun
      // validates (defaults, JSON-path errors, semantic checks, sources), so the route and
      // `miniglm train` accept exactly the same curricula. The body is therefore not yet a
      // Curriculum, whatever its type says: submitRun takes it as unknown.
      validatorCompiler: documentationOnly,
    },
    async (request, reply) => {
      requireRedis(ctx);
      // submitRun only calls `add`; the deadline turns a Redis that stops answering midway
      // into a 503 naming Redis (core takes the run's rows back) instead of a hung request.
      const flows = {
        add: (flow: FlowJob) => deadline(ctx.flows.add(flow), REDIS_DEADLINE_MS, 'queueing the run'),
      } as unknown as FlowProducer;
      const body: unknown = request.body;
      const submitted = fromService(
        await submitRun(
          { prisma, flows, capacity: ctx.capacity, ownerId: ownerOf(request), visibleTo: ownerScope(request) },
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
