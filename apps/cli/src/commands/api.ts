/** `miniglm api`: the REST API of the training service and its web dashboard (served at /). */
import { startApi } from '@miniglm/api';
import { createRedis } from '@miniglm/core/service';
import { numberFlag, parseCommandArgs } from '../args.ts';
import { onShutdownSignal, openServiceDb, queuePrefix, requireRedisUrl } from '../services.ts';

const HELP = `usage: miniglm api [--host H] [--port N] [--redis-url URL] [--prefix P]

  --host       address to listen on (default 127.0.0.1; 0.0.0.0 in a container). Any
               address but loopback needs an API key to exist first (miniglm keys create):
               with no key the API is keyless, which only this machine may reach
  --port       default 8080
  --redis-url  Redis (default REDIS_URL)
  --prefix     queue key prefix (default MINIGLM_PREFIX, then "miniglm")

MINIGLM_ALLOWED_HOSTS (comma-separated host names) adds names the API answers to besides
localhost; MINIGLM_ALLOWED_ORIGINS adds web origins that may send writes besides its own.
The database is DATABASE_URL, or an embedded PGlite in .miniglm/pglite (which one process
owns: use "miniglm demo" to run the API and a worker together on it).`;

export async function apiCommand(argv: string[]): Promise<void> {
  const f = parseCommandArgs(
    'api',
    argv,
    {
      host: { type: 'string' },
      port: { type: 'string' },
      'redis-url': { type: 'string' },
      prefix: { type: 'string' },
    },
    HELP,
  );
  const port = numberFlag('port', f.port, 8080, { integer: true, min: 0, max: 65535 });
  const redisUrl = requireRedisUrl(f['redis-url']);
  const db = await openServiceDb();
  const redis = createRedis(redisUrl, { failFast: true });
  const server = await startApi({
    db,
    redis,
    prefix: queuePrefix(f.prefix),
    port,
    host: f.host ?? '127.0.0.1',
    logger: true,
  }).catch(async (error: unknown) => {
    // Refused (no key on a public address, a port in use): close what would keep the process alive.
    redis.disconnect();
    await db.close();
    throw error;
  });
  console.log(`miniglm api: listening on ${server.url} (OpenAPI at ${server.url}/docs)`);
  onShutdownSignal(async () => {
    await server.close();
    await redis.quit().catch(() => {});
    await db.close();
  });
}
