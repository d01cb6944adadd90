/**
 * `miniglm keys create|list|revoke`: API keys, made straight in the database (DATABASE_URL,
 * as the API and workers read it), not through the API: the first admin key must be made
 * by someone who has no key yet, and whoever can reach the database owns the service anyway.
 */
import {
  createApiKey,
  generateApiKey,
  isApiKeyRole,
  listApiKeys,
  revokeApiKey,
  API_KEY_ROLES,
} from '@miniglm/core/service';
import { parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';
import { openServiceDb } from '../services.ts';
import { table } from '../table.ts';

const HELP = `usage: miniglm keys create --name NAME --role admin|member|viewer [--json]
       miniglm keys list [--json]
       miniglm keys revoke ID
       miniglm keys generate

API keys of the training service, read and written in the database the API uses
(DATABASE_URL; without it the embedded PGlite in .miniglm/pglite, which only one process
can open: stop "miniglm demo" first). "create" prints the key once: only its hash is kept.
Clients send it as "Authorization: Bearer <key>"; the CLI's client commands read it from
MINIGLM_API_KEY. Once any key exists, every request to /v1/ needs one.

  admin    sees and changes everything
  member   submits runs, uploads files, names aliases; sees and changes only its own
  viewer   reads everything, changes nothing

"generate" prints a new key without storing it (no database): put it in a Docker secret
and point MINIGLM_ADMIN_KEY_FILE at it, and "miniglm api" stores it as an admin key when it
starts (the first key of a deployment, with no command to run inside it).`;

export async function keys(argv: string[]): Promise<void> {
  const [action, ...rest] = argv;
  if (!action || action === '--help' || action === '-h') {
    console.log(HELP);
    if (!action) process.exitCode = 2;
    return;
  }
  // `keys revoke ID`: the id may come as the first word, or as --id.
  const positional = action === 'revoke' && rest[0] && !rest[0].startsWith('-') ? rest.shift() : undefined;
  const f = parseCommandArgs(
    'keys',
    rest,
    {
      name: { type: 'string' },
      role: { type: 'string' },
      id: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    HELP,
  );
  if (action === 'generate') return console.log(generateApiKey());
  if (action !== 'create' && action !== 'list' && action !== 'revoke')
    throw new UsageError(
      `keys: unknown action "${action}"; use create, list, revoke or generate (see miniglm keys --help)`,
    );
  if (action === 'create') {
    if (!f.name?.trim()) throw new UsageError('keys create: missing --name NAME (who or what the key is for)');
    if (!f.role || !isApiKeyRole(f.role))
      throw new UsageError(`keys create: --role must be one of ${API_KEY_ROLES.join(', ')}, got "${f.role ?? ''}"`);
  }
  const id = positional ?? f.id;
  if (action === 'revoke' && !id)
    throw new UsageError('keys revoke: missing the key id (miniglm keys list shows them)');

  const db = await openServiceDb();
  try {
    if (action === 'create') {
      const key = await createApiKey(db.prisma, {
        name: f.name!.trim(),
        role: f.role as (typeof API_KEY_ROLES)[number],
      });
      if (f.json) console.log(JSON.stringify(key, null, 2));
      else {
        console.log(`created ${key.role} key ${key.id} ("${key.name}"); the key, shown only now:`);
        console.log(key.key);
      }
    } else if (action === 'list') {
      const all = await listApiKeys(db.prisma);
      if (f.json) console.log(JSON.stringify(all, null, 2));
      else if (all.length === 0) console.log('no API keys: the API runs keyless, on loopback addresses only');
      else
        console.log(
          table(
            ['id', 'name', 'role', 'created', 'revoked'],
            all.map((k) => [k.id, k.name, k.role, k.createdAt.toISOString(), k.revokedAt?.toISOString() ?? '']),
          ),
        );
    } else {
      const key = await revokeApiKey(db.prisma, id!);
      if (!key) throw new UsageError(`keys revoke: no key with id "${id}" (miniglm keys list shows them)`);
      console.log(`revoked key ${key.id} ("${key.name}", ${key.role}) at ${key.revokedAt!.toISOString()}`);
    }
  } finally {
    await db.close();
  }
}
