/** `miniglm api`: the REST API of the training service and its web dashboard (served at /). */
import { startApi } from '@miniglm/api';
import fs from 'node:fs';
import { createRedis, ensureApiKey } from '@miniglm/core/service';
import type { Db } from '@miniglm/core/db';
import { UsageError } from '../errors.ts';
import { numberFlag, parseCommandArgs } from '../args.ts';
import { onShutdownSignal, openServiceDb, queuePrefix, requireRedisUrl } from '../services.ts';

const HELP = `usage: miniglm api [--host H] [--port N] [--redis-url URL] [--prefix P]

  --host       address to listen on (default 127.0.0.1; 0.0.0.0 in a container). Any
               address but loopback needs an API key to exist first (miniglm keys create):
               with no key the API is keyless, which only this machine may reach
  --port       default 8080
  --redis-url  Redis (default REDIS_URL)
  --prefix     queue key prefix (default MINIGLM_PREFIX, then "miniglm")

MINIGLM_ADMIN_KEY_FILE (a Docker secret, say) or MINIGLM_ADMIN_KEY: a key made by
"miniglm keys generate", stored as an admin key at start unless it is there already.
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
  await bootstrapAdminKey(db).catch(async (error: unknown) => {
    await db.close();
    throw error;
  });
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

/**
 * The first admin key of a deployment from its environment: MINIGLM_ADMIN_KEY_FILE (a Docker
 * secret) or MINIGLM_ADMIN_KEY, stored unless it is there already, so that an API on
 * 0.0.0.0 can start without anyone running "miniglm keys create" inside the deployment.
 */
async function bootstrapAdminKey(db: Db): Promise<void> {
  const file = process.env.MINIGLM_ADMIN_KEY_FILE;
  let key = process.env.MINIGLM_ADMIN_KEY;
  let from = 'MINIGLM_ADMIN_KEY';
  if (file) {
    from = `MINIGLM_ADMIN_KEY_FILE (${file})`;
    try {
      key = fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`${from}: cannot read it (${(error as Error).message})`);
    }
  }
  if (!key) return;
  const stored = await ensureApiKey(db.prisma, key, { name: 'admin (bootstrap)', role: 'admin' });
  if (!stored.ok) throw new UsageError(`${from}: ${stored.error}`);
  if (stored.created) console.log(`miniglm api: stored the admin key ${stored.key.id} from ${from}`);
}
