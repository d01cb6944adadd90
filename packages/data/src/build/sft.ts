/**
 * buildSftDataset: Q&A pairs -> one row of exactly blockSize tokens per pair
 * (question [SEP] answer [EOT], cut or padded with EOT) -> train/val shards, plus the
 * held-out pairs as text (val.qa.jsonl) for generation and ROUGE-L.
 *
 * A pair whose question leaves no room for [SEP] and one answer token is skipped and
 * counted (counts.skippedQuestionTooLong), not fatal: one overlong question should not sink
 * a large corpus. Rows whose answer was cut are counted per split (counts.truncated).
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { DataError } from '../errors.ts';
import type { QaPair } from '../readers/qa-types.ts';
import { readQaPairs } from '../readers/qa.ts';
import { describeQaSource, toQaSource, type QaSource } from '../readers/source.ts';
import { sftRow } from '../sampling/sft-mask.ts';
import type { Tokenizer } from '../types.ts';
import { HELD_OUT_QA_FILE, manifestCommon, writeManifest, type PerSplit, type SftManifest } from './manifest.ts';
import { checkCommonOptions, type CommonBuildOptions } from './options.ts';
import { clearOutputs, prepareOutDir, writeSplits } from './output.ts';
import { HeldOutWriter } from './held-out.ts';
import { take } from './take.ts';
import { dtypeFor } from './shards.ts';
import { SplitSpools } from './split-spools.ts';
import { planTokenizer, type TokenizerChoice } from './tokenizer-plan.ts';

export interface SftBuildOptions extends CommonBuildOptions, TokenizerChoice {
  /** A source ("poetry-qa:tang", "data/qa.jsonl") or a parsed one. Either this or `pairs`. */
  source?: QaSource | string;
  /** Pairs given directly. */
  pairs?: AsyncIterable<QaPair> | Iterable<QaPair>;
  /** How `pairs` should be described in the manifest. Default "pairs". */
  sourceDescription?: string;
  /** Tokens per row: the model's block size. */
  blockSize: number;
}

export interface SftBuildResult {
  dir: string;
  manifest: SftManifest;
  tokenizer: Tokenizer;
  /** Rows (train + val) whose answer was cut to fit the block. */
  truncated: number;
  /** Pairs dropped because the question alone filled the block. */
  skippedQuestionTooLong: number;
}

interface RowMeta {
  pair: QaPair;
  truncated: boolean;
  /** Byte offset of this pair's line in val.qa.jsonl, for val rows. */
  qaOffset: number;
}

export async function buildSftDataset(options: SftBuildOptions): Promise<SftBuildResult> {
  const { valFraction, seed, shardTokens } = checkCommonOptions(options);
  const T = options.blockSize;
  if (!(Number.isInteger(T) && T >= 2)) throw new DataError(`blockSize must be an integer >= 2, got ${T}`);
  const { pairs, description } = resolvePairs(options);
  const plan = planTokenizer(options);
  const tmpDir = await prepareOutDir(options.outDir);
  const spools = await SplitSpools.create<RowMeta>(tmpDir, seed, valFraction);
  const heldOut = await HeldOutWriter.create(path.join(options.outDir, HELD_OUT_QA_FILE));
  const truncated: PerSplit<number> = { train: 0, val: 0 };
  let skipped = 0;
  let ok = false;
  try {
    for await (const pair of pairs) {
      const split = spools.draw();
      const built = sftRow(plan.encode(pair.question), plan.encode(pair.answer), T, plan.sepId, plan.eotId);
      if (!built) {
        skipped++;
        continue;
      }
      const qaOffset = split === 'val' ? await heldOut.append(pair) : -1;
      await spools.add(split, built.row, { pair, truncated: built.truncated, qaOffset });
      if (built.truncated) truncated[split]++;
    }
    if (spools.total === 0) {
      throw new DataError(
        skipped > 0
          ? `all ${skipped} pairs of ${description} were skipped: each question alone fills blockSize ${T}`
          : `empty corpus: ${description} produced no Q&A pairs`,
      );
    }
    if (spools.total === 1)
      throw new DataError(`${description} produced 1 usable Q&A pair; a train/val split needs at least 2`);
    const moved = await spools.balance();
    if (moved) {
      // Keep val.qa.jsonl and the truncation counts in step with the row that moved.
      if (moved.to === 'val') moved.meta.qaOffset = await heldOut.append(moved.meta.pair);
      else await heldOut.truncate(moved.meta.qaOffset);
      if (moved.meta.truncated) {
        truncated[moved.from]--;
        truncated[moved.to]++;
      }
    }
    const heldOutSha = await heldOut.close();

    const { tokenizer, remap } = plan.finish();
    const dtype = dtypeFor(tokenizer.vocabSize);
    // Whole rows per shard, so a shard never ends mid-row.
    const rowsPerShard = Math.max(1, Math.floor(shardTokens / T));
    const written = await writeSplits(options.outDir, spools.spools, remap, dtype, rowsPerShard * T);
    const manifest: SftManifest = {
      ...manifestCommon(tokenizer, dtype, written, { description, seed, valFraction }),
      kind: 'sft',
      blockSize: T,
      counts: {
        pairs: { ...spools.items },
        tokens: written.tokens,
        truncated,
        skippedQuestionTooLong: skipped,
      },
      heldOut: { file: HELD_OUT_QA_FILE, pairs: spools.items.val, sha256: heldOutSha },
    };
    await writeManifest(options.outDir, manifest);
    ok = true;
    return {
      dir: options.outDir,
      manifest,
      tokenizer,
      truncated: truncated.train + truncated.val,
      skippedQuestionTooLong: skipped,
    };
  } finally {
    await heldOut.abort().catch(() => undefined);
    await spools.close();
    await rm(tmpDir, { recursive: true, force: true });
    if (!ok) await clearOutputs(options.outDir);
  }
}

function resolvePairs(options: SftBuildOptions): {
  pairs: AsyncIterable<QaPair> | Iterable<QaPair>;
  description: string;
} {
  if (options.pairs && options.source) throw new DataError('give either source or pairs, not both');
  if (options.pairs) {
    return {
      pairs: options.limit === undefined ? options.pairs : take(options.pairs, options.limit),
      description: options.sourceDescription ?? 'pairs',
    };
  }
  if (!options.source)
    throw new DataError('source is required: a Q&A file (.jsonl, .json, .csv, .parquet) or poetry-qa:<name>');
  let source = typeof options.source === 'string' ? toQaSource(options.source) : options.source;
  if (options.limit !== undefined) source = { ...source, limit: options.limit };
  return { pairs: readQaPairs(source), description: describeQaSource(source) };
}
