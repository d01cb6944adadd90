/**
 * The CLI as a client of a running API (submit, runs, watch, compare). Errors come back as
 * the API's own message, which names the field or the id that is wrong.
 */
import { UsageError } from './errors.ts';

export const DEFAULT_API_URL = 'http://127.0.0.1:8080';

export function apiUrl(flag?: string): string {
  const url = flag ?? process.env.MINIGLM_API_URL ?? DEFAULT_API_URL;
  try {
    return new URL(url).toString().replace(/\/$/, '');
  } catch {
    throw new UsageError(`--api must be a URL like ${DEFAULT_API_URL}, got "${url}"`);
  }
}

/** An answer of the API that is not 2xx, with its message. */
export class ApiError extends UsageError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The key the client commands send (MINIGLM_API_KEY), as an Authorization header. */
export function authHeaders(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const key = env.MINIGLM_API_KEY?.trim();
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** One line for a 401 or 403: what is wrong with the key and what to do. */
function keyProblem(status: number, method: string, route: string, message: string): string {
  const sent = process.env.MINIGLM_API_KEY?.trim();
  if (status === 401)
    return sent
      ? `${method} ${route}: 401 the API refused MINIGLM_API_KEY: ${message}`
      : `${method} ${route}: 401 the API needs a key: set MINIGLM_API_KEY (an admin makes one with "miniglm keys create")`;
  return `${method} ${route}: 403 not allowed with this key: ${message}`;
}

export async function api<T>(base: string, method: string, route: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${base}${route}`, {
      method,
      headers: { ...authHeaders(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new UsageError(
      `cannot reach the API at ${base} (${cause}); start one with "miniglm api" or "miniglm demo", or pass --api`,
    );
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const message = (json as { message?: string } | undefined)?.message ?? text.slice(0, 200);
    if (response.status === 401 || response.status === 403)
      throw new ApiError(response.status, keyProblem(response.status, method, route, message));
    throw new ApiError(response.status, `${method} ${route}: ${response.status} ${message}`);
  }
  return json as T;
}

// The response shapes are the API's own read models (one definition, see @miniglm/api).
export type { CompareView, RunListItem, RunView } from '@miniglm/api';
