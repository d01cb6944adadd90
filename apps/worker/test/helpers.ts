/**
 * Shared by the service tests: a database and a Redis key prefix of their own, a tiny
 * curriculum that trains in seconds, and waiting for a run to reach a state.
 */
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlowProducer } from 'bullmq';
import { parseCurriculum, type Curriculum, type CurriculumInput } from '@miniglm/core';
import type { Db } from '@miniglm/core/db';
import { createRedis, deleteKeysWithPrefix, DEFAULT_REDIS_URL } from '@miniglm/core/service';

export const REDIS_URL = process.env.MINIGLM_TEST_REDIS_URL || DEFAULT_REDIS_URL;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const MINIGLM_BIN = path.join(ROOT, 'apps/cli/bin/miniglm.js');

export function testPrefix(name: string): string {
  return `miniglm-test-${name}-${randomBytes(4).toString('hex')}`;
}

export function tempDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `miniglm-${name}-`));
}

/** Redis helpers for one test file: a client, a flow producer, and cleanup of the prefix. */
export function testRedis(prefix: string) {
  const redis = createRedis(REDIS_URL, { blocking: true });
  const flows = new FlowProducer({ connection: redis, prefix });
  return {
    redis,
    flows,
    async cleanup() {
      await flows.close();
      await deleteKeysWithPrefix(redis, prefix);
      await redis.quit();
    },
  };
}

/** Two short stages on bundled Tang poems and poetry Q&A, parsed: seconds on 2 cores. */
export function tinyCurriculum(name: string, over: Partial<CurriculumInput> = {}, iterations = [12, 10]): Curriculum {
  const parsed = parseCurriculum({
    name,
    seed: 7,
    tags: ['test'],
    tokenizer: { name: 'char', compactVocab: true },
    model: { kind: 'gpt', layers: 1, heads: 2, dim: 16, blockSize: 16 },
    stages: [
      {
        name: 'tang',
        kind: 'pretrain',
        dataset: { source: 'poetry:tang', limit: 60 },
        iterations: iterations[0]!,
        batchSize: 4,
        warmup: 2,
        evalEvery: 4,
        evalBatches: 2,
        checkpointEvery: 4,
      },
      {
        name: 'qa',
        kind: 'sft',
        dataset: { source: 'poetry-qa:tangshi300', limit: 60 },
        iterations: iterations[1]!,
        batchSize: 4,
        warmup: 2,
        evalEvery: 5,
        evalBatches: 2,
        checkpointEvery: 5,
      },
    ],
    evaluation: { valBatches: 2, rougeSamples: 3, maxNewTokens: 8, samples: 2, prompts: ['床前'] },
    ...over,
  });
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 90_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function waitForRun(db: Db, runId: string, statuses: string[], timeoutMs = 120_000) {
  return waitFor(
    `run ${runId} to be ${statuses.join(' or ')}`,
    async () => {
      const run = await db.prisma.run.findUnique({ where: { id: runId } });
      return run && statuses.includes(run.status) ? run : undefined;
    },
    timeoutMs,
  );
}

export interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `miniglm worker` in its own process, as an operator would start it. */
export function spawnWorker(env: {
  databaseUrl: string;
  prefix: string;
  workDir: string;
  id: string;
  lockMs?: number;
}): WorkerProcess {
  const child = spawn(process.execPath, [MINIGLM_BIN, 'worker', '--id', env.id, '--work-dir', env.workDir], {
    env: {
      ...process.env,
      DATABASE_URL: env.databaseUrl,
      REDIS_URL,
      MINIGLM_PREFIX: env.prefix,
      MINIGLM_LOCK_DURATION_MS: String(env.lockMs ?? 3000),
      MINIGLM_STALLED_INTERVAL_MS: String(Math.max(500, Math.floor((env.lockMs ?? 3000) / 2))),
      // Every checkpoint the curriculum asks for: these tiny stages train many steps a second,
      // and the tests wait for checkpoints mid-stage (miniglm worker's default floor is 5 s).
      MINIGLM_MIN_CHECKPOINT_SECONDS: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}
