/**
 * The Fastify app of the training service: buildApi wires the database, Redis and BullMQ
 * into the routes; startApi also listens on a port.
 */
import path from 'node:path';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifySchema,
  type FastifyServerOptions,
} from 'fastify';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import swaggerUi from '@fastify/swagger-ui';
import fastifyStatic from '@fastify/static';
import type { Redis } from 'ioredis';
import type { Db } from '@miniglm/core/db';
import { DEFAULT_PREFIX, quotasFromEnv, type OwnerQuotas } from '@miniglm/core/service';
import { UserError } from '@miniglm/data';
import { vendorFiles, webRoot } from '@miniglm/web';
import { Authenticator, needsKey, refuseViewerWrites } from './auth.ts';
import { createContext } from './context.ts';
import { createCrossSiteCheck, isLoopbackHost, listFromEnv } from './cross-site.ts';
import { answerFrameworkError, installErrorHandlers } from './errors.ts';
import { installInputChecks } from './input-checks.ts';
import { createMetrics } from './metrics.ts';
import { checkpointRoutes } from './routes/checkpoints.ts';
import { compareRoutes } from './routes/compare.ts';
import { fileRoutes } from './routes/files.ts';
import { DEFAULT_GENERATE_TIMEOUT_MS, generateRoutes } from './routes/generate.ts';
import { healthRoutes } from './routes/health.ts';
import {
  AUTH_FAILURE_RATE_ENV,
  DEFAULT_AUTH_FAILURE_RATE,
  DEFAULT_SUBMIT_RATE,
  RateLimiter,
  SUBMIT_RATE_ENV,
  rateFromEnv,
  type Rate,
} from './rate-limit.ts';
import { ErrorBody, tooManyRequests } from './responses.ts';
import { runRoutes } from './routes/runs.ts';
import { typeboxValidatorCompiler } from './validation.ts';

export interface ApiOptions {
  db: Db;
  /** A non-blocking client, e.g. createRedis(url, { failFast: true }). The caller owns and closes it. */
  redis: Redis;
  /** BullMQ / Redis key prefix; workers must use the same one. Default DEFAULT_PREFIX. */
  prefix?: string;
  /** Fastify's logger: false (default), true, or pino options. */
  logger?: FastifyServerOptions['logger'];
  /** How long POST /v1/generate waits for a worker (default 120 s). */
  generateTimeoutMs?: number;
  /** The largest JSON body accepted (default 1 MiB); uploads have their own limit. */
  bodyLimit?: number;
  /**
   * The address the API listens on (startApi sets it): decides the Host check (cross-site.ts).
   * Undefined (an app used through app.inject) counts as loopback.
   */
  listenHost?: string;
  /** Host names requests may be addressed to besides loopback's (default MINIGLM_ALLOWED_HOSTS, comma-separated). */
  allowedHosts?: string[];
  /** Web origins besides the API's own that may send writes (default MINIGLM_ALLOWED_ORIGINS). */
  allowedOrigins?: string[];
  /** The default per-key quotas (default MINIGLM_QUOTA_*, core's quotas.ts). */
  quotas?: OwnerQuotas;
  /** Submissions per key, or per client address when keyless (default MINIGLM_SUBMIT_RATE, 60 in 60 s); null: off. */
  submitRate?: Rate | null;
  /** Failed API-key checks per client address (default MINIGLM_AUTH_FAILURE_RATE, 20 in 60 s); null: off. */
  authFailureRate?: Rate | null;
}

export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // Ids are uuids and aliases are short: a long URL is a mistake, not a request.
    routerOptions: { maxParamLength: 200 },
    frameworkErrors: answerFrameworkError,
  });
  app.setValidatorCompiler(typeboxValidatorCompiler);
  installErrorHandlers(app);
  // JSON is the only body the API takes outside POST /v1/files, which sets its own parsers:
  // text/plain sent to a JSON route is a 415, not a string the schema then complains about.
  app.removeContentTypeParser('text/plain');
  // Before any route or body parser: the Host, cross-site writes, then who is asking.
  const crossSite = createCrossSiteCheck({
    listenHost: options.listenHost,
    allowedHosts: options.allowedHosts ?? listFromEnv(process.env.MINIGLM_ALLOWED_HOSTS),
    allowedOrigins: options.allowedOrigins ?? listFromEnv(process.env.MINIGLM_ALLOWED_ORIGINS),
  });
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const authFailureRate =
    options.authFailureRate !== undefined
      ? options.authFailureRate
      : rateFromEnv(AUTH_FAILURE_RATE_ENV, DEFAULT_AUTH_FAILURE_RATE);
  const auth = new Authenticator(
    options.db.prisma,
    authFailureRate ? new RateLimiter(options.redis, prefix, 'auth-failures', authFailureRate) : undefined,
  );
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (request) => {
    crossSite(request);
    if (!needsKey(request.url)) return;
    request.principal = await auth.authenticate(request.headers.authorization, request.ip);
    refuseViewerWrites(request);
  });

  // NUL, lone surrogates, deep nesting, absurd numbers: a 400 naming the field, for every route.
  installInputChecks(app);

  const ctx = createContext({
    db: options.db,
    redis: options.redis,
    prefix,
    generateTimeoutMs: options.generateTimeoutMs ?? DEFAULT_GENERATE_TIMEOUT_MS,
    quotas: options.quotas ?? quotasFromEnv(),
    submitRate:
      options.submitRate !== undefined ? options.submitRate : rateFromEnv(SUBMIT_RATE_ENV, DEFAULT_SUBMIT_RATE),
  });
  app.addHook('onClose', async () => ctx.close());

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'MiniGLM Foundry',
        version: '0.1.0',
        description:
          'Train small GPT models in curricula. Every error is JSON { error, message }; the message names the offending field by its JSON path.',
      },
      tags: [
        { name: 'runs', description: 'Submit, watch, compare and cancel runs' },
        { name: 'checkpoints', description: 'Trained weights' },
        { name: 'aliases', description: 'Stable names for checkpoints' },
        { name: 'files', description: 'Uploaded corpora, named "file:<id>" in a curriculum' },
        { name: 'generate', description: 'Sampling from a checkpoint' },
        { name: 'health', description: 'Liveness, readiness, Prometheus metrics' },
      ],
      // Every route under /v1/ and /metrics, once any key exists (apps/api/README.md).
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', bearerFormat: 'mgk_<id>_<secret>' } },
      },
      security: [{ apiKey: [] }],
    },
    transform: ({ schema, url }) => ({ schema: schema && documentAuth(defaultsAreOptional(schema), url), url }),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  const register = createMetrics(app, ctx);
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  runRoutes(api, ctx);
  checkpointRoutes(api, ctx);
  fileRoutes(api, ctx);
  generateRoutes(api, ctx);
  compareRoutes(api, ctx);
  healthRoutes(api, ctx, register);
  await webRoutes(app);

  await app.ready();
  return app;
}

