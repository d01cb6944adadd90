/**
 * The prepare job: fix the run's tokenizer and give every stage a tokenized dataset.
 * A dataset is identified by what went into it (source content, fields, limit, split,
 * seed, SFT block size) and by the tokenizer; one that exists is reused, and a Redis lock
 * makes sure two workers asked for the same new dataset build it once.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Job } from 'bullmq';
import { createTokenizer, isUserError, type TokenizerSpec } from '@miniglm/data';
import { countParameters, resolveModelConfig } from '@miniglm/model';
import {
  checkDatasetsFit,
  contentKey,
  CurriculumError,
  curriculumOf,
  prepareStageDataset,
  resolveTokenizer,
  type Curriculum,
  type PreparedDataset,
  type StageConfig,
} from '@miniglm/core';
import {
  datasetLockKey,
  localDataset,
  uploadedFileId,
  type PrepareJob,
  type UploadedFile,
} from '@miniglm/core/service';
import { isForeignKeyViolation } from '@miniglm/core/db';
import type { WorkerContext } from './context.ts';
import { adoptDatasetDir, datasetDir, uploadedFiles } from './materialize.ts';
import { packDirectory } from './pack.ts';
import { failRun, runIsOver } from './run-state.ts';
import { startOrHoldBack } from './running-quota.ts';
import { UnrecoverableError } from 'bullmq';

/** `token`: the worker's lock on the job, which putting it back to wait needs (running-quota.ts). */
export async function processPrepare(
  ctx: WorkerContext,
  job: Job<PrepareJob>,
  token: string | undefined,
): Promise<{ datasets: string[]; reused: number }> {
  const { runId } = job.data;
  const over = await runIsOver(ctx, runId);
  if (over) throw new UnrecoverableError(`run ${runId} is ${over.status}`);
  const run = await ctx.db.prisma.run.findUnique({
    where: { id: runId },
    include: { stages: { orderBy: { index: 'asc' } } },
  });
  if (!run) throw new UnrecoverableError(`run ${runId} does not exist`);
  // The run starts here, unless its key runs as many runs as it may: then it waits, queued.
  await startOrHoldBack(ctx, job, token);
  const curriculum = curriculumOf(run);
  try {
    return await prepareRun(ctx, run.id, curriculum, run.stages);
  } catch (error) {
    // The user's data or setup is wrong: retrying will not help. Say what and stop the run.
    if (isUserError(error)) throw await failRun(ctx, runId, `preparing the data: ${error.message}`);
    throw error;
  }
}

async function prepareRun(
  ctx: WorkerContext,
  runId: string,
  curriculum: Curriculum,
  stages: { id: string; index: number; parentCheckpointId: string | null }[],
): Promise<{ datasets: string[]; reused: number }> {
  // Uploaded files become local files, and the curriculum is rewritten to read them.
  const files = await uploadedFileRows(ctx, curriculum);
  const filesDir = await uploadedFiles(ctx, files.values());
  const local: Curriculum = {
    ...curriculum,
    stages: curriculum.stages.map((s) => ({ ...s, dataset: localDataset(s.dataset, files, filesDir) })),
  };
  const dataDir = path.join(ctx.workDir, 'build');
  const tokenizer = await runTokenizer(ctx, local, stages[0]?.parentCheckpointId ?? null, dataDir);
  const seed = curriculum.seed;
  const tokenizerHash = contentKey(tokenizer);

  const ids: string[] = [];
  const prepared: PreparedDataset[] = [];
  let reused = 0;
  for (const [index, stage] of local.stages.entries()) {
    const contentHash = datasetContentHash(curriculum.stages[index]!, files, seed, curriculum.model.blockSize);
    const found = await findOrBuildFor(ctx, stages[index]!.id, { contentHash, tokenizerHash }, async () => {
      ctx.log(
        `run ${runId}: preparing ${stage.kind} data for stage ${stage.name} from ${curriculum.stages[index]!.dataset.source}`,
      );
      const built = await prepareStageDataset(stage, tokenizer, seed, curriculum.model.blockSize, {
        dataDir,
        baseDir: filesDir,
      });
      const row = await ctx.store.putReferenced(
        () => packDirectory(built.dir),
        'dataset',
        ({ sha256 }) =>
          ctx.db.prisma.dataset.create({
            data: {
              contentHash,
              tokenizerHash,
              kind: stage.kind,
              source: built.manifest.source,
              manifest: built.manifest as object,
              artifactSha256: sha256,
            },
          }),
      );
      await adoptDatasetDir(ctx, row.id, built.dir);
      return row;
    });
    if (found.reused) reused++;
    ids.push(found.row.id);
    prepared.push({
      stage: stage.name,
      dir: await datasetDir(ctx, found.row),
      manifest: found.row.manifest as never,
      reused: found.reused,
    });
  }
  checkDatasetsFit(prepared, curriculum.model.blockSize);

  const vocabSize = createTokenizer(tokenizer).vocabSize;
  const params = countParameters(resolveModelConfig({ ...curriculum.model, vocabSize }));
  await ctx.db.prisma.run.update({ where: { id: runId }, data: { tokenizer: tokenizer as object, params } });
  return { datasets: ids, reused };
}

