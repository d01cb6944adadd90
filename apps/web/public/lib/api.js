// @ts-check
/**
 * Talking to the REST API (same origin): JSON in, JSON out, and an ApiError carrying the
 * API's own message ({ error, message }: the message names the field) on any non-2xx.
 */

/**
 * The answers the pages read, as the API defines them (its response schemas, exported by
 * apps/api/src/index.ts). The browser never loads these files: the paths serve
 * `npm run typecheck`, which checks the pages against them. Relative paths, because the
 * dashboard is not an npm dependent of the API (the API serves it).
 *
 * @typedef {import('../../../api/src/index.ts').RunListItem} RunListItem  each of GET /v1/runs
 * @typedef {import('../../../api/src/index.ts').SubmittedRunView} SubmittedRunView  POST /v1/runs
 * @typedef {import('../../../api/src/index.ts').RunView} RunView  GET /v1/runs/:id
 * @typedef {RunView['stages'][number]} StageView
 * @typedef {import('../../../api/src/index.ts').RunMetrics} RunMetrics  GET /v1/runs/:id/metrics
 * @typedef {import('../../../api/src/index.ts').RunEvent} RunEvent  each of GET /v1/runs/:id/events
 * @typedef {import('../../../api/src/index.ts').Lineage} Lineage  GET /v1/runs/:id/lineage
 * @typedef {import('../../../api/src/index.ts').CompareView} CompareView  GET /v1/compare
 * @typedef {import('../../../api/src/index.ts').CheckpointView} CheckpointView  each of GET /v1/checkpoints
 * @typedef {import('../../../api/src/index.ts').AliasView} AliasView  each of GET /v1/aliases
 * @typedef {import('../../../api/src/index.ts').GenerateView} GenerateView  POST /v1/generate
 * @typedef {import('../../../../packages/core/src/evaluation.ts').Evaluation} Evaluation  what the worker
 *   writes into an evaluation's perStage (its perplexity), rouge and samples, which RunView passes on as stored JSON
 */

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {unknown} [body]
   */
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

/**
 * Calls the API. `body` is sent as JSON (a string is sent as it is, already JSON).
 * @param {string} path
 * @param {{ method?: string, body?: unknown, signal?: AbortSignal }} [options]
 * @returns {Promise<any>}
 */
export async function api(path, options = {}) {
  /** @type {RequestInit} */
  const init = { method: options.method ?? 'GET', signal: options.signal, headers: { accept: 'application/json' } };
  if (options.body !== undefined) {
    init.headers = { ...init.headers, 'content-type': 'application/json' };
    init.body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiError(0, `cannot reach the API (${error instanceof Error ? error.message : String(error)})`);
  }
  const text = await res.text();
  /** @type {any} */
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text for the message
  }
  if (!res.ok) {
    const message = json && typeof json.message === 'string' ? json.message : text || res.statusText;
    throw new ApiError(res.status, `${res.status} ${json?.error ?? res.statusText}: ${message}`, json);
  }
  return json;
}

/**
 * Runs `tick` now and then every `ms` while `keepGoing()` says so (checked after each tick);
 * stop() ends it, kick() runs a tick soon (after the one in flight, if any) and restarts a
 * loop that had stopped. A tick that throws does not stop the polling (the page shows the
 * error). Only one tick runs at a time.
 * @param {() => Promise<void>} tick
 * @param {number} ms
 * @param {() => boolean} keepGoing
 */
export function poll(tick, ms, keepGoing) {
  let stopped = false;
  let running = false;
  let again = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const loop = async () => {
    timer = undefined;
    if (stopped) return;
    running = true;
    try {
      await tick();
    } catch (error) {
      console.error(error);
    } finally {
      running = false;
    }
    if (stopped) return;
    if (again) {
      again = false;
      timer = setTimeout(loop, 0);
    } else if (keepGoing()) {
      timer = setTimeout(loop, ms);
    }
  };
  void loop();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
    kick() {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      clearTimeout(timer);
      timer = setTimeout(loop, 0);
    },
  };
}

/** How often pages refresh while a run is queued or running. */
export const POLL_MS = 2000;
