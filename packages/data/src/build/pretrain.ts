/**
 * buildPretrainDataset: documents -> tokens with an eot after every document -> train/val
 * shards split by document, plus manifest.json. One streaming pass over the source; the
 * tokens wait in uint32 spools until the vocabulary (and so the dtype) is known.
 */
import { rm } from 'node:fs/promises';
import { DataError } from '../errors.ts';
import { readDocuments } from '../readers/documents.ts';
import { describeDocumentSource, toDocumentSource, type DocumentSource } from '../readers/source.ts';
import type { Tokenizer } from '../types.ts';
import { manifestCommon, writeManifest, type PretrainManifest } from './manifest.ts';
import { checkCommonOptions, type CommonBuildOptions } from './options.ts';
import { clearOutputs, prepareOutDir, writeSplits } from './output.ts';
import { dtypeFor } from './shards.ts';
import { take } from './take.ts';
import { SplitSpools } from './split-spools.ts';
import { planTokenizer, type TokenizerChoice } from './tokenizer-plan.ts';

export interface PretrainBuildOptions extends CommonBuildOptions, TokenizerChoice {
  /** A source ("poetry:tang", "data/news.jsonl") or a parsed one. Either this or `documents`. */
  source?: DocumentSource | string;
  /** Documents given directly (tests, callers that assemble text themselves). */
  documents?: AsyncIterable<string> | Iterable<string>;
  /** How `documents` should be described in the manifest. Default "documents". */
  sourceDescription?: string;
  /** Called every 1000 documents while reading. */
  onProgress?: (progress: { documents: number; tokens: number }) => void;
}

export interface PretrainBuildResult {
  dir: string;
  manifest: PretrainManifest;
  tokenizer: Tokenizer;
}

export async function buildPretrainDataset(options: PretrainBuildOptions): Promise<PretrainBuildResult> {
  const { valFraction, seed, shardTokens } = checkCommonOptions(options);
  const { documents, description } = resolveDocuments(options);
  const plan = planTokenizer(options);
  const tmpDir = await prepareOutDir(options.outDir);
  const spools = await SplitSpools.create<null>(tmpDir, seed, valFraction);
  let ok = false;
  try {
    let tokens = 0;
    for await (const text of documents) {
      if (text.trim() === '') continue; // as readDocuments does: nothing to learn from
      const split = spools.draw();
      const ids = plan.encode(text);
      ids.push(plan.eotId);
      await spools.add(split, ids, null);
      tokens += ids.length;
      if (options.onProgress && spools.total % 1000 === 0) options.onProgress({ documents: spools.total, tokens });
    }
    if (spools.total === 0) throw new DataError(`empty corpus: ${description} produced no documents`);
    if (spools.total === 1) {
      throw new DataError(
        `${description} produced 1 document; a train/val split needs at least 2 (for .txt, separate documents with a blank line)`,
      );
    }
    await spools.balance();

    const { tokenizer, remap } = plan.finish();
    const dtype = dtypeFor(tokenizer.vocabSize);
    const written = await writeSplits(options.outDir, spools.spools, remap, dtype, shardTokens);
    const manifest: PretrainManifest = {
      ...manifestCommon(tokenizer, dtype, written, { description, seed, valFraction }),
      kind: 'pretrain',
      counts: { documents: { ...spools.items }, tokens: written.tokens },
    };
    await writeManifest(options.outDir, manifest);
    ok = true;
    return { dir: options.outDir, manifest, tokenizer };
  } finally {
    await spools.close();
    await rm(tmpDir, { recursive: true, force: true });
    if (!ok) await clearOutputs(options.outDir);
  }
}

function resolveDocuments(options: PretrainBuildOptions): {
  documents: AsyncIterable<string> | Iterable<string>;
  description: string;
} {
  if (options.documents && options.source) throw new DataError('give either source or documents, not both');
  if (options.documents) {
    const limit = options.limit;
    const docs = options.documents;
    const limited = limit === undefined ? docs : take(docs, limit);
    return { documents: limited, description: options.sourceDescription ?? 'documents' };
  }
  if (!options.source) throw new DataError('source is required: a file path or poetry:<name>');
  let source = typeof options.source === 'string' ? toDocumentSource(options.source) : options.source;
  if (options.limit !== undefined) source = { ...source, limit: options.limit };
  return { documents: readDocuments(source), description: describeDocumentSource(source) };
}
