/**
 * The output folder of a build: clearing what an earlier build left, a private temp folder
 * for the spools, and writing the final shards from the spools.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { DataError } from '../errors.ts';
import type { PerSplit } from './manifest.ts';
import { ShardWriter, type ShardInfo, type TokenDtype } from './shards.ts';
import type { TokenSpool } from './spool.ts';

const OUR_FILES = /^((train|val)-\d{3,}\.bin|manifest\.json(\.tmp)?|val\.qa\.jsonl(\.tmp)?)$/;

/** Removes the files a build writes (and only those), so a rebuild starts clean. */
export async function clearOutputs(outDir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(outDir);
  } catch {
    return;
  }
  await Promise.all(names.filter((n) => OUR_FILES.test(n)).map((n) => rm(path.join(outDir, n), { force: true })));
}

/** Creates outDir, clears old outputs, and returns a fresh temp folder inside it. */
export async function prepareOutDir(outDir: string): Promise<string> {
  try {
    await mkdir(outDir, { recursive: true });
  } catch (error) {
    throw new DataError(`cannot create output folder ${outDir}: ${(error as Error).message}`);
  }
  await clearOutputs(outDir);
  // Spool folders left by a build that was killed.
  for (const name of await readdir(outDir)) {
    if (name.startsWith('.build-')) await rm(path.join(outDir, name), { recursive: true, force: true });
  }
  // Inside outDir, so spools sit on the same disk as the shards they become.
  return mkdtemp(path.join(outDir, '.build-'));
}

export interface WrittenSplits {
  shards: PerSplit<ShardInfo[]>;
  tokens: PerSplit<number>;
  sha256: string;
}

/** Streams each spool through the optional base->dense map into shards. */
export async function writeSplits(
  outDir: string,
  spools: PerSplit<TokenSpool>,
  remap: Int32Array | undefined,
  dtype: TokenDtype,
  shardTokens: number,
): Promise<WrittenSplits> {
  const contentHash = createHash('sha256');
  const shards: PerSplit<ShardInfo[]> = { train: [], val: [] };
  const tokens: PerSplit<number> = { train: 0, val: 0 };
  for (const split of ['train', 'val'] as const) {
    const writer = new ShardWriter(outDir, split, dtype, shardTokens, contentHash);
    for await (const chunk of spools[split].chunks()) {
      if (remap) {
        for (let i = 0; i < chunk.length; i++) chunk[i] = remap[chunk[i]!]!;
      }
      await writer.write(chunk);
      tokens[split] += chunk.length;
    }
    shards[split] = await writer.finish();
  }
  return { shards, tokens, sha256: contentHash.digest('hex') };
}
