/**
 * `miniglm demo`: the whole service on one machine with nothing to set up. It starts Redis
 * (a private redis-server, unless REDIS_URL is set), the database (embedded PGlite, unless
 * DATABASE_URL is set), the API and one worker; submits the demo curriculum; when its last
 * pretraining stage is done, names that checkpoint "GuoJing" and branches a variant from it
 * with another SFT learning rate; names the Q&A model "HuangRong"; and ends with the compare
 * table and the dashboard's address. The services keep running until Ctrl-C (or exit at
 * once with --exit).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCurriculumFile, type Curriculum } from '@miniglm/core';
import { createRedis, isFinal, quotasFromEnv, resolveRedis } from '@miniglm/core/service';
import { startApi } from '@miniglm/api';
import { startWorker } from '@miniglm/worker';
import { api, type CompareView, type RunView } from '../api-client.ts';
import { numberFlag, parseCommandArgs } from '../args.ts';
import { onShutdownSignal, openServiceDb, queuePrefix } from '../services.ts';
import { formatCompare } from './compare.ts';
import { ProgressPrinter } from './watch.ts';

const DEFAULT_CONFIG = fileURLToPath(new URL('../../../../examples/service-demo.yaml', import.meta.url));

const HELP = `usage: miniglm demo [--config FILE] [--port N] [--exit]

  --config    the curriculum to run (default examples/service-demo.yaml)
  --port      the API's port (default 8080; 0 picks a free one)
  --work-dir  the worker's local cache (default .miniglm/worker)
  --exit      stop the services when the runs are done, instead of serving until Ctrl-C

Redis: REDIS_URL, else a private redis-server from PATH on a free port.
Database: DATABASE_URL, else embedded PGlite in .miniglm/pglite.`;

export async function demo(argv: string[]): Promise<void> {
  const f = parseCommandArgs(
    'demo',
    argv,
    {
      config: { type: 'string' },
      port: { type: 'string' },
      'work-dir': { type: 'string' },
      exit: { type: 'boolean', default: false },
    },
    HELP,
  );
  const port = numberFlag('port', f.port, 8080, { integer: true, min: 0, max: 65535 });
  const curriculum = await loadCurriculumFile(f.config ?? DEFAULT_CONFIG);
  const prefix = queuePrefix();
  // MINIGLM_QUOTA_*, read before anything opens: the API checks them at submit, and the worker
  // keeps the running runs one.
  const quotas = quotasFromEnv();

  // Redis keeps its queues next to the embedded database, so a demo stopped with Ctrl-C
  // continues its handed-back stages when it starts again.
  const redis = await resolveRedis(process.env, { dir: '.miniglm/redis', persist: true });
  console.log(redis.local ? `redis: a private redis-server on port ${redis.local.port}` : `redis: ${redis.url}`);
  const db = await openServiceDb();
  console.log(
    db.target.kind === 'pglite' ? `database: embedded PGlite in ${db.target.dataDir}` : 'database: DATABASE_URL',
  );
  const worker = await startWorker({
    db,
    redisUrl: redis.url,
    prefix,
    workDir: f['work-dir'],
    settings: { defaultMaxRunningRuns: quotas.runningRuns },
    log: () => {},
  });
  const apiRedis = createRedis(redis.url, { failFast: true });
  const server = await startApi({ db, redis: apiRedis, prefix, port, host: '127.0.0.1', logger: false, quotas });
  console.log(`api: ${server.url} (OpenAPI at ${server.url}/docs)`);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await worker.close();
      await server.close();
      await apiRedis.quit().catch(() => {});
      await db.close();
      await redis.local?.stop();
    })());
  onShutdownSignal(async () => {
    console.log(
      redis.local || db.target.kind === 'pglite'
        ? 'stopping: running stages are checkpointed and stay queued; "miniglm demo" again continues them'
        : 'stopping: running stages are checkpointed and stay queued for the next worker',
    );
    await stop();
  });

  try {
    const ok = await runDemo(server.url, curriculum);
    console.log(`\ndashboard: ${server.url}/   (API docs: ${server.url}/docs)`);
    if (!ok) process.exitCode = 1;
  } catch (error) {
    // Ctrl-C stops the services under the polling loop: that is not an error.
    if (stopping) return void (await stopping);
    await stop();
    throw error;
  }
  if (f.exit) await stop();
  else console.log('the services keep running; press Ctrl-C to stop');
}

/** Submits the curriculum and its variant, follows both, prints the comparison. */
async function runDemo(base: string, curriculum: Curriculum): Promise<boolean> {
  const main = await api<{ id: string }>(base, 'POST', '/v1/runs', curriculum);
  console.log(`submitted ${curriculum.name}: ${main.id}`);
  const branchAt = curriculum.stages.length >= 2 ? curriculum.stages.length - 2 : -1;
  let variant: { id: string } | undefined;
  const printer = new ProgressPrinter();
  const show = (run: RunView) => printer.show(run);

  for (;;) {
    const run = await api<RunView>(base, 'GET', `/v1/runs/${main.id}`);
    show(run);
    const branchStage = run.stages[branchAt];
    if (!variant && branchStage?.status === 'succeeded') {
      const checkpoint = branchStage.checkpoints?.at(-1)?.id;
      if (checkpoint) {
        await api(base, 'PUT', '/v1/aliases/GuoJing', { checkpoint });
        console.log(`alias GuoJing -> the ${branchStage.name} checkpoint (a completion model)`);
        const last = curriculum.stages.at(-1)!;
        const body: Curriculum = {
          ...curriculum,
          name: `${curriculum.name}-lr-x3`,
          tags: [...(curriculum.tags ?? []), 'variant'],
          initFrom: 'GuoJing',
          stages: [{ ...last, lr: last.lr * 3, minLr: undefined }],
        };
        variant = await api<{ id: string }>(base, 'POST', '/v1/runs', body);
        console.log(
          `submitted the variant ${body.name} (the last stage with 3x the learning rate, from GuoJing): ${variant.id}`,
        );
      }
    }
    const other = variant ? await api<RunView>(base, 'GET', `/v1/runs/${variant.id}`) : undefined;
    if (other) show(other);
    const mainDone = isFinal(run.status);
    if (mainDone && (branchAt < 0 || !variant || isFinal(other!.status))) {
      if (run.status === 'succeeded') {
        const final = run.stages.at(-1)?.checkpoints?.at(-1)?.id;
        if (final) {
          await api(base, 'PUT', '/v1/aliases/HuangRong', { checkpoint: final });
          console.log(
            `alias HuangRong -> the ${run.stages.at(-1)!.name} checkpoint (${curriculum.stages.at(-1)!.kind === 'sft' ? 'the Q&A model' : 'the final model'})`,
          );
        }
      }
      const ids = [main.id, ...(variant ? [variant.id] : [])];
      if (ids.length >= 2) {
        const view = await api<CompareView>(base, 'GET', `/v1/compare?runs=${ids.join(',')}`);
        console.log(`\n${formatCompare(view)}`);
      }
      await printSamples(base, main.id);
      return run.status === 'succeeded' && (!other || other.status === 'succeeded');
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function printSamples(base: string, runId: string): Promise<void> {
  const run = await api<{
    evaluation?: {
      samples?: { prompt: string; outputs: string[] }[];
      rouge?: { stage?: string; pairs?: number; mean?: { f?: number }; exact?: number } | null;
    } | null;
  }>(base, 'GET', `/v1/runs/${runId}`);
  const rouge = run.evaluation?.rouge;
  if (rouge?.mean?.f !== undefined)
    console.log(
      `\n${rouge.stage ?? 'Q&A'}: ROUGE-L F ${rouge.mean.f.toFixed(3)} on ${rouge.pairs} held-out questions` +
        (rouge.exact === undefined ? '' : `, ${rouge.exact} answered exactly`),
    );
  for (const s of run.evaluation?.samples ?? []) {
    console.log(`\n${s.prompt || '(empty prompt)'}`);
    for (const o of s.outputs) console.log(`  → ${o.replace(/\n/g, ' ')}`);
  }
}

export const DEMO_CONFIG = path.relative(process.cwd(), DEFAULT_CONFIG);
