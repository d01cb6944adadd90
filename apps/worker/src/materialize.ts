/**
 * Bringing what a job needs from the database onto this machine: prepared datasets,
 * checkpoints and uploaded files. Each is kept in the worker's folder, so a second job on
 * the same worker reads it from disk.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { readManifest } from '@miniglm/data';
import { ArtifactIntegrityError } from '@miniglm/core/db';
import { uploadedFileName, type UploadedFile } from '@miniglm/core/service';
import type { WorkerContext } from './context.ts';
import { unpackToDirectory } from './pack.ts';

async function artifactFile(ctx: WorkerContext, sha256: string, what: string): Promise<string> {
  const file = await ctx.store.file(sha256).catch((error: unknown) => {
    // Say which checkpoint or dataset: the artifact's address alone means nothing to a user.
    throw error instanceof ArtifactIntegrityError
      ? new ArtifactIntegrityError(`${what}: ${error.message}`, { cause: error })
      : error;
  });
  if (!file) throw new Error(`${what}: artifact ${sha256} is missing from the database`);
  return file;
}

/** The folder of a prepared dataset (unpacked from its artifact the first time). */
export async function datasetDir(ctx: WorkerContext, dataset: { id: string; artifactSha256: string }): Promise<string> {
  const dir = path.join(ctx.workDir, 'datasets', dataset.id);
  try {
    await readManifest(dir);
    return dir;
  } catch {
    // not here yet
  }
  await fs.mkdir(path.dirname(dir), { recursive: true });
  await unpackToDirectory(await artifactFile(ctx, dataset.artifactSha256, `dataset ${dataset.id}`), dir);
  return dir;
}

/**
 * Takes a dataset this worker has just built as the folder `datasetDir` would unpack, so the
 * stages that train here next read it without unpacking what was just packed.
 */
export async function adoptDatasetDir(ctx: WorkerContext, datasetId: string, builtDir: string): Promise<void> {
  const dir = path.join(ctx.workDir, 'datasets', datasetId);
  await fs.mkdir(path.dirname(dir), { recursive: true });
  try {
    await fs.rename(builtDir, dir);
  } catch {
    await fs.rm(builtDir, { recursive: true, force: true }); // already there (same bytes)
  }
}

/** A local file holding a checkpoint's bytes. */
export async function checkpointFile(ctx: WorkerContext, checkpointId: string): Promise<string> {
  const row = await ctx.db.prisma.checkpoint.findUnique({
    where: { id: checkpointId },
    select: { artifactSha256: true },
  });
  if (!row) throw new Error(`checkpoint ${checkpointId} is gone`);
  return artifactFile(ctx, row.artifactSha256, `checkpoint ${checkpointId}`);
}

/** Copies of the uploaded files a run reads, named so that their extension gives the format. */
export async function uploadedFiles(ctx: WorkerContext, files: Iterable<UploadedFile>): Promise<string> {
  const dir = path.join(ctx.workDir, 'files');
  await fs.mkdir(dir, { recursive: true });
  for (const file of files) {
    const target = path.join(dir, uploadedFileName(file));
    if (
      await fs.stat(target).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      continue;
    const source = await artifactFile(ctx, file.artifactSha256, `uploaded file ${file.name}`);
    await fs.copyFile(source, `${target}.tmp`);
    await fs.rename(`${target}.tmp`, target);
  }
  return dir;
}
