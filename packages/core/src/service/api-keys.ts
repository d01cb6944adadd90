/**
 * API keys: made and revoked by `miniglm keys` (straight in the database, so that the first
 * admin key needs no key), checked by the API on every request.
 *
 * A key reads "mgk_<id>_<secret>": the id (12 hex characters) is public and finds the key's
 * row by its primary key; the secret (32 random bytes, base64url) is never stored, only
 * scrypt(secret, salt) with a salt of the key's own. A stolen database therefore gives no
 * usable key, and comparing hashes (timingSafeEqual) tells an attacker nothing by its timing.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { DbModels, PrismaClient } from '../db/index.ts';
import type { KeyRunLimits } from './capacity.ts';
import type { KeyQuotas } from './quotas.ts';

export const API_KEY_ROLES = ['admin', 'member', 'viewer'] as const;
export type ApiKeyRole = (typeof API_KEY_ROLES)[number];

export const isApiKeyRole = (s: string): s is ApiKeyRole => (API_KEY_ROLES as readonly string[]).includes(s);

const KEY_PATTERN = /^mgk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
/** scrypt's cost: about 50 ms of one core per check here; the API caches checked keys briefly. */
const SCRYPT = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const HASH_BYTES = 32;

/** The parts of a key as it was sent, or undefined when it is not shaped like one of ours. */
export function parseApiKey(text: string): { id: string; secret: string } | undefined {
  const m = KEY_PATTERN.exec(text);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

export function hashSecret(secret: string, saltHex: string): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, Buffer.from(saltHex, 'hex'), HASH_BYTES, SCRYPT, (error, hash) =>
      error ? reject(error) : resolve(hash),
    ),
  );
}

/** Whether `secret` is the one whose hash was stored (constant-time comparison). */
export async function secretMatches(secret: string, key: Pick<DbModels.ApiKey, 'secretHash' | 'salt'>) {
  const stored = Buffer.from(key.secretHash, 'hex');
  const given = await hashSecret(secret, key.salt);
  return stored.length === given.length && timingSafeEqual(stored, given);
}

/** A key's own limits, each null where the service's default applies. */
export type KeyLimits = KeyQuotas & KeyRunLimits;

/**
 * A key as `miniglm keys` shows it: never its secret or hash; its own quotas and per-run
 * limits, null where the default applies.
 */
export interface ApiKeySummary extends KeyLimits {
  id: string;
  name: string;
  role: ApiKeyRole;
  createdAt: Date;
  revokedAt: Date | null;
}

const summarySelect = {
  id: true,
  name: true,
  role: true,
  createdAt: true,
  revokedAt: true,
  maxRunningRuns: true,
  maxQueuedRuns: true,
  maxStoredBytes: true,
  maxParameters: true,
  maxTrainingTokens: true,
  maxCheckpoints: true,
  maxEvalTokens: true,
} as const;

type SummaryRow = Pick<DbModels.ApiKey, keyof typeof summarySelect>;

/** The limits held in BigInt columns (counts past 2^31); JSON cannot hold BigInt, so they travel as numbers. */
const BIGINT_COLUMNS = ['maxStoredBytes', 'maxParameters', 'maxTrainingTokens', 'maxEvalTokens'] as const;

/** The row as a summary: its BigInt columns as numbers. */
function toSummary(row: SummaryRow): ApiKeySummary {
  const summary = { ...row } as unknown as ApiKeySummary;
  for (const column of BIGINT_COLUMNS) summary[column] = row[column] === null ? null : Number(row[column]);
  return summary;
}

type BigIntColumn = (typeof BIGINT_COLUMNS)[number];
/** KeyLimits as Prisma takes them: a bigint for a BigInt column. */
type LimitColumns = { [K in keyof KeyLimits]?: K extends BigIntColumn ? bigint | null : number | null };

/** KeyLimits as the columns take them; absent fields are left alone. */
function limitColumns(limits: Partial<KeyLimits>): LimitColumns {
  const columns: Record<string, number | bigint | null> = { ...limits };
  for (const column of BIGINT_COLUMNS) {
    const value = limits[column];
    if (value !== undefined) columns[column] = value === null ? null : BigInt(value);
  }
  return columns as LimitColumns;
}

