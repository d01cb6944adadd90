/**
 * openDataset: reads a built dataset back. Checks the manifest, each shard's size and (by
 * default) every sha256, then loads the shards into one typed array per split. Loading
 * whole splits into memory is deliberate for now: the datasets this service trains on fit.
 */
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { DataError } from '../errors.ts';
import { readQaPairs } from '../readers/qa.ts';
import type { QaPair } from '../readers/qa-types.ts';
import { createTokenizer } from '../tokenizers/tokenizer.ts';
import type { Tokenizer } from '../types.ts';
import { readManifest, type DatasetManifest, type PerSplit, type SplitName } from './manifest.ts';
import { assertLittleEndian, bytesPerToken, type TokenArray } from './shards.ts';

export interface OpenedDataset {
  dir: string;
  manifest: DatasetManifest;
  tokenizer: Tokenizer;
  kind: DatasetManifest['kind'];
  /** Token ids per split; for SFT, rows of manifest.blockSize tokens back to back. */
  tokens: PerSplit<TokenArray>;
  train: TokenArray;
  val: TokenArray;
}

export interface OpenDatasetOptions {
  /** Check every shard's sha256 and the content hash (default true; costs one read pass). */
  verify?: boolean;
}

export async function openDataset(dir: string, options: OpenDatasetOptions = {}): Promise<OpenedDataset> {
  assertLittleEndian();
  const manifest = await readManifest(dir);
  const tokenizer = createTokenizer(manifest.tokenizer);
  if (
    tokenizer.vocabSize !== manifest.vocabSize ||
    tokenizer.eotId !== manifest.eotId ||
    tokenizer.sepId !== manifest.sepId
  ) {
    throw new DataError(
      `${path.join(dir, 'manifest.json')}: tokenizer ${manifest.tokenizer.name} gives vocabSize ${tokenizer.vocabSize}, ` +
        `eot ${tokenizer.eotId}, sep ${tokenizer.sepId}; the manifest says ${manifest.vocabSize}, ${manifest.eotId}, ${manifest.sepId} ` +
        `(was it built with another gpt-tokenizer version?)`,
    );
  }
  const verify = options.verify ?? true;
  const contentHash = createHash('sha256');
  const tokens = {
    train: await loadSplit(dir, manifest, 'train', verify, contentHash),
    val: await loadSplit(dir, manifest, 'val', verify, contentHash),
  };
  if (verify && contentHash.digest('hex') !== manifest.sha256) {
    throw new DataError(`${dir}: shard contents do not match the manifest's sha256; rebuild the dataset`);
  }
  if (manifest.kind === 'sft') {
    for (const split of ['train', 'val'] as const) {
      if (tokens[split].length % manifest.blockSize !== 0) {
        throw new DataError(
          `${dir}: ${split} holds ${tokens[split].length} tokens, not a whole number of ${manifest.blockSize}-token rows`,
        );
      }
    }
  }
  return { dir, manifest, tokenizer, kind: manifest.kind, tokens, train: tokens.train, val: tokens.val };
}

async function loadSplit(
  dir: string,
  manifest: DatasetManifest,
  split: SplitName,
  verify: boolean,
  contentHash: ReturnType<typeof createHash>,
): Promise<TokenArray> {
  const shards = manifest.shards[split];
  const width = bytesPerToken(manifest.dtype);
  const total = shards.reduce((n, s) => n + s.tokens, 0);
  const out = manifest.dtype === 'uint16' ? new Uint16Array(total) : new Uint32Array(total);
  const bytes = new Uint8Array(out.buffer);
  let at = 0;
  for (const shard of shards) {
    const file = path.join(dir, shard.file);
    const size = await stat(file).then(
      (s) => s.size,
      () => {
        throw new DataError(`${dir}: shard ${shard.file} listed in manifest.json is missing`);
      },
    );
    const expected = shard.tokens * width;
    if (size !== expected) {
      throw new DataError(
        `${file}: ${size} bytes, manifest says ${shard.tokens} ${manifest.dtype} tokens (${expected} bytes)`,
      );
    }
    const handle = await open(file, 'r');
    try {
      for (let done = 0; done < expected;) {
        const { bytesRead } = await handle.read(bytes, at + done, expected - done, done);
        if (bytesRead === 0) throw new DataError(`${file}: ended after ${done} of ${expected} bytes`);
        done += bytesRead;
      }
    } finally {
      await handle.close();
    }
    if (verify) {
      const view = bytes.subarray(at, at + expected);
      const sha = createHash('sha256').update(view).digest('hex');
      if (sha !== shard.sha256)
        throw new DataError(
          `${file}: sha256 ${sha} does not match the manifest (${shard.sha256}); rebuild the dataset`,
        );
      contentHash.update(view);
    }
    at += expected;
  }
  const vocab = manifest.vocabSize;
  if (verify) {
    for (let i = 0; i < out.length; i++) {
      if (out[i]! >= vocab)
        throw new DataError(`${dir}: ${split} token ${i} is id ${out[i]}, outside the vocabulary (size ${vocab})`);
    }
  }
  return out;
}

/** The held-out Q&A pairs of an SFT dataset, as text (for generation and ROUGE-L). */
export async function loadHeldOutQa(dir: string): Promise<QaPair[]> {
  const manifest = await readManifest(dir);
  if (manifest.kind !== 'sft') throw new DataError(`${dir}: a ${manifest.kind} dataset has no held-out Q&A pairs`);
  const pairs: QaPair[] = [];
  for await (const pair of readQaPairs({
    kind: 'file',
    path: path.join(dir, manifest.heldOut.file),
    format: 'jsonl',
  })) {
    pairs.push(pair);
  }
  return pairs;
}
