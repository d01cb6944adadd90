/**
 * The dashboard once API keys exist, in Chromium against the real Postgres and Redis: the
 * sign-in box on the first 401, a wrong key refused in the box, the key then sent with every
 * request (the runs list, a checkpoint download through fetch), a corrupt download shown as
 * an error, and a revoked key bringing the box back.
 */
import fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type StartedApi } from '@miniglm/api';
import { ArtifactStore } from '@miniglm/core/db';
import { openTestDb, type TestDb } from '@miniglm/core/db/testing';
import {
  createApiKey,
  createRedis,
  deleteKeysWithPrefix,
  revokeApiKey,
  DEFAULT_REDIS_URL,
} from '@miniglm/core/service';

const CHROMIUM = process.env.MINIGLM_CHROMIUM || '/usr/bin/chromium';
const redisUrl = process.env.MINIGLM_TEST_REDIS_URL || DEFAULT_REDIS_URL;
const prefix = `miniglm-test-web-signin-${process.pid}`;

let t: TestDb;
let api: StartedApi;
let browser: Browser;
let page: Page;
const redis = createRedis(redisUrl, { failFast: true });

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(
      `no Chromium at ${CHROMIUM}: install Debian's (apt-get install chromium; .ci/run does) or set MINIGLM_CHROMIUM`,
    );
  t = await openTestDb('postgres', 'web_signin');
  api = await startApi({ db: t.db, redis, prefix, port: 0, logger: false });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
  });
  page = await browser.newPage({ acceptDownloads: true });
});

afterAll(async () => {
  await browser?.close();
  await api?.close();
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
  await t?.cleanup();
});

const byTestId = (id: string) => page.getByTestId(id);

describe('signing in to the dashboard', () => {
  it('asks for a key, sends it with every request and download, and asks again when it is revoked', async () => {
    const admin = await createApiKey(t.db.prisma, { name: 'web', role: 'admin' });
    const submitted = await fetch(`${api.url}/v1/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'signed-in',
        tokenizer: { name: 'char' },
        model: { layers: 1, heads: 2, dim: 16, blockSize: 16 },
        stages: [{ name: 'tang', kind: 'pretrain', dataset: { source: 'poetry:tang' }, iterations: 10, batchSize: 4 }],
      }),
    });
    expect(submitted.status).toBe(201);
    const runId = ((await submitted.json()) as { id: string }).id;
    const stage = await t.db.prisma.stage.findFirstOrThrow({ where: { runId } });
    const store = new ArtifactStore(t.db);
    const checkpoint = async (step: number) => {
      const { sha256 } = await store.put(Buffer.from(`weights at ${step}`), 'checkpoint');
      return t.db.prisma.checkpoint.create({ data: { stageId: stage.id, step, artifactSha256: sha256 } });
    };
    const intact = await checkpoint(1);
    const corrupt = await checkpoint(2);
    await t.db.sql.query(
      `UPDATE "ArtifactChunk" SET bytes = set_byte(bytes, 0, (get_byte(bytes, 0) + 1) % 256) WHERE sha256 = $1`,
      [corrupt.artifactSha256],
    );

    await page.goto(`${api.url}/#/runs`);
    await byTestId('signin').waitFor({ state: 'visible', timeout: 15_000 });
    expect(await byTestId('signin-message').textContent()).toBe('This API needs a key.');
    expect(await byTestId('signout').isHidden()).toBe(true);

    await byTestId('signin-key').fill(`mgk_${admin.id}_${'A'.repeat(43)}`);
    await byTestId('signin-submit').click();
    await expect
      .poll(async () => (await byTestId('signin-error').textContent()) ?? '', { timeout: 10_000 })
      .toMatch(/^401 Unauthorized: the API key is not valid/);

    await byTestId('signin-key').fill(admin.key);
    await byTestId('signin-submit').click();
    await page.waitForSelector('[data-testid="page"][data-page="runs"][data-state="ready"]', { timeout: 15_000 });
    expect(await byTestId('signin').isHidden()).toBe(true);
    expect(await page.locator(`[data-testid="run-row"][data-run-id="${runId}"]`).count()).toBe(1);
    expect(await byTestId('signout').isVisible()).toBe(true);

    // Downloads go through fetch with the key; a plain link would be a 401.
    await page.goto(`${api.url}/#/runs/${runId}`);
    await page.waitForSelector('[data-testid="page"][data-page="run"][data-state="ready"]', { timeout: 15_000 });
    const row = (id: string) => page.locator(`[data-testid="checkpoint-row"][data-checkpoint-id="${id}"]`);
    await row(intact.id).waitFor({ timeout: 15_000 });
    const [saved] = await Promise.all([
      page.waitForEvent('download'),
      row(intact.id).getByTestId('checkpoint-download').click(),
    ]);
    expect(saved.suggestedFilename()).toBe('signed-in-tang-1.ckpt');
    expect(fs.readFileSync((await saved.path())!, 'utf8')).toBe('weights at 1');
    await expect
      .poll(async () => (await byTestId('checkpoint-download-result').textContent()) ?? '')
      .toBe('saved signed-in-tang-1.ckpt (12 bytes)');

    await row(corrupt.id).getByTestId('checkpoint-download').click();
    await expect
      .poll(async () => (await byTestId('checkpoint-download-result').textContent()) ?? '', { timeout: 10_000 })
      .toMatch(/^download failed: 500 Internal Server Error: artifact [0-9a-f]{64} is corrupt: chunk 0/);

    // The events card's next page (over 500 events) opens with the key too.
    await t.db.prisma.stageEvent.createMany({
      data: Array.from({ length: 501 }, (_, i) => ({ stageId: stage.id, type: 'checkpointed' as const, step: i })),
    });
    await page.reload();
    await page.waitForSelector('[data-testid="page"][data-page="run"][data-state="ready"]', { timeout: 15_000 });
    const more = byTestId('events-more').getByRole('button');
    await more.waitFor({ timeout: 15_000 });
    const [tab] = await Promise.all([page.waitForEvent('popup'), more.click()]);
    await tab.waitForURL(/^blob:/, { timeout: 10_000 });
    const nextPage = JSON.parse((await tab.textContent('body')) ?? '') as { events: unknown[]; nextCursor: unknown };
    expect(nextPage.events.length).toBe(2); // the queued event and 501 more: 500 on the first page
    await tab.close();

    // A revoked key: the next request is a 401 and the box comes back, saying so.
    await revokeApiKey(t.db.prisma, admin.id);
    await page.goto(`${api.url}/#/runs`);
    await page.reload();
    await byTestId('signin').waitFor({ state: 'visible', timeout: 15_000 });
    expect(await byTestId('signin-message').textContent()).toMatch(/^The API refused this tab's key: .*was revoked/);
  });
});
