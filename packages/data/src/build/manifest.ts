/**
 * manifest.json: what a built dataset holds and how to read it back. Written last, so a
 * folder with a manifest is a finished dataset. It carries no timestamp on purpose: the same
 * source, tokenizer and seed give a byte-identical manifest and shards.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DataError, describeError } from '../errors.ts';
import type { Tokenizer, TokenizerSpec } from '../types.ts';
import type { ShardInfo, TokenDtype } from './shards.ts';

export const DATASET_FORMAT = 'miniglm-dataset';
export const DATASET_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const HELD_OUT_QA_FILE = 'val.qa.jsonl';

export type SplitName = 'train' | 'val';
export interface PerSplit<T> {
  train: T;
  val: T;
}

export interface ManifestCommon {
  format: typeof DATASET_FORMAT;
  version: typeof DATASET_VERSION;
  /** Rebuilds the tokenizer exactly, compact vocabulary included. */
  tokenizer: TokenizerSpec;
  vocabSize: number;
  eotId: number;
  sepId: number;
  dtype: TokenDtype;
  byteOrder: 'little-endian';
  /** Where the text came from ("poetry:tang (limit 500)", "/data/x.jsonl#text"). */
  source: string;
  seed: number;
  valFraction: number;
  shards: PerSplit<ShardInfo[]>;
  /** sha256 over all shard bytes: train shards then val shards, in the order listed. */
  sha256: string;
}

export interface PretrainManifest extends ManifestCommon {
  kind: 'pretrain';
  counts: {
    documents: PerSplit<number>;
    /** Tokens, one eot after every document included. */
    tokens: PerSplit<number>;
  };
}

export interface SftManifest extends ManifestCommon {
  kind: 'sft';
  /** Every row is exactly this many tokens. */
  blockSize: number;
  counts: {
    /** Rows, one per Q&A pair kept. */
    pairs: PerSplit<number>;
    tokens: PerSplit<number>;
    /** Rows whose answer did not fit and was cut (their mask runs to the end of the row). */
    truncated: PerSplit<number>;
    /** Pairs dropped because the question left no room for [SEP] and one answer token. */
    skippedQuestionTooLong: number;
  };
  /** The held-out pairs as text, for generation and ROUGE-L against the reference answers. */
  heldOut: { file: string; pairs: number; sha256: string };
}

export type DatasetManifest = PretrainManifest | SftManifest;

/** The fields every manifest shares, from what a builder has at hand once its shards are written. */
export function manifestCommon(
  tokenizer: Tokenizer,
  dtype: TokenDtype,
  written: { shards: PerSplit<ShardInfo[]>; sha256: string },
  source: { description: string; seed: number; valFraction: number },
): ManifestCommon {
  return {
    format: DATASET_FORMAT,
    version: DATASET_VERSION,
    tokenizer: tokenizer.spec,
    vocabSize: tokenizer.vocabSize,
    eotId: tokenizer.eotId,
    sepId: tokenizer.sepId,
    dtype,
    byteOrder: 'little-endian',
    source: source.description,
    seed: source.seed,
    valFraction: source.valFraction,
    shards: written.shards,
    sha256: written.sha256,
  };
}

export async function writeManifest(dir: string, manifest: DatasetManifest): Promise<void> {
  const file = path.join(dir, MANIFEST_FILE);
  // Write-then-rename: a reader never sees half a manifest.
  await writeFile(`${file}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

export async function readManifest(dir: string): Promise<DatasetManifest> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new DataError(`no dataset at ${dir}: ${MANIFEST_FILE} not found (build it first)`);
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new DataError(`${file}: not valid JSON (${describeError(error)})`);
  }
  checkManifest(manifest, file);
  return manifest;
}

/** Enough checking that a wrong or hand-edited file fails with the field named. */
function checkManifest(m: unknown, file: string): asserts m is DatasetManifest {
  const fail = (field: string, why: string) => new DataError(`${file}: field "${field}" ${why}`);
  if (!m || typeof m !== 'object') throw new DataError(`${file}: expected a JSON object`);
  const o = m as Record<string, unknown>;
  if (o.format !== DATASET_FORMAT) throw fail('format', `must be "${DATASET_FORMAT}", is ${JSON.stringify(o.format)}`);
  if (o.version !== DATASET_VERSION) {
    throw fail(
      'version',
      `is ${JSON.stringify(o.version)}; this build reads version ${DATASET_VERSION} (rebuild the dataset)`,
    );
  }
  if (o.kind !== 'pretrain' && o.kind !== 'sft')
    throw fail('kind', `must be "pretrain" or "sft", is ${JSON.stringify(o.kind)}`);
  if (o.dtype !== 'uint16' && o.dtype !== 'uint32')
    throw fail('dtype', `must be "uint16" or "uint32", is ${JSON.stringify(o.dtype)}`);
  for (const key of ['vocabSize', 'eotId', 'sepId', 'seed'] as const) {
    if (!Number.isInteger(o[key])) throw fail(key, 'must be an integer');
  }
  const tokenizer = o.tokenizer as Record<string, unknown> | undefined;
  if (!tokenizer || typeof tokenizer.name !== 'string') throw fail('tokenizer', 'must be an object with a name');
  if (o.kind === 'sft' && !(Number.isInteger(o.blockSize) && (o.blockSize as number) >= 2)) {
    throw fail('blockSize', 'must be an integer >= 2');
  }
  const shards = o.shards as Record<string, unknown> | undefined;
  for (const split of ['train', 'val'] as const) {
    const list = shards?.[split];
    if (!Array.isArray(list)) throw fail(`shards.${split}`, 'must be an array');
    list.forEach((s: Record<string, unknown>, i) => {
      if (typeof s?.file !== 'string' || s.file.includes('/') || s.file.includes('\\') || s.file.startsWith('.')) {
        throw fail(`shards.${split}[${i}].file`, 'must be a plain file name');
      }
      if (!Number.isInteger(s.tokens) || (s.tokens as number) < 0)
        throw fail(`shards.${split}[${i}].tokens`, 'must be a non-negative integer');
      if (typeof s.sha256 !== 'string') throw fail(`shards.${split}[${i}].sha256`, 'must be a hex string');
    });
  }
  if (typeof o.sha256 !== 'string') throw fail('sha256', 'must be a hex string');
}
