/**
 * Liveness, readiness and metrics. /healthz says the process answers (a restart would not
 * help otherwise); /readyz says whether it can serve requests, i.e. reach Postgres and
 * Redis, and which one it cannot reach.
 */
import type { Registry } from 'prom-client';
import { withTimeout, type Api, type ApiContext } from '../context.ts';
import { errorBody } from '../errors.ts';
import { Alive, MetricsText, NotReady, Ready } from '../responses.ts';

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

export function healthRoutes(app: Api, ctx: ApiContext, register: Registry): void {
  const tags = ['health'];
  // "/" is the dashboard (@miniglm/web), served by server.ts.
  app.get('/healthz', { schema: { tags, summary: 'The process is alive', response: { 200: Alive } } }, async () => ({
    status: 'ok' as const,
  }));

  app.get(
    '/readyz',
    { schema: { tags, summary: 'Postgres and Redis both answer', response: { 200: Ready, 503: NotReady } } },
    async (_request, reply) => {
      const [database, redis] = await Promise.all([
        probe(() => ctx.db.sql.query('SELECT 1')),
        probe(() => ctx.redis.ping()),
      ]);
      if (!database && !redis) return { status: 'ready' as const, database: 'ok' as const, redis: 'ok' as const };
      const down = [database && `database: ${database}`, redis && `redis: ${redis}`].filter(Boolean).join('; ');
      return reply
        .status(503)
        .send({ ...errorBody(503, `not ready: ${down}`), database: database ?? 'ok', redis: redis ?? 'ok' });
    },
  );

  app.get(
    '/metrics',
    { schema: { tags, summary: 'Prometheus metrics', response: { 200: MetricsText } } },
    async (_request, reply) => {
      const text = await register.metrics();
      return reply.type(register.contentType).send(text);
    },
  );
}
