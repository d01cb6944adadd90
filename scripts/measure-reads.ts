/**
 * `npx tsx scripts/measure-reads.ts [points per run, default 1000000]`: the bounded reads,
 * measured. Two runs of that many metric points each (trainLoss and valLoss at every step,
 * written by INSERT ... SELECT generate_series) in a throw-away database on the test Postgres
 * (MINIGLM_TEST_PG_URL) with the test Redis (REDIS_URL). The API runs as it is deployed, in
 * a process of its own (`miniglm api` on loopback), so that this script's own work as a
 * client is not counted against it. Each read is timed three times while /healthz is asked
 * again and again; the script prints the answer's size, its times, and /healthz's latencies
 * meanwhile, and the API process's peak memory.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { createServer } from 'node:net';
import { openTestDb } from '../packages/core/src/db/testing.ts';
import { insertLongRun } from '../apps/api/test/metric-fixtures.ts';

const points = Number(process.argv[2] ?? 1_000_000);
const steps = Math.floor(points / 2);
const t = await openTestDb('postgres', 'measure_reads');
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const api = spawn(process.execPath, ['apps/cli/bin/miniglm.js', 'api', '--port', String(port)], {
  env: {
    ...process.env,
    DATABASE_URL: t.where,
    REDIS_URL: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
    MINIGLM_PREFIX: `miniglm-measure-${randomBytes(4).toString('hex')}`,
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});

try {
  let started = performance.now();
  const a = await insertLongRun(t.db, 'measure-a', steps, ['trainLoss', 'valLoss']);
  const b = await insertLongRun(t.db, 'measure-b', steps, ['trainLoss', 'valLoss']);
  console.log(`inserted 2 runs x ${(2 * steps).toLocaleString('en-US')} points in ${s(performance.now() - started)}`);
  await until(async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.ok === true);
  console.log(
    `node ${process.version}, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1))}`,
  );

  // '' is no read at all: /healthz alone for 3 s, the machine's own noise.
  const reads = [
    '',
    `/v1/runs/${a.runId}/metrics?keys=trainLoss,valLoss`,
    `/v1/runs/${a.runId}/metrics?keys=trainLoss,valLoss&maxPoints=10000`,
    `/v1/compare?runs=${a.runId},${b.runId}`,
    `/v1/compare?runs=${a.runId},${b.runId}&maxPoints=10000`,
  ];
  console.log(
    '\n| request | answer | time (3 tries) | /healthz meanwhile: median, p95, max (answers) | API event-loop delay, max |\n|---|---|---|---|---|',
  );
  for (const path of reads) {
    const times: number[] = [];
    const health: number[] = [];
    let size = 0;
    let loopDelay = 0;
    for (let i = 0; i < 3; i++) {
      let done = false;
      await eventLoopDelayMax(); // prom-client resets its event-loop histogram on every scrape
      started = performance.now();
      const read = (
        path ? fetch(`${base}${path}`) : new Promise((resolve) => setTimeout(resolve, 1000)).then(() => null)
      )
        .then(async (res) => {
          if (!res) return times.push(1000);
          if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
          size = (await res.arrayBuffer()).byteLength;
          times.push(performance.now() - started);
        })
        .finally(() => (done = true));
      do {
        const asked = performance.now();
        await (await fetch(`${base}/healthz`)).arrayBuffer();
        health.push(performance.now() - asked);
        await new Promise((resolve) => setTimeout(resolve, 5));
      } while (!done);
      await read;
      loopDelay = Math.max(loopDelay, await eventLoopDelayMax());
    }
    health.sort((x, y) => x - y);
    const at = (q: number) => health[Math.min(health.length - 1, Math.floor(q * health.length))]!.toFixed(1);
    const short = path ? `GET ${path.replace(a.runId, '<a>').replace(b.runId, '<b>')}` : 'none (1 s of /healthz alone)';
    console.log(
      `| \`${short}\` | ${(size / 1024).toFixed(1)} KB | ${times.map(s).join(', ')} | ${at(0.5)}, ${at(0.95)}, ${at(1)} ms (${health.length}) | ${loopDelay.toFixed(1)} ms |`,
    );
  }
  const status = await fetch(`${base}/metrics`).then((r) => r.text());
  const rss = /^process_resident_memory_bytes (\S+)/m.exec(status)?.[1];
  if (rss) console.log(`\nAPI process resident memory after the reads: ${(Number(rss) / 2 ** 20).toFixed(0)} MB`);
} finally {
  api.kill('SIGTERM');
  await new Promise((resolve) => api.once('exit', resolve));
  await t.cleanup();
}

/** The API's own measure of how long its event loop was blocked since the last scrape (ms). */
async function eventLoopDelayMax(): Promise<number> {
  const text = await fetch(`${base}/metrics`).then((r) => r.text());
  return Number(/^nodejs_eventloop_lag_max_seconds (\S+)/m.exec(text)?.[1] ?? NaN) * 1000;
}

function s(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function until(ready: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error('the API did not start within a minute');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
