/**
 * `npm run loadtest` (scripts/loadtest.ts), kept from rotting: its options and verdict, the
 * load test itself at its smallest (3 runs from 2 keys to 1 worker: real API and worker
 * processes on real Postgres and Redis, with a submission rate that refuses one run), and
 * Ctrl-C in the middle of it. Both runs must leave no database, Redis key or folder behind.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createDb } from '@miniglm/core/db';
import { createRedis } from '@miniglm/core/service';
import { DEFAULT_OPTIONS, parseLoadTestArgs, type LoadTestOptions } from '../../../scripts/loadtest/options.ts';
import { judge } from '../../../scripts/loadtest/report.ts';
import { runLoadTest, type LoadReport } from '../../../scripts/loadtest/run.ts';
import type { LoadTestResources } from '../../../scripts/loadtest/services.ts';
import { REPO_ROOT } from './helpers.ts';

// The smallest load that still has two owners; reads are judged by judge()'s own test, not
// by the clock of a machine that runs the whole suite beside it.
const SMALL: LoadTestOptions = {
  ...DEFAULT_OPTIONS,
  runs: 3,
  keys: 2,
  workers: 1,
  readers: 1,
  readPauseMs: 20,
  deadlineS: 100,
  maxReadP99Ms: 60_000,
};

describe('loadtest options', () => {
  it('has the load of issue 10 by default, and names the flag and its bounds when a value is wrong', () => {
    const parsed = parseLoadTestArgs([]);
    expect(parsed.ok && 'options' in parsed && parsed.options).toMatchObject({ runs: 200, keys: 4, workers: 2 });
    expect(parseLoadTestArgs(['--runs', '6', '--max-read-p99-ms', '50'])).toMatchObject({
      options: { runs: 6, maxReadP99Ms: 50 },
    });
    expect(parseLoadTestArgs(['--runs', '20000'])).toEqual({
      ok: false,
      error: '--runs must be a whole number from 1 to 10000, got "20000"',
    });
    expect(parseLoadTestArgs(['--worker-nice', '2.5'])).toMatchObject({ ok: false, error: /--worker-nice/ });
    expect(parseLoadTestArgs(['--bogus'])).toMatchObject({ ok: false, error: /bogus/ });
  });

  it('runs on this machine only: Postgres and Redis must be loopback addresses', () => {
    expect(parseLoadTestArgs(['--redis', 'redis://10.0.0.5:6379'])).toEqual({
      ok: false,
      error: '--redis: the load test runs on this machine only, but "10.0.0.5" is not a loopback address',
    });
    expect(parseLoadTestArgs(['--postgres', 'postgresql://db.example.com/postgres'])).toMatchObject({
      ok: false,
      error: /--postgres: .*"db\.example\.com" is not a loopback address/,
    });
    expect(parseLoadTestArgs(['--postgres', 'postgresql://postgres@localhost:5432/postgres']).ok).toBe(true);
  });
});

describe('loadtest verdict', () => {
  const route = (name: string, p99: number, errors: Record<string, number> = {}) => ({
    route: name,
    count: 100,
    errors,
    p50: 1,
    p95: 2,
    p99,
    max: p99,
  });
  const passing: Omit<LoadReport, 'failures'> = {
    options: { ...DEFAULT_OPTIONS, runs: 3, maxReadP99Ms: 200 },
    resources: { database: 'd', redisPrefix: 'p', folder: 'f' },
    workers: [],
    submitted: 3,
    accepted: 2,
    refused: [['key loadtest-1: 1 run queued, the quota is 1', 1]],
    submitFailures: [],
    runs: {
      succeeded: 2,
      failed: 0,
      cancelled: 0,
      notFinal: 0,
      unannounced: 0,
      missing: 0,
      examples: [],
      secondsToEnd: { p50: 1, max: 2 },
      stagesByWorker: {},
    },
    wallSeconds: 3,
    reads: [route('GET /v1/runs', 199.9), route('GET /healthz', 3)],
    submits: [route('POST /v1/runs', 500, { 429: 1 })],
    serviceExits: [],
    cleanupProblems: [],
  };

  it('passes with quota refusals and a slow submission; fails on a slow read, a failed read, a stuck or failed run', () => {
    expect(judge(passing)).toEqual([]);
    expect(
      judge({ ...passing, reads: [route('GET /v1/runs', 200), route('GET /healthz', 3, { 503: 2, network: 1 })] }),
    ).toEqual(['GET /v1/runs: p99 200.0 ms is not under 200 ms', 'GET /healthz: 3 of 100 answers were not a success']);
    expect(judge({ ...passing, runs: { ...passing.runs, notFinal: 1, failed: 1 } })).toEqual([
      '1 runs failed and 0 were cancelled',
      '1 runs were still queued or running after 1800 s',
    ]);
    expect(judge({ ...passing, submitFailures: ['loadtest-1: POST /v1/runs answered 500: boom'] })).toEqual([
      '1 submissions got an answer that was neither 201 nor 429',
    ]);
    expect(judge({ ...passing, accepted: 0 })).toContain('no run was accepted, so nothing was measured');
    expect(judge({ ...passing, runs: { ...passing.runs, unannounced: 1 } })).toEqual([
      '1 runs are in the database without a 201 for them',
    ]);
  });
});

describe('loadtest against the real service', () => {
  it('submits from every key to a worker process, counts a 429 as refused, times every read route, and removes what it made', async () => {
    let started: LoadTestResources | undefined;
    // One submission per key in ten minutes, as a user would set it for the API it starts:
    // the first key's second run (the third submission) is refused.
    const before = process.env.MINIGLM_SUBMIT_RATE;
    process.env.MINIGLM_SUBMIT_RATE = '1/600';
    let report: LoadReport;
    try {
      report = await runLoadTest(SMALL, undefined, ({ resources }) => (started = resources));
    } finally {
      if (before === undefined) delete process.env.MINIGLM_SUBMIT_RATE;
      else process.env.MINIGLM_SUBMIT_RATE = before;
    }
    expect(report.failures).toEqual([]);
    expect(report).toMatchObject({ submitted: 3, accepted: 2, submitFailures: [] });
    expect(report.refused).toEqual([[expect.stringMatching(/^submission rate limit: key \w+ may submit 1/), 1]]);
    expect(report.runs).toMatchObject({ succeeded: 2, notFinal: 0, unannounced: 0, missing: 0 });
    expect(report.runs.stagesByWorker).toEqual({ 'loadtest-w1': 2 });
    expect(report.reads.map((r) => r.route).sort()).toEqual([
      'GET /healthz',
      'GET /v1/runs',
      'GET /v1/runs/:id',
      'GET /v1/runs/:id/metrics',
    ]);
    for (const read of report.reads) expect(read.count, read.route).toBeGreaterThan(0);
    expect(report.eventLoop?.max).toBeGreaterThan(0);
    expect(started).toEqual(report.resources);
    await expectRemoved(report.resources);
  });

  it('Ctrl-C during the load stops the services and removes what it made', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/loadtest.ts', '--runs', '4', '--keys', '2', '--workers', '1', '--readers', '1'],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const up = /database (\S+), Redis prefix (\S+), logs in (\S+)\); submitting/;
    while (!up.test(output) && child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 100));
    const [, database, redisPrefix, folder] = up.exec(output) ?? [];
    expect(database, output).toBeDefined();
    child.kill('SIGINT');
    expect(await exited, output).toBe(130);
    expect(output).toContain('loadtest: interrupted; cleaned up');
    await expectRemoved({ database: database!, redisPrefix: redisPrefix!, folder: folder! });
  });
});

async function expectRemoved(resources: LoadTestResources): Promise<void> {
  const server = await createDb({ url: DEFAULT_OPTIONS.postgresUrl, env: {}, poolSize: 1 });
  try {
    const found = await server.sql.query('SELECT 1 FROM pg_database WHERE datname = $1', [resources.database]);
    expect(found, resources.database).toEqual([]);
  } finally {
    await server.close();
  }
  const redis = createRedis(DEFAULT_OPTIONS.redisUrl);
  try {
    expect(await redis.keys(`${resources.redisPrefix}:*`)).toEqual([]);
  } finally {
    await redis.quit();
  }
  expect(fs.existsSync(resources.folder), resources.folder).toBe(false);
}
