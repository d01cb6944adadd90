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
import { DEFAULT_PREFIX } from '@miniglm/core/service';
import { vendorFiles, webRoot } from '@miniglm/web';
import { createContext } from './context.ts';
import { answerFrameworkError, installErrorHandlers } from './errors.ts';
import { installInputChecks } from './input-checks.ts';
import { createMetrics } from './metrics.ts';
import { checkpointRoutes } from './routes/checkpoints.ts';
import { compareRoutes } from './routes/compare.ts';
import { fileRoutes } from './routes/files.ts';
import { DEFAULT_GENERATE_TIMEOUT_MS, generateRoutes } from './routes/generate.ts';
import { healthRoutes } from './routes/health.ts';
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
  // NUL, lone surrogates, deep nesting, absurd numbers: a 400 naming the field, for every route.
  installInputChecks(app);

  const ctx = createContext({
    db: options.db,
    redis: options.redis,
    prefix: options.prefix ?? DEFAULT_PREFIX,
    generateTimeoutMs: options.generateTimeoutMs ?? DEFAULT_GENERATE_TIMEOUT_MS,
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
    },
    transform: ({ schema, url }) => ({ schema: schema && defaultsAreOptional(schema), url }),
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

export async function startApi(options: StartOptions): Promise<StartedApi> {
  const app = await buildApi(options);
  try {
    await app.listen({ port: options.port ?? 8080, host: options.host ?? '127.0.0.1' });
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
