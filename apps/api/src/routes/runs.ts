/** Runs: submit a curriculum, list and read runs, their events, metrics and lineage; cancel. */
import type { FlowJob, FlowProducer } from 'bullmq';
import { Curriculum } from '@miniglm/core';
import { cancelChannel, cancelRun, submitRun } from '@miniglm/core/service';
import { REDIS_DEADLINE_MS, deadline, requireRedis, type Api, type ApiContext } from '../context.ts';
import { fromService } from '../errors.ts';
import {
  CancelledRun,
  Lineage,
  RunEvents,
  RunList,
  RunMetrics,
  RunView,
  SubmittedRunView,
  errors,
} from '../responses.ts';
import { IdParams, ListRunsQuery, MetricsQuery } from '../schemas.ts';
import { documentationOnly } from '../validation.ts';
import { runLineage } from '../views/lineage.ts';
import { getRun, listRuns, runEvents, runMetrics } from '../views/runs.ts';

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
      // into a failed run and a 503 (core marks the run failed) instead of a hung request.
      const flows = {
        add: (flow: FlowJob) => deadline(ctx.flows.add(flow), REDIS_DEADLINE_MS, 'queueing the run'),
      } as unknown as FlowProducer;
      const body: unknown = request.body;
      const submitted = fromService(await submitRun({ prisma, flows }, body));
      return reply.status(201).header('location', `/v1/runs/${submitted.id}`).send(submitted);
    },
  );

  app.get(
    '/v1/runs',
    {
      schema: {
        tags: ['runs'],
        summary: 'Runs, newest first',
        querystring: ListRunsQuery,
        response: { 200: RunList, ...errors(400) },
      },
    },
    async (request) => ({ runs: await listRuns(prisma, request.query) }),
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
    async (request) => getRun(prisma, ctx.db.sql, request.params.id),
  );

  app.get(
    '/v1/runs/:id/events',
    {
      schema: {
        tags: ['runs'],
        summary: "The run's stage events in time order",
        params: IdParams,
        response: { 200: RunEvents, ...errors(404) },
      },
    },
    async (request) => ({ events: await runEvents(prisma, request.params.id) }),
  );

  app.get(
    '/v1/runs/:id/metrics',
    {
      schema: {
        tags: ['runs'],
        summary: 'Metric histories by key and stage, with stage offsets',
        params: IdParams,
        querystring: MetricsQuery,
        response: { 200: RunMetrics, ...errors(400, 404) },
      },
    },
    async (request) => runMetrics(prisma, request.params.id, [...new Set(request.query.keys.split(','))]),
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
    async (request) => runLineage(prisma, request.params.id),
  );

  app.post(
    '/v1/runs/:id/cancel',
    {
      schema: {
        tags: ['runs'],
        summary: 'Cancel a run: queued stages at once, a running one at its next iteration',
        params: IdParams,
        response: { 202: CancelledRun, ...errors(404, 409, 503) },
      },
    },
    async (request, reply) => {
      requireRedis(ctx);
      const result = fromService(
        await cancelRun(
          { prisma, publish: (runId) => ctx.redis.publish(cancelChannel(ctx.prefix), runId) },
          request.params.id,
        ),
      );
      return reply.status(202).send(result);
    },
  );
}
