/** Runs: submit a curriculum, list and read runs, their events, metrics and lineage; cancel. */
import type { FlowJob, FlowProducer } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { Curriculum } from '@miniglm/core';
import { cancelChannel, cancelRun, submitRun } from '@miniglm/core/service';
import { REDIS_DEADLINE_MS, deadline, requireRedis, type ApiContext } from '../context.ts';
import { fromService } from '../errors.ts';
import { IdParams, ListRunsQuery, MetricsQuery } from '../schemas.ts';
import { documentationOnly } from '../validation.ts';
import { runLineage } from '../views/lineage.ts';
import { getRun, listRuns, runEvents, runMetrics } from '../views/runs.ts';

export function runRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { prisma } = ctx;

  app.post(
    '/v1/runs',
    {
      schema: { tags: ['runs'], summary: 'Submit a curriculum; its flow is queued at once', body: Curriculum },
      // The Curriculum schema is here for the OpenAPI document only: core's submitRun
      // validates (defaults, JSON-path errors, semantic checks, sources), so the route and
      // `miniglm train` accept exactly the same curricula.
      validatorCompiler: documentationOnly,
    },
    async (request, reply) => {
      requireRedis(ctx);
      // submitRun only calls `add`; the deadline turns a Redis that stops answering midway
      // into a failed run and a 503 (core marks the run failed) instead of a hung request.
      const flows = {
        add: (flow: FlowJob) => deadline(ctx.flows.add(flow), REDIS_DEADLINE_MS, 'queueing the run'),
      } as unknown as FlowProducer;
      const submitted = fromService(await submitRun({ prisma, flows }, request.body));
      return reply.status(201).header('location', `/v1/runs/${submitted.id}`).send(submitted);
    },
  );

  app.get<{ Querystring: ListRunsQuery }>(
    '/v1/runs',
    { schema: { tags: ['runs'], summary: 'Runs, newest first', querystring: ListRunsQuery } },
    async (request) => ({ runs: await listRuns(prisma, request.query) }),
  );

  app.get<{ Params: IdParams }>(
    '/v1/runs/:id',
    { schema: { tags: ['runs'], summary: 'A run with its stages, latest evaluation and aliases', params: IdParams } },
    async (request) => getRun(prisma, ctx.db.sql, request.params.id),
  );

  app.get<{ Params: IdParams }>(
    '/v1/runs/:id/events',
    { schema: { tags: ['runs'], summary: "The run's stage events in time order", params: IdParams } },
    async (request) => ({ events: await runEvents(prisma, request.params.id) }),
  );

  app.get<{ Params: IdParams; Querystring: MetricsQuery }>(
    '/v1/runs/:id/metrics',
    {
      schema: {
        tags: ['runs'],
        summary: 'Metric histories by key and stage, with stage offsets',
        params: IdParams,
        querystring: MetricsQuery,
      },
    },
    async (request) =>
      runMetrics(prisma, request.params.id, [...new Set((request.query.keys ?? 'trainLoss,valLoss').split(','))]),
  );

  app.get<{ Params: IdParams }>(
    '/v1/runs/:id/lineage',
    {
      schema: {
        tags: ['runs'],
        summary: 'Datasets, stages and checkpoints this run comes from and leads to, across runs',
        params: IdParams,
      },
    },
    async (request) => runLineage(prisma, request.params.id),
  );

  app.post<{ Params: IdParams }>(
    '/v1/runs/:id/cancel',
    {
      schema: {
        tags: ['runs'],
        summary: 'Cancel a run: queued stages at once, a running one at its next iteration',
        params: IdParams,
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