async function uploadedFileRows(ctx: WorkerContext, curriculum: Curriculum): Promise<Map<string, UploadedFile>> {
  const ids = curriculum.stages
    .map((s) => uploadedFileId(s.dataset.source))
    .filter((id): id is string => id !== undefined);
  const rows = ids.length ? await ctx.db.prisma.datasetFile.findMany({ where: { id: { in: ids } } }) : [];
  return new Map(
    rows.map((r) => [
      r.id,
      { id: r.id, name: r.name, format: r.format, fields: r.fields, artifactSha256: r.artifactSha256 },
    ]),
  );
}

/** A run that starts from a checkpoint keeps that checkpoint's tokenizer; otherwise it is collected from the corpora. */
async function runTokenizer(
  ctx: WorkerContext,
  local: Curriculum,
  initFrom: string | null,
  dataDir: string,
): Promise<TokenizerSpec> {
  if (initFrom) {
    const parent = await ctx.db.prisma.checkpoint.findUnique({
      where: { id: initFrom },
      include: { stage: { include: { run: true } } },
    });
    const spec = parent?.stage.run.tokenizer as TokenizerSpec | null | undefined;
    if (!spec) throw new CurriculumError(`/initFrom: the tokenizer of checkpoint ${initFrom} is unknown`);
    return spec;
  }
  return resolveTokenizer(local, { dataDir, baseDir: dataDir });
}

/**
 * What a dataset is made of, independent of where the bytes sit: uploaded files count by
 * their content hash, so the same file uploaded twice is tokenized once.
 */
function datasetContentHash(
  stage: StageConfig,
  files: Map<string, UploadedFile>,
  seed: number,
  blockSize: number,
): string {
  const id = uploadedFileId(stage.dataset.source);
  const { source: _source, ...options } = stage.dataset;
  return contentKey({
    kind: stage.kind,
    source:
      id !== undefined
        ? `sha256:${files.get(id)!.artifactSha256}${path.extname(files.get(id)!.name)}`
        : stage.dataset.source,
    ...options,
    seed,
    blockSize: stage.kind === 'sft' ? blockSize : undefined,
  });
}

type DatasetRow = Awaited<ReturnType<WorkerContext['db']['prisma']['dataset']['create']>>;

/**
 * findOrBuild, then the stage names the dataset. A dataset no stage names is garbage once it
 * is old (core's garbage.ts): one found just as it was collected is gone when the stage names
 * it (its foreign key fails), and is then found or built again, once.
 */
async function findOrBuildFor(
  ctx: WorkerContext,
  stageId: string,
  key: { contentHash: string; tokenizerHash: string },
  build: () => Promise<DatasetRow>,
): Promise<{ row: DatasetRow; reused: boolean }> {
  const name = async () => {
    const found = await findOrBuild(ctx, key, build);
    await ctx.db.prisma.stage.update({ where: { id: stageId }, data: { datasetId: found.row.id } });
    return found;
  };
  return name().catch((error: unknown) => {
    if (!isForeignKeyViolation(error)) throw error;
    return name();
  });
}

/** The dataset row for a key, built by `build` under a lock if no worker has built it yet. */
async function findOrBuild(
  ctx: WorkerContext,
  key: { contentHash: string; tokenizerHash: string },
  build: () => Promise<DatasetRow>,
): Promise<{ row: DatasetRow; reused: boolean }> {
  const find = () => ctx.db.prisma.dataset.findUnique({ where: { contentHash_tokenizerHash: key } });
  const lockKey = datasetLockKey(ctx.prefix, key.contentHash, key.tokenizerHash);
  const lockMs = 30_000;
  const token = `${ctx.workerId}:${randomUUID()}`;
  for (;;) {
    const existing = await find();
    if (existing) return { row: existing, reused: true };
    if ((await ctx.redis.set(lockKey, token, 'PX', lockMs, 'NX')) === 'OK') break;
    await new Promise((resolve) => setTimeout(resolve, 250)); // another worker is building it
  }
  // Keep the lock while building (a big corpus takes longer than the lock's lifetime); extend
  // and release it only while it is still ours.
  const renew = setInterval(
    () => void ctx.redis.eval(EXTEND_IF_OWNER, 1, lockKey, token, lockMs).catch(() => {}),
    lockMs / 3,
  );
  try {
    const existing = await find(); // built between our last look and taking the lock
    if (existing) return { row: existing, reused: true };
    try {
      return { row: await build(), reused: false };
    } catch (error) {
      // Our lock lapsed and another worker stored the same dataset first: use theirs.
      const theirs = (error as { code?: string }).code === 'P2002' ? await find() : null;
      if (theirs) return { row: theirs, reused: true };
      throw error;
    }
  } finally {
    clearInterval(renew);
    await ctx.redis.eval(DELETE_IF_OWNER, 1, lockKey, token).catch(() => {});
  }
}

const EXTEND_IF_OWNER = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const DELETE_IF_OWNER = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
