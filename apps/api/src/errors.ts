/**
 * One error shape for every failure: `{ "error": "<HTTP reason>", "message": "<what to do>" }`.
 * Route code throws HttpError (or returns a core ServiceResult through `fromService`); the
 * error handler below also rewrites Fastify's own errors (bad JSON, wrong content type, body
 * too large, validation) into that shape, so a client never has to parse two formats.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { ArtifactIntegrityError } from '@miniglm/core/db';
import type { ServiceResult } from '@miniglm/core/service';
import type { ErrorBody as ErrorBodySchema } from './responses.ts';

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A 429: a rate limit or a quota. `retryAfterSeconds`, when the wait is known (a rate
 * limit's window), becomes the Retry-After header; a quota frees up only when runs end or
 * bytes are deleted, so it has none.
 */
export class HttpTooManyRequests extends HttpError {
  constructor(
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(429, message);
  }
}

export type ErrorBody = Static<typeof ErrorBodySchema>;

export function errorBody(status: number, message: string): ErrorBody {
  return { error: STATUS_CODES[status] ?? 'Error', message };
}

/** The value of a core service call, or the HttpError its failure maps to (status chosen by core). */
export function fromService<T>(result: ServiceResult<T>): T {
  if (result.ok) return result.value;
  throw new HttpError(result.status, result.error);
}

export const notFound = (message: string) => new HttpError(404, message);
export const badRequest = (message: string) => new HttpError(400, message);

/** Commands refused by a Redis client that is disconnected (failFast clients refuse instead of queueing). */
export function isRedisDown(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /Stream isn't writeable|Connection is closed|ECONNREFUSED|enableOfflineQueue|MaxRetriesPerRequest/i.test(
    message,
  );
}

/** Maps a thrown error to a status and message a client can act on. */
export function describeError(
  error: FastifyError | Error,
  contentType: string | undefined,
): { status: number; message: string } {
  const e = error as FastifyError & { validationContext?: string };
  if (error instanceof HttpError) return { status: error.statusCode, message: error.message };
  if (e.code === 'FST_ERR_VALIDATION') return { status: 400, message: error.message };
  if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY')
    return { status: 400, message: 'the request body is empty, but its content-type says JSON: send a JSON object' };
  // Fastify's JSON parser (secure-json-parse) also refuses "__proto__" keys as invalid.
  if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (error instanceof SyntaxError && e.statusCode === 400))
    return {
      status: 400,
      message:
        'the request body is not valid JSON (check quotes, commas and brackets; "__proto__" keys are refused too)',
    };
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    return {
      status: 415,
      message: `unsupported content-type ${JSON.stringify(contentType ?? '')}: send application/json (POST /v1/files takes the file's bytes as application/octet-stream)`,
    };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return { status: 413, message: 'the request body is larger than this route accepts' };
  if (e.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH')
    return { status: 400, message: 'the content-length header does not match the body' };
  // Stored bytes that fail their hash (a download, before any byte was sent): the server's
  // data is at fault, and the client is told which artifact and chunk, not "internal error".
  if (error instanceof ArtifactIntegrityError)
    return { status: 500, message: `${error.message}; the download was refused before any byte was sent` };
  if (isRedisDown(error))
    return { status: 503, message: `Redis is not reachable (${error.message}); try again when it is back` };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
    return { status: e.statusCode, message: error.message };
  return { status: 500, message: 'internal error; the server log has the details' };
}

/**
 * For Fastify's `frameworkErrors` option: errors raised before routing, such as a URL whose
 * percent-encoding is not UTF-8 (FST_ERR_BAD_URL), answered in the same shape as the rest.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const { status, message } = describeError(error, request.headers['content-type']);
  void reply.status(status).type('application/json').send(errorBody(status, message));
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { status, message } = describeError(error, request.headers['content-type']);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    // RFC 9110: a 401 names the scheme that would be accepted.
    if (status === 401) void reply.header('www-authenticate', 'Bearer');
    if (error instanceof HttpTooManyRequests && error.retryAfterSeconds !== undefined)
      void reply.header('retry-after', String(error.retryAfterSeconds));
    return reply.status(status).type('application/json').send(errorBody(status, message));
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    return reply.status(404).send(errorBody(404, `no route ${request.method} ${path}; GET /docs lists the routes`));
  });
}
