/**
 * Who is asking: the API key of a request (`Authorization: Bearer mgk_...`), its role, and
 * what it may see.
 *
 * - Once any key exists (revoked ones count, so revoking every key does not open the API),
 *   every request under /v1/ and /metrics needs a valid key: 401 without one or with a bad
 *   or revoked one. /healthz, /readyz, /docs and the dashboard's files stay public: probes
 *   and the sign-in page must load without a key, and they hold no data.
 * - With no key at all the API is keyless: every request acts as an admin. startApi allows
 *   that only on a loopback address (server.ts), so `miniglm demo` and the tests need no
 *   set-up while nothing off this machine can reach a keyless API.
 * - Roles: a viewer reads everything and changes nothing (every POST, PUT and DELETE is a
 *   403); a member sees and changes only what its own key made (another key's run, file,
 *   checkpoint or alias reads as not found); an admin sees and changes everything.
 *
 * A key's row is read on every request, so a revoked key is refused at once; only the
 * scrypt check (about 50 ms of CPU) is cached, per key, for a few minutes.
 *
 * Guessing keys costs the attacker nothing and the API ~50 ms of CPU per guess, so a flood of
 * wrong keys would be a denial of service: every check that the cache cannot answer takes one
 * from the client address's allowance (MINIGLM_AUTH_FAILURE_RATE, rate-limit.ts) before any
 * hashing, and a key that turns out right gives it back. Past the allowance the answer is a
 * 429 with Retry-After, without hashing; keys this process has checked already keep working
 * from that address. While Redis does not answer, keys are checked without this limit: reads
 * must keep working without Redis.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { DbModels, PrismaClient } from '@miniglm/core/db';
import { parseApiKey, quotasApply, secretMatches, type ApiKeyRole } from '@miniglm/core/service';
import { withTimeout } from './context.ts';
import { HttpError, HttpTooManyRequests } from './errors.ts';
import { AUTH_FAILURE_RATE_ENV, type RateLimiter } from './rate-limit.ts';

export interface Principal {
  /** The key's id, or null in keyless mode (no key exists: loopback only). */
  keyId: string | null;
  name: string;
  role: ApiKeyRole;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook for /v1/ and /metrics; undefined on the public routes. */
    principal?: Principal;
  }
}

const KEYLESS: Principal = { keyId: null, name: 'keyless', role: 'admin' };

/** How long the failed-check limit waits for Redis before checking the key without it. */
const LIMIT_DEADLINE_MS = 1000;

/** How long a checked secret is trusted without running scrypt again (its row is still read). */
const VERIFIED_TTL_MS = 5 * 60_000;
const VERIFIED_MAX = 1000;

export const HOW_TO_GET_A_KEY =
  'send "Authorization: Bearer <key>" (an admin makes keys with "miniglm keys create --name NAME --role member"; the CLI sends MINIGLM_API_KEY)';

export class HttpUnauthorized extends HttpError {
  constructor(message: string) {
    super(401, message);
  }
}

export class Authenticator {
  /** Once true, true for good: keys are never deleted. */
  private keysSeen = false;
  /** Key id → sha256 of the secret that passed scrypt, and until when that is trusted. */
  private readonly verified = new Map<string, { digest: Buffer; until: number }>();

  /** `failures`: the allowance of uncached key checks per client address; absent: unlimited. */
  constructor(
    private readonly prisma: PrismaClient,
    private readonly failures?: RateLimiter,
  ) {}

  async keysExist(): Promise<boolean> {
    if (!this.keysSeen) this.keysSeen = (await this.prisma.apiKey.findFirst({ select: { id: true } })) !== null;
    return this.keysSeen;
  }

  /**
   * The principal of a request with this Authorization header, or a 401; a 429 when `client`
   * (its address) has used up its allowance of failed key checks.
   */
  async authenticate(header: string | undefined, client = 'unknown'): Promise<Principal> {
    if (header === undefined) {
      if (!(await this.keysExist())) return KEYLESS;
      throw new HttpUnauthorized(`this API needs a key: ${HOW_TO_GET_A_KEY}`);
    }
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const parsed = bearer ? parseApiKey(bearer[1]!) : undefined;
    const found = parsed ? await this.prisma.apiKey.findUnique({ where: { id: parsed.id } }) : null;
    const row =
      parsed && found && this.cachedMatch(parsed.id, parsed.secret, found)
        ? found
        : await this.checkUncached(parsed, found, client);
    if (row.revokedAt)
      throw new HttpUnauthorized(
        `the API key ${row.id} ("${row.name}") was revoked at ${row.revokedAt.toISOString()}; ask an admin for a new one`,
      );
    this.keysSeen = true;
    return { keyId: row.id, name: row.name, role: row.role };
  }

