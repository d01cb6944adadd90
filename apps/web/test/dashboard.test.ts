/**
 * The dashboard in a real browser (Debian's Chromium, driven by playwright-core) against the
 * API and a worker this test starts on the real Postgres and Redis: submit a small run
 * through the page, watch it reach "succeeded", see the loss chart with points, compare two
 * runs, look at the lineage, and generate five samples in the playground. Every page is
 * photographed (MINIGLM_SCREENSHOTS=<dir> keeps the pictures; the README shows them).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type StartedApi } from '@miniglm/api';
import { openTestDb, type TestDb } from '@miniglm/core/db/testing';
import { createRedis, deleteKeysWithPrefix, DEFAULT_REDIS_URL } from '@miniglm/core/service';
import { startWorker, type RunningWorker } from '@miniglm/worker';

const CHROMIUM = process.env.MINIGLM_CHROMIUM || '/usr/bin/chromium';
const redisUrl = process.env.MINIGLM_TEST_REDIS_URL || DEFAULT_REDIS_URL;
const prefix = `miniglm-test-web-${process.pid}`;
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-web-'));
const shots = process.env.MINIGLM_SCREENSHOTS || path.join(workDir, 'screenshots');

let t: TestDb;
let api: StartedApi;
let worker: RunningWorker;
let browser: Browser;
let page: Page;
const redis = createRedis(redisUrl, { failFast: true });

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(
      `no Chromium at ${CHROMIUM}: install Debian's (apt-get install chromium; .ci/run does) or set MINIGLM_CHROMIUM`,
    );
  t = await openTestDb('postgres', 'web');
  worker = await startWorker({ db: t.db, redisUrl, prefix, workDir, workerId: 'web-worker', log: () => {} });
  api = await startApi({ db: t.db, redis, prefix, port: 0, logger: false });
  // The flags of a closed network: no background connections, no sandbox (root in CI).
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  fs.mkdirSync(shots, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await worker?.close();
  await api?.close();
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
  await t?.cleanup();
  fs.rmSync(workDir, { recursive: true, force: true });
});

const byTestId = (id: string) => page.getByTestId(id);

async function ready(pageName: string): Promise<void> {
  await page.waitForSelector(`[data-testid="page"][data-page="${pageName}"][data-state="ready"]`, { timeout: 30_000 });
}

async function shoot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

/** Submits the form's curriculum with another name; returns the new run's id. */
async function submitThroughForm(name: string, lr: number, iterations?: number): Promise<string> {
  await page.goto(`${api.url}/#/runs`);
  await ready('runs');
  await byTestId('new-run-reset').click(); // the form keeps a rejected text; start from the example
  const json = JSON.parse(await byTestId('new-run-json').inputValue()) as {
    name: string;
    stages: { lr?: number; iterations: number; checkpointEvery?: number }[];
  };
  json.name = name;
  for (const stage of json.stages) stage.lr = lr;
  if (iterations) {
    json.stages[0]!.iterations = iterations;
    // A long stage checkpoints less often: the service refuses more than 1000 checkpoints a stage.
    json.stages[0]!.checkpointEvery = Math.max(json.stages[0]!.checkpointEvery ?? 1, Math.ceil(iterations / 100));
  }
  await byTestId('new-run-json').fill(JSON.stringify(json, null, 2));
  await byTestId('new-run-submit').click();
  const link = byTestId('new-run-link');
  await link.waitFor({ timeout: 15_000 });
  const href = (await link.getAttribute('href'))!;
  return href.replace('#/runs/', '');
}

async function waitForStatus(runId: string, status: string): Promise<void> {
  await page.waitForSelector(`[data-testid="run-row"][data-run-id="${runId}"][data-status="${status}"]`, {
    timeout: 120_000,
  });
}

