/**
 * What the load test sends to the API: every key submitting its share of tiny runs at once,
 * and read loops that poll as dashboards and `miniglm watch` do, each request timed.
 */
import type { CurriculumInput } from '@miniglm/core';
import type { LatencyRecorder } from './latency.ts';
import type { MemberKey } from './services.ts';

/**
 * Run `index` of the load: the smallest model worth the name (1 layer, 1 head, dim 8, 8
 * characters of context) on 50 bundled Tang poems (prepared once: every run asks for the
 * same data), a few iterations, one checkpoint, and the least evaluation the flow allows.
 */
export function tinyRun(index: number, iterations: number): CurriculumInput {
  return {
    name: `loadtest-${index + 1}`,
    seed: index + 1,
    tags: ['loadtest'],
    tokenizer: { name: 'char', compactVocab: true },
    model: { kind: 'gpt', layers: 1, heads: 1, dim: 8, blockSize: 8 },
    stages: [
      {
        name: 'tang',
        kind: 'pretrain',
        dataset: { source: 'poetry:tang', limit: 50 },
        iterations,
        batchSize: 2,
        warmup: 0,
        evalEvery: iterations,
        evalBatches: 1,
        checkpointEvery: iterations,
      },
    ],
    evaluation: { valBatches: 1, rougeSamples: 0, maxNewTokens: 1, samples: 1, prompts: ['床'] },
  };
}

export interface Submissions {
  /** The ids of the accepted runs, by the id of the key that submitted them. */
  accepted: Map<string, string[]>;
  /** Refusals by quota (429), counted by their message. */
  refused: Map<string, number>;
  /** Anything else: "<status> <message>" per submission. */
  failed: string[];
}

export function emptySubmissions(keys: MemberKey[]): Submissions {
  return { accepted: new Map(keys.map((k) => [k.id, []])), refused: new Map(), failed: [] };
}

/**
 * Every key submits its share (runs index, index + keys, ...) one after the other, all keys at
 * once. A 201 is accepted, a 429 refused by quota; any other answer is a failure.
 */
export async function submitRuns(
  apiUrl: string,
  keys: MemberKey[],
  options: { runs: number; iterations: number },
  into: Submissions,
  timings: LatencyRecorder,
  signal?: AbortSignal,
): Promise<void> {
  await Promise.all(
    keys.map(async (key, k) => {
      for (let i = k; i < options.runs; i += keys.length) {
        signal?.throwIfAborted();
        const answer = await timedRequest(timings, 'POST /v1/runs', `${apiUrl}/v1/runs`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
          body: JSON.stringify(tinyRun(i, options.iterations)),
        });
        const message = messageOf(answer.text);
        if (answer.status === 201) into.accepted.get(key.id)!.push((JSON.parse(answer.text) as { id: string }).id);
        else if (answer.status === 429) into.refused.set(message, (into.refused.get(message) ?? 0) + 1);
        else into.failed.push(`${key.name}: POST /v1/runs answered ${answer.status}: ${message}`);
      }
    }),
  );
}

/**
 * One read loop until `stop` aborts: for each key in turn, its list of runs, one of its
 * accepted runs and that run's loss curves, and /healthz; then a pause.
 */
export async function readUntil(
  apiUrl: string,
  keys: MemberKey[],
  accepted: Map<string, string[]>,
  options: { pauseMs: number; first: number },
  timings: LatencyRecorder,
  stop: AbortSignal,
): Promise<void> {
  for (let round = options.first; !stop.aborted; round++) {
    const key = keys[round % keys.length]!;
    const headers = { authorization: `Bearer ${key.key}` };
    await timedRequest(timings, 'GET /v1/runs', `${apiUrl}/v1/runs?limit=20`, { headers });
    const ids = accepted.get(key.id)!;
    if (ids.length > 0) {
      const id = ids[Math.floor(round / keys.length) % ids.length]!;
      await timedRequest(timings, 'GET /v1/runs/:id', `${apiUrl}/v1/runs/${id}`, { headers });
      await timedRequest(
        timings,
        'GET /v1/runs/:id/metrics',
        `${apiUrl}/v1/runs/${id}/metrics?keys=trainLoss,valLoss`,
        { headers },
      );
    }
    await timedRequest(timings, 'GET /healthz', `${apiUrl}/healthz`, {});
    if (options.pauseMs > 0) await pause(options.pauseMs, stop);
  }
}

/** Sends one request and reads its whole answer; the time is recorded under `route`. */
async function timedRequest(
  timings: LatencyRecorder,
  route: string,
  url: string,
  init: RequestInit,
): Promise<{ status: number | 'network'; text: string }> {
  const started = performance.now();
  try {
    const response = await fetch(url, init);
    const text = await response.text();
    timings.record(route, performance.now() - started, response.status);
    return { status: response.status, text };
  } catch (error) {
    timings.record(route, performance.now() - started, 'network');
    return { status: 'network', text: JSON.stringify({ message: (error as Error).message }) };
  }
}

/** The `message` of an error answer ({ error, message }), else its text. */
function messageOf(text: string): string {
  try {
    return String((JSON.parse(text) as { message?: unknown }).message ?? text);
  } catch {
    return text;
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