/**
 * The OpenAPI document's view of auth.ts: routes under /v1/ and /metrics answer 401 without a
 * valid key (and 403 for a role that may not), and 429 once the client's address has failed
 * too many key checks; the others need no key. Documentation only: the answers themselves
 * come from the auth hook.
 */
function documentAuth(schema: FastifySchema, url: string): FastifySchema {
  if (!needsKey(url)) return { ...schema, security: [] } as FastifySchema;
  const response = (schema.response ?? {}) as Record<string, unknown>;
  return {
    ...schema,
    response: {
      ...response,
      401: { ...ErrorBody, description: 'No valid API key (once any key exists)' },
      403: response[403] ?? { ...ErrorBody, description: "The key's role may not do this, or a cross-site request" },
      ...(response[429] ? {} : tooManyRequests('Too many failed API-key checks from this address (with Retry-After)')),
    },
  };
}

/**
 * A request field with a default is required in its schema (schemas.ts: the handler always
 * sees it, because the validator fills it in), but a client may leave it out: the OpenAPI
 * document lists it as optional, with its default.
 */
function defaultsAreOptional(schema: FastifySchema): FastifySchema {
  const optional = (part: unknown): unknown => {
    if (Array.isArray(part)) return part.map(optional);
    if (part === null || typeof part !== 'object') return part;
    const copy: Record<string, unknown> = Object.fromEntries(Object.entries(part).map(([k, v]) => [k, optional(v)]));
    const properties = copy.properties as Record<string, { default?: unknown }> | undefined;
    if (Array.isArray(copy.required) && properties) {
      const required = copy.required.filter((name: string) => properties[name]?.default === undefined);
      if (required.length > 0) copy.required = required;
      else delete copy.required;
    }
    return copy;
  };
  const copy = { ...schema };
  if (copy.querystring) copy.querystring = optional(copy.querystring);
  if (copy.body) copy.body = optional(copy.body);
  return copy;
}

/**
 * The dashboard (@miniglm/web): its files at "/" (index.html) and "/<file>", and the browser
 * libraries it imports at /vendor/.... One route per file that exists at startup (no
 * wildcard), so nothing here can shadow /v1/*, /docs, /healthz, /readyz or /metrics.
 */
async function webRoutes(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, { root: webRoot, prefix: '/', wildcard: false, index: 'index.html' });
  for (const [url, file] of Object.entries(vendorFiles)) {
    const [dir, name] = [path.dirname(file), path.basename(file)];
    // The libraries change only with an npm install: let browsers keep them for a day.
    const handler = (_request: FastifyRequest, reply: FastifyReply) =>
      reply.sendFile(name, dir, { maxAge: 86_400_000 });
    app.route({ method: ['GET', 'HEAD'], url, schema: { hide: true }, handler });
  }
}

export interface StartOptions extends ApiOptions {
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1; "0.0.0.0" to serve other machines. */
  host?: string;
}

export interface StartedApi {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

/** Why the API will not start keyless on a non-loopback address (a UserError: one line, no stack). */
export class KeylessExposureError extends UserError {}

export async function startApi(options: StartOptions): Promise<StartedApi> {
  const host = options.host ?? '127.0.0.1';
  // Keyless mode (no key exists) lets every request act as an admin: only this machine may
  // reach such an API. Anywhere else, the first key must exist before the port opens.
  if (!isLoopbackHost(host) && !(await new Authenticator(options.db.prisma).keysExist()))
    throw new KeylessExposureError(
      `refusing to listen on ${host} without API keys: anyone who reaches the port could submit, cancel and download. ` +
        'Create an admin key first, with the same DATABASE_URL: miniglm keys create --name admin --role admin ' +
        '(or listen on 127.0.0.1 for keyless local use)',
    );
  const app = await buildApi({ ...options, listenHost: host });
  try {
    await app.listen({ port: options.port ?? 8080, host });
  } catch (error) {
    await app.close();
    throw error;
  }
  const address = app.server.address();
  const url =
    typeof address === 'string'
      ? address
      : `http://${address?.family === 'IPv6' ? `[${address.address}]` : address?.address}:${address?.port}`;
  return { app, url, close: () => app.close() };
}
