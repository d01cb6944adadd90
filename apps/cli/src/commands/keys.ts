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
  parseQuota,
  parseRunLimit,
  revokeApiKey,
  setApiKeyQuotas,
  API_KEY_ROLES,
  DEFAULT_QUOTAS,
  DEFAULT_RUN_LIMITS,
  QUOTA_COLUMN,
  QUOTA_ENV,
  QUOTA_OPTION,
  RUN_LIMIT_COLUMN,
  RUN_LIMIT_OPTION,
  type ApiKeySummary,
  type KeyLimits,
  type OwnerQuotas,
  type RunLimits,
} from '@miniglm/core/service';
import { formatBytes } from '@miniglm/model/sizing';
import { parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';
import { openServiceDb } from '../services.ts';
import { table } from '../table.ts';

const count = (n: number) => n.toLocaleString('en-US');

const HELP = `usage: miniglm keys create --name NAME --role admin|member|viewer [QUOTAS] [LIMITS] [--json]
       miniglm keys set ID QUOTAS|LIMITS
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

QUOTAS, a key's own limits (without them, the API's defaults apply; "default" puts one back):
  --max-running-runs N     at most N of its runs run at once; the workers hold the others, queued
                           (default: the workers' ${QUOTA_ENV.runningRuns}, else ${DEFAULT_QUOTAS.runningRuns})
  --max-queued-runs N      runs of the key queued, not started yet
                           (default: the API's ${QUOTA_ENV.queuedRuns}, else ${DEFAULT_QUOTAS.queuedRuns})
  --max-stored-bytes SIZE  its uploaded files and its runs' checkpoints, e.g. 50GiB or 500MB
                           (default: the API's ${QUOTA_ENV.storedBytes}, else ${formatBytes(DEFAULT_QUOTAS.storedBytes)})
A submission or upload past the queued runs or stored bytes quota is refused with 429.
Admin keys are not subject to quotas.

LIMITS, a key's own limits per run (without them, the API's MINIGLM_MAX_*; "default" puts
one back); a key's own may be above the API's, for a key trusted with larger runs:
  --max-parameters N       the model's parameters (default ${count(DEFAULT_RUN_LIMITS.parameters)})
  --max-training-tokens N  tokens all its stages train on (default ${count(DEFAULT_RUN_LIMITS.trainingTokens)})
  --max-checkpoints N      checkpoints one stage writes (default ${count(DEFAULT_RUN_LIMITS.checkpointsPerStage)})
  --max-eval-tokens N      tokens its evaluation generates (default ${count(DEFAULT_RUN_LIMITS.evaluationTokens)})
A submission past one is refused with 400, for admin keys too.

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
  // `keys revoke ID`, `keys set ID`: the id may come as the first word, or as --id.
  const positional =
    (action === 'revoke' || action === 'set') && rest[0] && !rest[0].startsWith('-') ? rest.shift() : undefined;
  const f = parseCommandArgs(
    'keys',
    rest,
    {
      name: { type: 'string' },
      role: { type: 'string' },
      id: { type: 'string' },
      json: { type: 'boolean', default: false },
      'max-running-runs': { type: 'string' },
      'max-queued-runs': { type: 'string' },
      'max-stored-bytes': { type: 'string' },
      'max-parameters': { type: 'string' },
      'max-training-tokens': { type: 'string' },
      'max-checkpoints': { type: 'string' },
      'max-eval-tokens': { type: 'string' },
    },
    HELP,
  );
  if (action === 'generate') return console.log(generateApiKey());
  if (action !== 'create' && action !== 'list' && action !== 'revoke' && action !== 'set')
    throw new UsageError(
      `keys: unknown action "${action}"; use create, set, list, revoke or generate (see miniglm keys --help)`,
    );
  const quotas = { ...quotaFlags(action, f), ...runLimitFlags(action, f) };
  if (action === 'create') {
    if (!f.name?.trim()) throw new UsageError('keys create: missing --name NAME (who or what the key is for)');
    if (!f.role || !isApiKeyRole(f.role))
      throw new UsageError(`keys create: --role must be one of ${API_KEY_ROLES.join(', ')}, got "${f.role ?? ''}"`);
  }
  const id = positional ?? f.id;
  if ((action === 'revoke' || action === 'set') && !id)
    throw new UsageError(`keys ${action}: missing the key id (miniglm keys list shows them)`);
  if (action === 'set' && Object.keys(quotas).length === 0)
    throw new UsageError(
      `keys set: name at least one of ${[...Object.values(QUOTA_OPTION), ...Object.values(RUN_LIMIT_OPTION)].join(', ')}`,
    );

  const db = await openServiceDb();
  try {
    if (action === 'create') {
      const key = await createApiKey(db.prisma, {
        name: f.name!.trim(),
        role: f.role as (typeof API_KEY_ROLES)[number],
        quotas,
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
            [
              'id',
              'name',
              'role',
              'created',
              'revoked',
              'max running',
              'max queued',
              'max stored',
              'max params',
              'max train tokens',
              'max ckpts',
              'max eval tokens',
            ],
            all.map((k) => [
              k.id,
              k.name,
              k.role,
              k.createdAt.toISOString(),
              k.revokedAt?.toISOString() ?? '-',
              ...quotaCells(k),
              ...runLimitCells(k),
            ]),
          ),
        );
    } else if (action === 'set') {
      const key = await setApiKeyQuotas(db.prisma, id!, quotas);
      if (!key) throw new UsageError(`keys set: no key with id "${id}" (miniglm keys list shows them)`);
      const [running, queued, stored] = quotaCells(key);
      const [parameters, tokens, checkpoints, evalTokens] = runLimitCells(key);
      console.log(
        `key ${key.id} ("${key.name}", ${key.role}): max running runs ${running}, max queued runs ${queued}, ` +
          `max stored bytes ${stored}; per run: max parameters ${parameters}, max training tokens ${tokens}, ` +
          `max checkpoints per stage ${checkpoints}, max eval tokens ${evalTokens}`,
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

/** QUOTA_OPTION's flags as KeyLimits: a number, null for "default", absent when not given. */
function quotaFlags(action: string, flags: Record<string, unknown>): Partial<KeyLimits> {
  const quotas: Partial<KeyLimits> = {};
  for (const quota of Object.keys(QUOTA_COLUMN) as (keyof OwnerQuotas)[]) {
    const option = QUOTA_OPTION[quota];
    const value = flags[option.slice(2)];
    if (typeof value !== 'string') continue;
    if (action !== 'create' && action !== 'set')
      throw new UsageError(`keys ${action}: ${option} belongs to keys create or keys set`);
    if (value === 'default') {
      quotas[QUOTA_COLUMN[quota]] = null;
      continue;
    }
    const parsed = parseQuota(quota, value, `keys ${action}: ${option}`);
    if (!parsed.ok) throw new UsageError(`${parsed.error}, or "default"`);
    quotas[QUOTA_COLUMN[quota]] = parsed.value;
  }
  return quotas;
}

/** RUN_LIMIT_OPTION's flags as KeyLimits, as quotaFlags reads QUOTA_OPTION's. */
function runLimitFlags(action: string, flags: Record<string, unknown>): Partial<KeyLimits> {
  const limits: Partial<KeyLimits> = {};
  for (const limit of Object.keys(RUN_LIMIT_COLUMN) as (keyof RunLimits)[]) {
    const option = RUN_LIMIT_OPTION[limit];
    const value = flags[option.slice(2)];
    if (typeof value !== 'string') continue;
    if (action !== 'create' && action !== 'set')
      throw new UsageError(`keys ${action}: ${option} belongs to keys create or keys set`);
    if (value === 'default') {
      limits[RUN_LIMIT_COLUMN[limit]] = null;
      continue;
    }
    const parsed = parseRunLimit(limit, value, `keys ${action}: ${option}`);
    if (!parsed.ok) throw new UsageError(`${parsed.error}, or "default"`);
    limits[RUN_LIMIT_COLUMN[limit]] = parsed.value;
  }
  return limits;
}

/** A key's own per-run limits for the table: the number, or "default" (the API's MINIGLM_MAX_*). */
function runLimitCells(k: ApiKeySummary): [string, string, string, string] {
  const own = (v: number | null) => (v === null ? 'default' : count(v));
  return [own(k.maxParameters), own(k.maxTrainingTokens), own(k.maxCheckpoints), own(k.maxEvalTokens)];
}

/** A key's own limits for the table: the number, or "default" (the API's MINIGLM_QUOTA_*). */
function quotaCells(k: ApiKeySummary): [string, string, string] {
  const own = (v: number | null, text: (n: number) => string = String) => (v === null ? 'default' : text(v));
  return [own(k.maxRunningRuns), own(k.maxQueuedRuns), own(k.maxStoredBytes, formatBytes)];
}
