/**
 * Photographs the dashboard of a running service for the README:
 *
 *   npx tsx scripts/screenshots.ts [--api http://127.0.0.1:8080] [--out docs/screenshots]
 *
 * It uses the two newest runs (after `npm run demo`: the demo curriculum and its variant),
 * generates five answers in the playground from the newest alias, and writes runs.png,
 * run.png, lineage.png, compare.png and playground.png. Needs Debian's chromium
 * (MINIGLM_CHROMIUM points elsewhere).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values } = parseArgs({
  options: {
    api: { type: 'string', default: 'http://127.0.0.1:8080' },
    out: { type: 'string', default: 'docs/screenshots' },
  },
});
const api = values.api!.replace(/\/$/, '');
const out = path.resolve(values.out!);
fs.mkdirSync(out, { recursive: true });

const get = async <T>(route: string): Promise<T> => (await fetch(`${api}${route}`)).json() as Promise<T>;
const { runs } = await get<{ runs: { id: string; name: string; status: string }[] }>('/v1/runs?limit=2');
if (runs.length < 2) throw new Error(`${api} has ${runs.length} runs; run "npm run demo" first`);
const variant = runs[0]!;
const base = runs[1]!;
const { aliases } = await get<{ aliases: { name: string }[] }>('/v1/aliases');

const browser = await chromium.launch({
  executablePath: process.env.MINIGLM_CHROMIUM || '/usr/bin/chromium',
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
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const shoot = async (hash: string, pageName: string, file: string, before?: () => Promise<void>) => {
  await page.goto(`${api}/${hash}`);
  await page.waitForSelector(`[data-testid="page"][data-page="${pageName}"][data-state="ready"]`);
  await before?.();
  await page.waitForTimeout(500); // charts and the graph finish their layout
  await page.screenshot({ path: path.join(out, file), fullPage: true });
  console.log(`wrote ${path.join(out, file)}`);
};
await shoot('#/runs', 'runs', 'runs.png');
await shoot(`#/runs/${base.id}`, 'run', 'run.png');
await shoot(`#/lineage/${base.id}`, 'lineage', 'lineage.png');
await shoot(`#/compare?runs=${base.id},${variant.id}`, 'compare', 'compare.png');
const alias = aliases.find((a) => a.name === 'HuangRong') ?? aliases[0];
await shoot(`#/playground${alias ? `?alias=${alias.name}` : ''}`, 'playground', 'playground.png', async () => {
  await page.getByTestId('playground-prompt').fill('《靜夜思》的作者是谁？');
  await page.getByTestId('playground-submit').click();
  await page.waitForSelector('[data-testid="playground-output"][data-count="5"]', { timeout: 120_000 });
});
await browser.close();