describe('the dashboard in Chromium', () => {
  it('submits runs, follows them to succeeded, charts, compares, shows lineage and generates', async () => {
    // A bad curriculum first: the page shows the API's message, which names the field.
    await page.goto(`${api.url}/`);
    await ready('runs');
    await byTestId('new-run-json').fill(
      '{"name": "bad", "tokenizer": {"name": "char"}, "model": {"layers": 1, "dim": 16, "blockSize": 16}, "stages": []}',
    );
    await byTestId('new-run-submit').click();
    await expect
      .poll(async () => (await byTestId('new-run-error').textContent()) ?? '', { timeout: 10_000 })
      .toMatch(/\/stages/);

    const first = await submitThroughForm('web-a', 0.001);
    const second = await submitThroughForm('web-b', 0.003);
    // The list updates by itself (no reload) until both runs have succeeded.
    await waitForStatus(first, 'succeeded');
    await waitForStatus(second, 'succeeded');
    expect(Number(await byTestId('runs-table').getAttribute('data-count'))).toBeGreaterThanOrEqual(2);
    await shoot('runs');

    // A run: the loss chart has points from both stages, with the stage boundary marked.
    await page.goto(`${api.url}/#/runs/${first}`);
    await ready('run');
    const chart = byTestId('loss-chart');
    await expect
      .poll(async () => Number(await chart.getAttribute('data-points')), { timeout: 15_000 })
      .toBeGreaterThan(10);
    expect(Number(await chart.getAttribute('data-boundaries'))).toBe(1);
    expect(await page.locator('[data-testid="loss-chart"] canvas').count()).toBeGreaterThan(0);
    await expect.poll(async () => page.locator('[data-testid="stage-item"][data-status="succeeded"]').count()).toBe(2);
    await byTestId('evaluation-perplexity').waitFor();
    expect(await page.locator('[data-testid="checkpoint-row"]').count()).toBeGreaterThan(0);
    await shoot('run');

    // Compare: both runs' curves and the differing learning rate.
    await page.goto(`${api.url}/#/compare?runs=${first},${second}`);
    await ready('compare');
    expect(await page.locator('[data-testid="compare-row"]').count()).toBe(2);
    expect(Number(await byTestId('compare-chart').getAttribute('data-series'))).toBe(2);
    expect(await page.locator('[data-testid="difference-row"][data-path="stages.tang.lr"]').count()).toBe(1);
    await shoot('compare');

    // Lineage: datasets → stages → checkpoints.
    await page.goto(`${api.url}/#/lineage/${first}`);
    await ready('lineage');
    expect(Number(await byTestId('lineage-graph').getAttribute('data-edges'))).toBeGreaterThan(3);
    expect(await page.locator('[data-testid="lineage-node"][data-type="dataset"]').count()).toBe(2);
    await shoot('lineage');

    // Playground: five answers from the first run's last checkpoint, with their speed.
    const checkpoint = await (async () => {
      const res = await fetch(`${api.url}/v1/checkpoints?run=${first}`);
      const body = (await res.json()) as { checkpoints: { id: string; step: number; stage: { name: string } }[] };
      return body.checkpoints.find((c) => c.stage.name === 'qa')!.id;
    })();
    await page.goto(`${api.url}/#/playground?checkpoint=${checkpoint}`);
    await ready('playground');
    await byTestId('playground-prompt').fill('《靜夜思》的作者是谁？');
    expect(await byTestId('playground-samples').inputValue()).toBe('5');
    await byTestId('playground-submit').click();
    await expect
      .poll(async () => Number(await byTestId('playground-output').getAttribute('data-count')), { timeout: 60_000 })
      .toBe(5);
    expect(await page.locator('[data-testid="playground-sample"]').count()).toBe(5);
    expect(await byTestId('playground-speed').textContent()).toMatch(/\d/);
    await shoot('playground');

    // Cancel from the runs page: it asks first; declining keeps the run, accepting cancels it.
    const long = await submitThroughForm('web-long', 0.001, 5000);
    await waitForStatus(long, 'running');
    const cancelButton = page.locator(`[data-testid="run-row"][data-run-id="${long}"] [data-testid="run-cancel"]`);
    page.once('dialog', (dialog) => void dialog.dismiss());
    await cancelButton.click();
    await page.waitForTimeout(500);
    expect(await page.locator(`[data-testid="run-row"][data-run-id="${long}"]`).getAttribute('data-status')).toBe(
      'running',
    );
    page.once('dialog', (dialog) => void dialog.accept());
    await cancelButton.click();
    await waitForStatus(long, 'cancelled');
  });
});
