/**
 * Per-key quotas: how much of the service one API key may hold at once. The queued runs and
 * stored bytes quotas are checked when it submits a run (POST /v1/runs) and when it uploads a
 * file (POST /v1/files): a refusal is a 429 whose message names the quota, the key's usage,
 * its limit and what sets that limit, and nothing is written. The running runs quota is not a
 * refusal but a cap the workers keep (running-quota.ts): a run past it stays queued until one
 * of the key's runs ends.
 *
 *   MINIGLM_QUOTA_RUNNING_RUNS   20      runs of the key running at once; the workers start no more
 *   MINIGLM_QUOTA_QUEUED_RUNS    100     runs of the key queued (accepted, not started yet)
 *   MINIGLM_QUOTA_STORED_BYTES   100GiB  bytes of the key's uploaded files and its runs' checkpoints
 *
 * A key's own limits (columns of ApiKey, set by `miniglm keys create|set --max-running-runs N
 * --max-queued-runs N --max-stored-bytes SIZE`) replace the defaults; null means the default.
 * In keyless mode every run and file has no owner (null): they share the defaults as one owner.
 * Admin keys are spared (quotasApply says why).
 *
 * Stored bytes. Artifacts are addressed by their content, so bytes stored once are stored once:
 * a key is charged once for each distinct artifact named by its uploaded files or by the
 * checkpoints of its runs (the same file uploaded twice, or a checkpoint saved again, costs
 * nothing more). Two keys that hold the same bytes are each charged for them, since each one
 * keeps them alive. Prepared datasets are not counted: they are a cache shared by every run
 * with the same data and tokenizer, rebuilt from the files that are counted. The quota is
 * checked before a run or a file is accepted; the checkpoints of a run already running still
 * land past it (refusing them would throw its training away), and the key then can submit or
 * upload nothing more until it is back under its limit.
 *
 * No race at the edge: the check and the write run in one transaction that first takes a
 * Postgres advisory lock of the owner (lockOwner: pg_advisory_xact_lock, released at commit or
 * rollback), so two submissions of one key, or two workers starting its runs, are counted one
 * after the other, each seeing the other's rows (read committed: every statement after the
 * lock reads what committed before it); other keys are not held up.
 */
import { formatBytes } from '@miniglm/model/sizing';
import type { Prisma, PrismaClient } from '../db/index.ts';
import type { ApiKeyRole } from './api-keys.ts';
import { SettingError } from './settings.ts';

export interface OwnerQuotas {
  runningRuns: number;
  queuedRuns: number;
  storedBytes: number;
}

/** Generous: a small team's keys, the demo and the test suites never meet them. */
export const DEFAULT_QUOTAS: OwnerQuotas = {
  runningRuns: 20,
  queuedRuns: 100,
  storedBytes: 100 * 1024 ** 3,
};

export const QUOTA_ENV: Record<keyof OwnerQuotas, string> = {
  runningRuns: 'MINIGLM_QUOTA_RUNNING_RUNS',
  queuedRuns: 'MINIGLM_QUOTA_QUEUED_RUNS',
  storedBytes: 'MINIGLM_QUOTA_STORED_BYTES',
};

/** The `miniglm keys create|set` options that set a key's own limits. */
export const QUOTA_OPTION: Record<keyof OwnerQuotas, string> = {
  runningRuns: '--max-running-runs',
  queuedRuns: '--max-queued-runs',
  storedBytes: '--max-stored-bytes',
};

/** A key's own limits as stored (ApiKey columns); null: the default. */
export interface KeyQuotas {
  maxRunningRuns: number | null;
  maxQueuedRuns: number | null;
  maxStoredBytes: number | null;
}

