/**
 * Liveness, readiness and metrics. /healthz says the process answers (a restart would not
 * help otherwise); /readyz says whether it can serve requests, i.e. reach Postgres and
 * Redis, and which one it cannot reach.
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { withTimeout, type ApiContext } from '../context.ts';
import { errorBody } from '../errors.ts';

export const READY_TIMEOUT_MS = 2000;

/** Undefined when the check answered in time, else why not. */
async function probe(check: () => Promise<unknown>): Promise<string | undefined> {
  try {
    const answered = await withTimeout(
      check().then(() => true),
      READY_TIMEOUT_MS,
    );
    return answered ? undefined : `no answer within ${READY_TIMEOUT_MS / 1000} s`;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

export function healthRoutes(app: FastifyInstance, ctx: ApiContext, register: Registry): void {
  const hidden = { tags: ['health'] };
  // "/" is the dashboard (@miniglm/web), served by server.ts.
  app.get('/healthz', { schema: { ...hidden, summary: 'The process is alive' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { ...hidden, summary: 'Postgres and Redis both answer' } }, async (_request, reply) => {
    const [database, redis] = await Promise.all([
      probe(() => ctx.db.sql.query('SELECT 1')),
      probe(() => ctx.redis.ping()),
    ]);
    if (!database && !redis) return { status: 'ready', database: 'ok', redis: 'ok' };
    const down = [database && `database: ${database}`, redis && `redis: ${redis}`].filter(Boolean).join('; ');
    return reply
      .status(503)
      .send({ ...errorBody(503, `not ready: ${down}`), database: database ?? 'ok', redis: redis ?? 'ok' });
  });

  app.get('/metrics', { schema: { ...hidden, summary: 'Prometheus metrics' } }, async (_request, reply) => {
    const text = await register.metrics();
    return reply.type(register.contentType).send(text);
  });
}