/** A new key, not stored anywhere: `miniglm keys generate`, for a secret a deployment hands the API. */
export function generateApiKey(): string {
  return `mgk_${randomBytes(6).toString('hex')}_${randomBytes(32).toString('base64url')}`;
}

/** What a new key is: its name, role and (optionally) its own quotas and per-run limits. */
export interface NewApiKey {
  name: string;
  role: ApiKeyRole;
  quotas?: Partial<KeyLimits>;
}

async function insertKey(prisma: PrismaClient, id: string, secret: string, options: NewApiKey) {
  const salt = randomBytes(16).toString('hex');
  const secretHash = (await hashSecret(secret, salt)).toString('hex');
  const row = await prisma.apiKey.create({
    data: { id, name: options.name, role: options.role, secretHash, salt, ...limitColumns(options.quotas ?? {}) },
    select: summarySelect,
  });
  return toSummary(row);
}

/** Makes a key; the returned `key` is the only copy of its secret. */
export async function createApiKey(prisma: PrismaClient, options: NewApiKey): Promise<ApiKeySummary & { key: string }> {
  const key = generateApiKey();
  const { id, secret } = parseApiKey(key)!;
  return { ...(await insertKey(prisma, id, secret, options)), key };
}

/**
 * Stores a key made elsewhere (`miniglm keys generate`, kept in a Docker secret) unless it is
 * stored already: how a deployment bootstraps its first admin key. A key that was revoked
 * stays revoked; an id taken by another secret is an error, as is text that is not a key.
 */
export async function ensureApiKey(
  prisma: PrismaClient,
  key: string,
  options: NewApiKey,
): Promise<{ ok: true; created: boolean; key: ApiKeySummary } | { ok: false; error: string }> {
  const parsed = parseApiKey(key.trim());
  if (!parsed)
    return {
      ok: false,
      error: 'not an API key of the form mgk_<12 hex>_<43 base64url> (miniglm keys generate makes one)',
    };
  const existing = await prisma.apiKey.findUnique({ where: { id: parsed.id } });
  if (existing) {
    if (!(await secretMatches(parsed.secret, existing)))
      return { ok: false, error: `another key with the id ${parsed.id} is stored already; generate a new one` };
    return { ok: true, created: false, key: toSummary(existing) };
  }
  try {
    return { ok: true, created: true, key: await insertKey(prisma, parsed.id, parsed.secret, options) };
  } catch (error) {
    // Another replica stored it at the same moment: check that one instead.
    if ((error as { code?: string }).code === 'P2002') return ensureApiKey(prisma, key, options);
    throw error;
  }
}

/** Every key, oldest first, revoked ones included (they still own what they made). */
export async function listApiKeys(prisma: PrismaClient): Promise<ApiKeySummary[]> {
  const rows = await prisma.apiKey.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: summarySelect });
  return rows.map(toSummary);
}

/**
 * Sets a key's own quotas and per-run limits (a number, or null for the service's default);
 * the fields left out keep their value. Takes effect at the key's next submission or upload,
 * and for the running runs quota when a worker next looks at one of its queued runs.
 * Undefined when there is no such key.
 */
export async function setApiKeyQuotas(
  prisma: PrismaClient,
  id: string,
  quotas: Partial<KeyLimits>,
): Promise<ApiKeySummary | undefined> {
  const updated = await prisma.apiKey.updateMany({ where: { id }, data: limitColumns(quotas) });
  if (updated.count === 0) return undefined;
  return toSummary(await prisma.apiKey.findUniqueOrThrow({ where: { id }, select: summarySelect }));
}

/**
 * Revokes a key at once: the API reads the key's row on every request, so the next request
 * with it is a 401. Undefined when there is no such key; a revoked key keeps its first date.
 */
export async function revokeApiKey(prisma: PrismaClient, id: string): Promise<ApiKeySummary | undefined> {
  const key = await prisma.apiKey.findUnique({ where: { id }, select: summarySelect });
  if (!key) return undefined;
  if (key.revokedAt) return toSummary(key);
  return toSummary(
    await prisma.apiKey.update({ where: { id }, data: { revokedAt: new Date() }, select: summarySelect }),
  );
}