/** Which ApiKey column holds a key's own value of each quota. */
export const QUOTA_COLUMN: Record<keyof OwnerQuotas, keyof KeyQuotas> = {
  runningRuns: 'maxRunningRuns',
  queuedRuns: 'maxQueuedRuns',
  storedBytes: 'maxStoredBytes',
};

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** "100GiB", "500 MB", "1048576" → bytes; undefined when it is not a size. */
export function parseByteSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? BYTE_UNITS[(m[2] || 'b').toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  const bytes = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/**
 * A quota's value as text (an environment variable, a command-line option): a whole number
 * of runs, or a size for stored bytes. A message naming `source` when it is neither.
 */
export function parseQuota(
  quota: keyof OwnerQuotas,
  text: string,
  source: string,
): { ok: true; value: number } | { ok: false; error: string } {
  if (quota === 'storedBytes') {
    const bytes = parseByteSize(text);
    return bytes !== undefined
      ? { ok: true, value: bytes }
      : { ok: false, error: `${source} must be a size such as 50GiB, 500MB or 1048576 (bytes), got "${text}"` };
  }
  const n = Number(text);
  return text.trim() !== '' && Number.isSafeInteger(n) && n >= 0 && n <= 2 ** 31 - 1
    ? { ok: true, value: n }
    : { ok: false, error: `${source} must be a whole number of runs from 0 to 2147483647, got "${text}"` };
}

/** The defaults the environment sets (the built-in ones elsewhere); a bad value is an error naming the variable. */
export function quotasFromEnv(env: NodeJS.ProcessEnv = process.env): OwnerQuotas {
  const quotas = { ...DEFAULT_QUOTAS };
  for (const quota of Object.keys(QUOTA_ENV) as (keyof OwnerQuotas)[]) {
    const raw = env[QUOTA_ENV[quota]];
    if (raw === undefined || raw === '') continue;
    const parsed = parseQuota(quota, raw, QUOTA_ENV[quota]);
    if (!parsed.ok) throw new SettingError(parsed.error);
    quotas[quota] = parsed.value;
  }
  return quotas;
}

/**
 * Whether the quotas apply to an owner: to every key but an admin's. Admins are the service's
 * operators: they set the quotas (miniglm keys set), must be able to act (re-run, upload a
 * fixed corpus) when members have filled their share, and a quota on them would only ever be
 * raised by themselves. Keyless use acts as an admin but is not spared: it is the one
 * anonymous owner of a loopback service, and the defaults protect that machine. (The API
 * decides it per request, the workers per run's owner: this is the one rule for both.)
 */
export function quotasApply(owner: { keyId: string | null; role: ApiKeyRole }): boolean {
  return !(owner.role === 'admin' && owner.keyId !== null);
}

/** What an owner holds now. */
export interface OwnerUsage {
  runningRuns: number;
  queuedRuns: number;
  storedBytes: number;
}

/** What is being asked for: one more queued run, or a file of `bytes` (its sha256 once stored). */
export type QuotaAsk = { kind: 'run' } | { kind: 'upload'; bytes: number; sha256?: string };

/** Whose quotas: an owner (a key id, or null in keyless mode) and the service's defaults. */
export interface QuotaOwner {
  ownerId: string | null;
  defaults: OwnerQuotas;
}

/** The parts of the client (or of a transaction's client) the check reads. */
type Reader = Pick<PrismaClient, '$queryRawUnsafe' | 'apiKey' | 'datasetFile'>;

/**
 * The owner's runs by status and the bytes of the distinct artifacts it holds (UNION keeps
 * each artifact once). The owner condition is one of two fixed fragments, the id always a
 * parameter: keyless rows need `IS NULL`, since `= NULL` matches no row.
 */
export async function ownerUsage(db: Reader, ownerId: string | null): Promise<OwnerUsage> {
  const owner = ownerId === null ? 'IS NULL' : '= $1';
  const [row] = await db.$queryRawUnsafe<{ running: number; queued: number; stored: string }[]>(
    `WITH held AS (
       SELECT f."artifactSha256" AS sha256 FROM "DatasetFile" f WHERE f."ownerId" ${owner}
       UNION
       SELECT c."artifactSha256" FROM "Checkpoint" c
         JOIN "Stage" s ON s.id = c."stageId" JOIN "Run" r ON r.id = s."runId"
        WHERE r."ownerId" ${owner}
     )
     SELECT
       (SELECT count(*) FROM "Run" WHERE "ownerId" ${owner} AND status = 'running')::int AS running,
       (SELECT count(*) FROM "Run" WHERE "ownerId" ${owner} AND status = 'queued')::int AS queued,
       (SELECT coalesce(sum(a.size), 0) FROM "Artifact" a JOIN held h ON h.sha256 = a.sha256)::text AS stored`,
    ...(ownerId === null ? [] : [ownerId]),
  );
  return { runningRuns: row!.running, queuedRuns: row!.queued, storedBytes: Number(row!.stored) };
}

/**
 * The owner's limits (its key's own where set, the defaults elsewhere), and the words that
 * messages use for it: who it is, and what sets each of its limits.
 */
export async function ownerLimits(db: Pick<Reader, 'apiKey'>, owner: QuotaOwner) {
  const key = owner.ownerId
    ? await db.apiKey.findUnique({
        where: { id: owner.ownerId },
        select: { name: true, maxRunningRuns: true, maxQueuedRuns: true, maxStoredBytes: true },
      })
    : null;
  const own: KeyQuotas = {
    maxRunningRuns: key?.maxRunningRuns ?? null,
    maxQueuedRuns: key?.maxQueuedRuns ?? null,
    maxStoredBytes:
      key?.maxStoredBytes === null || key?.maxStoredBytes === undefined ? null : Number(key.maxStoredBytes),
  };
  const limits = { ...owner.defaults };
  for (const quota of Object.keys(QUOTA_COLUMN) as (keyof OwnerQuotas)[])
    limits[quota] = own[QUOTA_COLUMN[quota]] ?? owner.defaults[quota];
  const who =
    owner.ownerId === null ? 'keyless use (every run and file without a key)' : `key ${owner.ownerId} ("${key?.name}")`;
  const setBy = (quota: keyof OwnerQuotas) => {
    const option = `miniglm keys set ${owner.ownerId} ${QUOTA_OPTION[quota]}`;
    if (owner.ownerId === null) return `${QUOTA_ENV[quota]}, the service's default`;
    return own[QUOTA_COLUMN[quota]] !== null
      ? `this key's own limit, set by ${option}`
      : `${QUOTA_ENV[quota]}, the service's default; an admin sets this key's own with ${option}`;
  };
  return { limits, who, setBy };
}

/**
 * Why the owner may not have what it asks (a message naming the quota, its usage, its limit
 * and what sets it), or undefined when it may. No lock: writeWithinQuotas checks again under
 * one; this alone serves to refuse early (an upload, before its bytes are stored). A run is
 * not refused for the runs its owner has running: those the workers cap (running-quota.ts).
 */
export async function quotaRefusal(db: Reader, owner: QuotaOwner, ask: QuotaAsk): Promise<string | undefined> {
  const usage = await ownerUsage(db, owner.ownerId);
  const { limits, who, setBy } = await ownerLimits(db, owner);

  if (ask.kind === 'run') {
    if (usage.queuedRuns >= limits.queuedRuns)
      return (
        `queued runs quota: ${who} has ${usage.queuedRuns} runs queued, and its limit is ${limits.queuedRuns} ` +
        `(${setBy('queuedRuns')}); submit again when one has started, or cancel one`
      );
    if (usage.storedBytes >= limits.storedBytes)
      return (
        `stored bytes quota: ${who} stores ${bytesText(usage.storedBytes)} (its uploaded files and its runs' checkpoints), ` +
        `and its limit is ${bytesText(limits.storedBytes)} (${setBy('storedBytes')}); its runs would store more: ` +
        'delete runs or files it no longer needs first'
      );
    return undefined;
  }

  // Content it holds already (the same file uploaded again) adds nothing.
  const held =
    ask.sha256 !== undefined &&
    (await db.datasetFile.findFirst({
      where: { ownerId: owner.ownerId, artifactSha256: ask.sha256 },
      select: { id: true },
    })) !== null;
  const after = usage.storedBytes + (held ? 0 : ask.bytes);
  if (after > limits.storedBytes)
    return (
      `stored bytes quota: ${who} stores ${bytesText(usage.storedBytes)} (its uploaded files and its runs' checkpoints); ` +
      `this file of ${bytesText(ask.bytes)} would make ${bytesText(after)}, over its limit of ${bytesText(limits.storedBytes)} ` +
      `(${setBy('storedBytes')}); delete runs or files it no longer needs first`
    );
  return undefined;
}

/**
 * Takes the owner's advisory lock for the rest of the transaction `tx` (module comment): every
 * check-and-write of an owner's quotas holds it. Its 64-bit key is a hash of the owner (a
 * collision only makes two owners wait for each other); ::text because Prisma cannot read the
 * function's void result.
 */
export async function lockOwner(tx: Pick<PrismaClient, '$queryRawUnsafe'>, ownerId: string | null): Promise<void> {
  await tx.$queryRawUnsafe(
    'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))::text',
    `miniglm.quota:${ownerId ?? '(keyless)'}`,
  );
}

/**
 * Transaction options for a transaction that takes an owner's lock: submissions and starts of
 * one key wait for each other's lock, so more room than Prisma's 2 s / 5 s.
 */
export const OWNER_LOCK_TRANSACTION = { maxWait: 10_000, timeout: 20_000 };

/**
 * Runs `write` in a transaction, only if the owner stays within its quotas with what it asks:
 * the owner's advisory lock is taken first, so no other check-and-write of the same owner
 * can interleave (module comment). A refusal writes nothing.
 */
export async function writeWithinQuotas<T>(
  prisma: PrismaClient,
  owner: QuotaOwner,
  ask: QuotaAsk,
  write: (tx: Prisma.TransactionClient) => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  return prisma.$transaction(async (tx) => {
    await lockOwner(tx, owner.ownerId);
    const refused = await quotaRefusal(tx, owner, ask);
    if (refused) return { ok: false, error: refused } as const;
    return { ok: true, value: await write(tx) } as const;
  }, OWNER_LOCK_TRANSACTION);
}

/** "1,048,576 bytes (1.0 MiB)": exact, and readable. */
const bytesText = (n: number) => `${n.toLocaleString('en-US')} bytes${n >= 1024 ? ` (${formatBytes(n)})` : ''}`;
