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
 * The API key of this tab. In sessionStorage: it lives as long as the tab, is not sent to
 * any other site (nor by the browser on its own: it goes only into the Authorization header
 * of our own requests), and a new tab signs in again.
 */
const KEY_STORAGE = 'miniglm.apiKey';

/** @returns {string | null} */
export function apiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null; // storage refused (a privacy setting): keyless only
  }
}

/** @param {string | null} key  null signs out */
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

/** Fired on window when the API answers 401: the key is missing, wrong or revoked (app.js shows the sign-in box). */
export const UNAUTHORIZED_EVENT = 'miniglm:unauthorized';

/** @returns {Record<string, string>} */
function authHeader() {
  const key = apiKey();
  return key ? { authorization: `Bearer ${key}` } : {};
}

/**
 * An ApiError from a non-2xx answer's text; a 401 also tells the page to sign in.
 * @param {Response} res
 * @param {string} text
 */
function answerError(res, text) {
  /** @type {any} */
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text for the message
  }
  const message = json && typeof json.message === 'string' ? json.message : text || res.statusText;
  if (res.status === 401) window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT, { detail: message }));
  return new ApiError(res.status, `${res.status} ${json?.error ?? res.statusText}: ${message}`, json);
}

/**
 * Calls the API. `body` is sent as JSON (a string is sent as it is, already JSON).
 * @param {string} path
 * @param {{ method?: string, body?: unknown, signal?: AbortSignal }} [options]
 * @returns {Promise<any>}
 */
export async function api(path, options = {}) {
  /** @type {RequestInit} */
  const init = {
    method: options.method ?? 'GET',
    signal: options.signal,
    headers: { accept: 'application/json', ...authHeader() },
  };
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
  if (!res.ok) throw answerError(res, text);
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/**
 * Downloads a file of the API (a checkpoint) with the tab's key: a plain <a download> link
 * cannot send the Authorization header. The bytes come whole as a Blob before the browser
 * is asked to save them, so a download the API cuts short (a corrupt chunk, see the API's
 * README) rejects here and is shown as an error, never saved as a complete file.
 * @param {string} path
 * @param {string} fallbackName  used when the answer names no file
 */
export async function download(path, fallbackName) {
  let res;
  try {
    res = await fetch(path, { headers: authHeader() });
  } catch (error) {
    throw new ApiError(0, `cannot reach the API (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!res.ok) throw answerError(res, await res.text());
  let blob;
  try {
    blob = await res.blob();
  } catch (error) {
    throw new ApiError(
      res.status,
      `the download broke off before its end (${error instanceof Error ? error.message : String(error)}); nothing was saved`,
    );
  }
  const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? fallbackName;
  const url = URL.createObjectURL(blob);
  try {
    const link = document.createElement('a');
    link.href = url;
    link.download = name;
    link.dataset.testid = 'download-link';
    document.body.append(link);
    link.click();
    link.remove();
  } finally {
    // After the click has handed the blob to the download manager.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }
  return { name, size: blob.size };
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
