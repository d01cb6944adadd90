/**
 * Input that no route can take, refused once for all of them before any route sees it: a 400
 * naming the field, where it used to be a 500 from whichever layer choked first.
 *
 * - A string holding U+0000: Postgres text and jsonb cannot store it, so the insert failed
 *   after the request had been accepted (and an upload had already stored its bytes).
 * - A string holding a lone UTF-16 surrogate ("\ud800"): not Unicode. jsonb refuses it, and
 *   UTF-8 cannot encode it (Node writes U+FFFD instead, so the text would change silently).
 * - Nesting deeper than MAX_DEPTH: V8's JSON.parse takes 10,000 levels, but recursive code
 *   after it (schema checks, cloning) overflows the stack.
 * - A number that is not finite (JSON's 1e400 parses as Infinity), negative zero (equal to 0
 *   but not the same number: 1 / -0 is -Infinity), or beyond ±MAX_NUMBER, where integers stop
 *   being exact. Fields with tighter limits (an Int column's 2^31 − 1) say so in their schema.
 *
 * Object keys are strings too. JSON bodies are checked by the JSON parser (installed by
 * installInputChecks), query strings and URL parameters by an onRequest hook: before an
 * upload's parser spools a single byte.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest } from './errors.ts';

export const MAX_DEPTH = 32;
export const MAX_NUMBER = Number.MAX_SAFE_INTEGER;

export interface UnsafeInput {
  /** JSON pointer of the value at fault ("" for the whole document). */
  path: string;
  problem: string;
}

/** A node of the walk; the path is built from the parents only when something is wrong. */
interface Node {
  value: unknown;
  key: string | undefined;
  parent: Node | undefined;
  depth: number;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** What is wrong with a string, or undefined. */
export function stringProblem(text: string): string | undefined {
  const nul = text.indexOf('\u0000');
  if (nul >= 0) return `contains the NUL character (\\u0000, at index ${nul}), which cannot be stored: remove it`;
  const lone = LONE_SURROGATE.exec(text);
  if (lone)
    return `contains a lone UTF-16 surrogate (\\u${lone[0].charCodeAt(0).toString(16)}, at index ${lone.index}), which is not valid Unicode`;
  return undefined;
}

function numberProblem(n: number): string | undefined {
  if (!Number.isFinite(n)) return `${n} is not a finite number (a JSON number this large overflows a double)`;
  if (Object.is(n, -0)) return '-0 (negative zero) is not accepted: send 0';
  if (Math.abs(n) > MAX_NUMBER)
    return `${n} is out of range: numbers in requests are at most ${MAX_NUMBER} in magnitude`;
  return undefined;
}

const pointer = (node: Node | undefined): string => {
  const keys: string[] = [];
  for (let n = node; n?.key !== undefined; n = n.parent) keys.push(n.key.replace(/~/g, '~0').replace(/\//g, '~1'));
  return keys
    .reverse()
    .map((k) => `/${k}`)
    .join('');
};

/** Shows a key in a message with its NUL or surrogate visible, and not too long. */
const shown = (key: string) => {
  const text = JSON.stringify(key);
  return text.length > 60 ? `${text.slice(0, 57)}..."` : text;
};

/**
 * The first unsafe thing in a parsed JSON value (or a query string object), depth first, or
 * undefined. Iterative, so that the depth it refuses cannot overflow its own stack.
 */
export function findUnsafeInput(value: unknown, maxDepth = MAX_DEPTH): UnsafeInput | undefined {
  const stack: Node[] = [{ value, key: undefined, parent: undefined, depth: 0 }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const v = node.value;
    let problem: string | undefined;
    if (typeof v === 'string') problem = stringProblem(v);
    else if (typeof v === 'number') problem = numberProblem(v);
    else if (v !== null && typeof v === 'object') {
      if (node.depth >= maxDepth) {
        problem = `nests deeper than ${maxDepth} levels of arrays and objects; no request needs more`;
      } else {
        const entries = Array.isArray(v) ? v.map((item, i) => [String(i), item] as const) : Object.entries(v);
        for (let i = entries.length - 1; i >= 0; i--) {
          const [key, item] = entries[i]!;
          const keyProblem = Array.isArray(v) ? undefined : stringProblem(key);
          if (keyProblem) return { path: pointer(node), problem: `the field name ${shown(key)} ${keyProblem}` };
          stack.push({ value: item, key, parent: node, depth: node.depth + 1 });
        }
      }
    }
    if (problem) return { path: pointer(node), problem };
  }
  return undefined;
}

/** The 400 for unsafe input, worded as the schema errors are: "<where><path>: <problem>". */
export function unsafeInputError(found: UnsafeInput, where = '') {
  return badRequest(`${where}${found.path || '/'}: ${found.problem}`);
}

/**
 * Replaces the JSON parser with Fastify's own (same errors, same "__proto__" refusal)
 * followed by findUnsafeInput, and checks query strings and URL parameters on every request.
 * Install it before the routes, so that every scope inherits both.
 */
export function installInputChecks(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    parseJson(request, body as string, (error: Error | null, parsed?: unknown) => {
      if (error) return done(error, undefined);
      const found = findUnsafeInput(parsed);
      if (found) return done(unsafeInputError(found), undefined);
      done(null, parsed);
    });
  });
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const query = findUnsafeInput(request.query);
    if (query) throw unsafeInputError(query, 'query string ');
    const params = findUnsafeInput(request.params);
    if (params) throw unsafeInputError(params, 'URL ');
  });
}
