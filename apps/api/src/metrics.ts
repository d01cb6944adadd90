/**
 * Prometheus metrics. Each app has a Registry of its own (not prom-client's global one), so
 * several apps can live in one process (tests) without registering a metric twice.
 * Run and job counts are gauges computed when /metrics is scraped, from Postgres and Redis.
 */
import type { FastifyInstance } from 'fastify';
import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { QUEUE } from '@miniglm/core/service';
import type { ApiContext } from './context.ts';
import { RUN_STATUSES } from './schemas.ts';

const JOB_STATES = ['waiting', 'waiting-children', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;

export function createMetrics(app: FastifyInstance, ctx: ApiContext): Registry {
  const register = new Registry();
  collectDefaultMetrics({ register });

  const duration = new Histogram({
    name: 'miniglm_http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
    registers: [register],
  });
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern (/v1/runs/:id), not the URL: one series per route, not per id.
    const route = request.routeOptions.url ?? 'unmatched';
    duration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  new Gauge({
    name: 'miniglm_runs',
    help: 'Runs by status',
    labelNames: ['status'] as const,
    registers: [register],
    async collect() {
      const groups = await ctx.prisma.run.groupBy({ by: ['status'], _count: { _all: true } });
      const counts = new Map(groups.map((g) => [g.status as string, g._count._all]));
      for (const status of RUN_STATUSES) this.set({ status }, counts.get(status) ?? 0);
    },
  });

  new Gauge({
    name: 'miniglm_jobs',
    help: 'BullMQ jobs by queue and state',
    labelNames: ['queue', 'state'] as const,
    registers: [register],
    async collect() {
      // With Redis down the job counts are unknown: leave them out rather than hang the scrape.
      this.reset();
      if (ctx.redis.status !== 'ready') return;
      for (const name of Object.values(QUEUE)) {
        const counts = await ctx.queues[name].getJobCounts(...JOB_STATES);
        for (const state of JOB_STATES) this.set({ queue: name, state }, counts[state] ?? 0);
      }
    },
  });

  return register;
}
