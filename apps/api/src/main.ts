/**
 * Runs the API as a process: `npm start -w @miniglm/api` (or `npx tsx apps/api/src/main.ts`).
 *
 *   DATABASE_URL    Postgres (unset: the embedded PGlite under .miniglm/pglite)
 *   REDIS_URL       default redis://127.0.0.1:6379
 *   PORT, HOST      default 8080, 127.0.0.1
 *   MINIGLM_PREFIX  BullMQ key prefix, the same as the workers' (default "miniglm")
 *
 * Migrations are applied on start (the runner is safe to run from several processes).
 * SIGINT/SIGTERM stop accepting requests, finish the ones in flight, and close everything.
 */
import { createDb, migrate } from '@miniglm/core/db';
import { DEFAULT_PREFIX, DEFAULT_REDIS_URL, createRedis, redactRedisUrl } from '@miniglm/core/service';
import { startApi } from './server.ts';

async function main(): Promise<void> {
  const db = await createDb();
  const migrated = await migrate(db);
  if (!migrated.ok) {
    await db.close();
    throw new Error(migrated.error);
  }
  const redisUrl = process.env.REDIS_URL || DEFAULT_REDIS_URL;
  const redis = createRedis(redisUrl, { failFast: true });
  const port = Number(process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, not "${process.env.PORT}"`);
  const api = await startApi({ db, redis, prefix: process.env.MINIGLM_PREFIX || DEFAULT_PREFIX, port, host: process.env.HOST || '127.0.0.1', logger: true });
  api.app.log.info(`MiniGLM API on ${api.url} (docs: ${api.url}/docs), Redis ${redactRedisUrl(redisUrl)}`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    api.app.log.info(`${signal}: closing`);
    await api.close();
    redis.disconnect();
    await db.close();
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error(`miniglm api: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