  // The cache holds a digest of the secret, not the secret, and is keyed by the stored hash
  // too: a key whose row changed is checked again.
  private digest(secret: string, row: { secretHash: string }): Buffer {
    return createHash('sha256').update(secret).update(row.secretHash).digest();
  }

  /** True when this secret passed scrypt for this row within VERIFIED_TTL_MS. */
  private cachedMatch(id: string, secret: string, row: { secretHash: string }): boolean {
    const hit = this.verified.get(id);
    return !!hit && hit.until > Date.now() && timingSafeEqual(hit.digest, this.digest(secret, row));
  }

  private remember(id: string, secret: string, row: { secretHash: string }): void {
    if (this.verified.size >= VERIFIED_MAX) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(id, { digest: this.digest(secret, row), until: Date.now() + VERIFIED_TTL_MS });
  }

  /**
   * A key the cache cannot vouch for: one check is taken from the client's allowance first (or
   * a 429, before any hashing), then scrypt; a right key gives the check back. Its row, or a 401.
   */
  private async checkUncached(
    parsed: { id: string; secret: string } | undefined,
    row: DbModels.ApiKey | null,
    client: string,
  ): Promise<DbModels.ApiKey> {
    await this.takeCheck(client);
    if (!parsed)
      throw new HttpUnauthorized(
        'the Authorization header is not "Bearer mgk_<id>_<secret>": send the key as "miniglm keys create" printed it',
      );
    if (!row || !(await secretMatches(parsed.secret, row)))
      throw new HttpUnauthorized(
        `the API key is not valid (no key ${parsed.id} with that secret); ${HOW_TO_GET_A_KEY}`,
      );
    this.remember(parsed.id, parsed.secret, row);
    await this.giveCheckBack(client);
    return row;
  }

  /** Takes one key check from the client's allowance, or refuses with a 429 (the module comment). */
  private async takeCheck(client: string): Promise<void> {
    if (!this.failures) return;
    const hit = await withTimeout(
      this.failures.hit(client).catch(() => undefined),
      LIMIT_DEADLINE_MS,
    );
    if (hit && !hit.allowed)
      throw new HttpTooManyRequests(
        `too many failed API-key checks from ${client}: the limit is ${this.failures.describe(AUTH_FAILURE_RATE_ENV)}; ` +
          `try again in ${hit.retryAfterSeconds} s with the key exactly as "miniglm keys create" printed it`,
        hit.retryAfterSeconds,
      );
  }

  private async giveCheckBack(client: string): Promise<void> {
    if (this.failures)
      await withTimeout(
        this.failures.giveBack(client).catch(() => undefined),
        LIMIT_DEADLINE_MS,
      );
  }
}

/** Routes that need a key once keys exist; everything else is public. */
export function needsKey(url: string): boolean {
  const path = url.split('?')[0]!;
  return path.startsWith('/v1/') || path === '/v1' || path === '/metrics';
}

function principalOf(request: FastifyRequest): Principal {
  // The auth hook sets it on every route that needs a key; a route that reads it without one
  // is a bug, and must not silently act as an admin.
  if (!request.principal)
    throw new Error(`no principal on ${request.method} ${request.url}: not an authenticated route`);
  return request.principal;
}

/**
 * The key whose rows alone this request may see and change (a member's), or undefined when
 * it sees everything (admin, viewer, keyless).
 */
export function ownerScope(request: FastifyRequest): string | undefined {
  const p = principalOf(request);
  return p.role === 'member' && p.keyId !== null ? p.keyId : undefined;
}

/** The key to record as the owner of what this request creates (null when keyless). */
export function ownerOf(request: FastifyRequest): string | null {
  return principalOf(request).keyId;
}

/**
 * Whether the quotas (core's quotas.ts) spare this request's writes: only an admin key's, by
 * the rule the workers keep too (quotasApply says why). Admins are not spared the submission
 * rate limit: a looping script floods as well with an admin key.
 */
export function spareQuotas(request: FastifyRequest): boolean {
  return !quotasApply(principalOf(request));
}

/**
 * A Prisma `where` part limiting rows with an `ownerId` to what this request may see:
 * `{}` for admins and viewers, `{ ownerId }` for a member.
 */
export function visibleOwner(request: FastifyRequest): { ownerId?: string } {
  const owner = ownerScope(request);
  return owner ? { ownerId: owner } : {};
}

/** Viewers change nothing: every method but GET, HEAD and OPTIONS is refused for them. */
export function refuseViewerWrites(request: FastifyRequest): void {
  const p = principalOf(request);
  if (p.role === 'viewer' && !['GET', 'HEAD', 'OPTIONS'].includes(request.method))
    throw new HttpError(
      403,
      `the key ${p.keyId} ("${p.name}") is a viewer key, which can only read: ${request.method} ${request.url.split('?')[0]} needs a member or admin key`,
    );
}
