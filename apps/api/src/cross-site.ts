/**
 * What a web page on another site can make a browser send here, refused before any route
 * (or an upload's parser) sees the request.
 *
 * - Simple requests. A page may POST cross-site without a preflight only with a
 *   text/plain, application/x-www-form-urlencoded or multipart/form-data body (a <form> can).
 *   No route takes those types: a request that names one, with a body or without, is a 415.
 *   Uploads (POST /v1/files) take application/octet-stream, which needs a preflight, which
 *   this API never grants (it sends no CORS headers).
 * - Origin. Browsers send it with every cross-origin POST, PUT and DELETE (or "null"). On
 *   those methods it must be this API's own origin (the Host the request came to) or one of
 *   MINIGLM_ALLOWED_ORIGINS; otherwise 403.
 * - Host. DNS rebinding points an attacker's name at 127.0.0.1, making a page on it "same
 *   origin" with a keyless API on loopback. On a loopback listen address the Host must be
 *   localhost, 127.0.0.1 or [::1] (any port), or one of MINIGLM_ALLOWED_HOSTS; otherwise 403.
 *   On another address keys are required (server.ts), which a browser never attaches by
 *   itself, so the Host is checked only when MINIGLM_ALLOWED_HOSTS is set. /healthz and
 *   /readyz answer any Host (probes use addresses).
 */
import type { FastifyRequest } from 'fastify';
import { HttpError } from './errors.ts';

const SIMPLE_TYPES = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data'];
const SAFE_METHODS = ['GET', 'HEAD', 'OPTIONS'];
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

export interface CrossSiteOptions {
  /** The address the API listens on; undefined (app.inject in tests) counts as loopback. */
  listenHost?: string;
  /** Host names (or host:port) requests may be addressed to, besides the loopback names. */
  allowedHosts?: string[];
  /** Origins ("https://ui.example.com") other than the API's own that may send writes. */
  allowedOrigins?: string[];
}

export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** "a,b, c" → ["a","b","c"]; empty or unset → undefined. */
export function listFromEnv(value: string | undefined): string[] | undefined {
  const items = (value ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  return items.length ? items : undefined;
}

/** "Example.com:8080" → "example.com", "[::1]:80" → "[::1]". */
function hostName(host: string): string {
  const h = host.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  return h.split(':')[0]!;
}

const forbidden = (message: string) => new HttpError(403, message);

export function createCrossSiteCheck(options: CrossSiteOptions): (request: FastifyRequest) => void {
  const loopback = options.listenHost === undefined || isLoopbackHost(options.listenHost);
  const allowedHosts = options.allowedHosts?.map((h) => h.toLowerCase());
  // Which Host headers to accept: undefined = any.
  const hosts = loopback
    ? new Set([...LOOPBACK_NAMES, ...(allowedHosts ?? [])])
    : allowedHosts && new Set([...allowedHosts, ...LOOPBACK_NAMES]);
  const origins = new Set((options.allowedOrigins ?? []).map((o) => o.toLowerCase().replace(/\/$/, '')));

  return (request) => {
    const path = request.url.split('?')[0]!;
    const host = request.headers.host ?? '';
    if (
      hosts &&
      path !== '/healthz' &&
      path !== '/readyz' &&
      !hosts.has(host.toLowerCase()) &&
      !hosts.has(hostName(host))
    )
      throw forbidden(
        `this API does not answer to the Host ${JSON.stringify(host)} (a guard against DNS rebinding); use http://localhost or http://127.0.0.1, or add the name to MINIGLM_ALLOWED_HOSTS`,
      );
    if (SAFE_METHODS.includes(request.method)) return;

    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (SIMPLE_TYPES.includes(type))
      throw new HttpError(
        415,
        `content-type ${type} is refused on every route (any web page can send it cross-site): send application/json, or application/octet-stream to POST /v1/files`,
      );

    const origin = request.headers.origin;
    if (origin === undefined) return; // not a browser's cross-origin request (curl, the CLI)
    const normalized = origin.toLowerCase();
    let sameOrigin = false;
    try {
      // Through URL on both sides, so that a default port (":80" for http) is dropped from each.
      const url = new URL(normalized);
      sameOrigin = url.origin !== 'null' && url.host === new URL(`${url.protocol}//${host}`).host;
    } catch {
      // "null" (a sandboxed page, a redirect, a privacy setting) or garbage: never ours
    }
    if (!sameOrigin && !origins.has(normalized))
      throw forbidden(
        `${request.method} from the web origin ${JSON.stringify(origin)} is refused: writes are taken only from this API's own pages (or an origin in MINIGLM_ALLOWED_ORIGINS)`,
      );
  };
}
