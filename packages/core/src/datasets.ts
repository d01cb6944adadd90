/**
 * Preparing a curriculum's datasets: one tokenizer for the whole curriculum (a model has one
 * embedding), then each stage's corpus tokenized and split into its own folder.
 *
 * A folder is named by a hash of everything that decides its content (source, limit, split,
 * seed, tokenizer with its vocabulary, SFT block size), so a dataset prepared once is reused
 * by every later run that asks for the same thing, and never overwritten by a different one.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  buildPretrainDataset,
  buildSftDataset,
  collectCompactVocab,
  datasetTexts,
  readManifest,
  toDocumentSource,
  toQaSource,
  type DatasetManifest,
  type TokenizerSpec,
} from '@miniglm/data';
import type { Curriculum, StageConfig } from './curriculum.ts';
import { CurriculumError } from './curriculum-file.ts';

export interface PreparedDataset {
  stage: string;
  dir: string;
  manifest: DatasetManifest;
  /** True when an earlier run had already prepared it. */
  reused: boolean;
}

export interface PrepareOptions {
  /** Folder that holds prepared datasets (shared by runs). */
  dataDir: string;
  /** Relative dataset paths are resolved against this (the curriculum file's folder). */
  baseDir: string;
  /** A tokenizer fixed in advance (from the checkpoint a run starts from). */
  tokenizer?: TokenizerSpec;
  onProgress?: (message: string) => void;
}

/** Stable hash of a JSON value (object keys sorted), as a short hex string. */
export function contentKey(value: unknown): string {
  const canonical = JSON.stringify(value, (_, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** The curriculum's tokenizer: fixed, full, or a compact vocabulary over all its corpora. */
export async function resolveTokenizer(curriculum: Curriculum, options: PrepareOptions): Promise<TokenizerSpec> {
  if (options.tokenizer) return options.tokenizer;
  const { name, compactVocab = true } = curriculum.tokenizer;
  if (!compactVocab) return { name };
  const stamps = await Promise.all(
    curriculum.stages.map(async (s) => [
      s.kind,
      s.dataset,
      sourceStamp(s, options.baseDir),
      await fileStat(s, options.baseDir),
    ]),
  );
  const key = contentKey({ name, datasets: stamps });
  const file = path.join(options.dataDir, `vocab-${key}.json`);
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as TokenizerSpec;
  } catch {
    // not collected yet
  }
  options.onProgress?.(`collecting the ${name} vocabulary of ${curriculum.stages.length} corpora`);
  const all = async function* () {
    for (const stage of curriculum.stages) yield* datasetTexts(stage.dataset, stage.kind, { baseDir: options.baseDir });
  };
  const spec = await collectCompactVocab(name, all());
  await fs.mkdir(options.dataDir, { recursive: true });
  await fs.writeFile(`${file}.tmp`, JSON.stringify(spec));
  await fs.rename(`${file}.tmp`, file);
  return spec;
}

/** What identifies a file source's content cheaply: its path, size and modification time. */
function sourceStamp(stage: StageConfig, baseDir: string): unknown {
  const source = stage.dataset.source;
  if (source.startsWith('poetry:') || source.startsWith('poetry-qa:')) return source;
  return path.resolve(baseDir, source);
}

/**
 * Checks that every prepared dataset suits the model before any stage trains, so a problem
 * in the last stage's data does not surface after the first stages have run for an hour.
 */
export function checkDatasetsFit(datasets: PreparedDataset[], blockSize: number): void {
  for (const d of datasets) {
    const m = d.manifest;
    if (m.kind === 'sft') {
      if (m.blockSize !== blockSize)
        throw new CurriculumError(
          `stage ${d.stage}: its SFT rows are ${m.blockSize} tokens but the model's block size is ${blockSize}`,
        );
      continue;
    }
    for (const split of ['train', 'val'] as const) {
      if (m.counts.tokens[split] < blockSize + 1)
        throw new CurriculumError(
          `stage ${d.stage}: the ${split} split of ${m.source} has ${m.counts.tokens[split]} tokens, fewer than one window of blockSize ${blockSize} + 1; use more data or a smaller blockSize`,
        );
    }
  }
}

/** Prepares (or reuses) the dataset of every stage. */
export async function prepareDatasets(
  curriculum: Curriculum,
  options: PrepareOptions,
): Promise<{ tokenizer: TokenizerSpec; datasets: PreparedDataset[] }> {
  const tokenizer = await resolveTokenizer(curriculum, options);
  const datasets: PreparedDataset[] = [];
  for (const stage of curriculum.stages) {
    datasets.push(await prepareStageDataset(stage, tokenizer, curriculum.seed, curriculum.model.blockSize, options));
  }
  return { tokenizer, datasets };
}

export async function prepareStageDataset(
  stage: StageConfig,
  tokenizer: TokenizerSpec,
  seed: number,
  blockSize: number,
  options: PrepareOptions,
): Promise<PreparedDataset> {
  const { dataset } = stage;
  const stat = await fileStat(stage, options.baseDir);
  const key = contentKey({
    kind: stage.kind,
    source: sourceStamp(stage, options.baseDir),
    stat,
    field: dataset.field,
    questionField: dataset.questionField,
    answerField: dataset.answerField,
    limit: dataset.limit,
    valFraction: dataset.valFraction,
    seed,
    tokenizer: contentKey(tokenizer),
    blockSize: stage.kind === 'sft' ? blockSize : undefined,
  });
  const dir = path.join(options.dataDir, `${stage.kind}-${key}`);
  try {
    return { stage: stage.name, dir, manifest: await readManifest(dir), reused: true };
  } catch {
    // not prepared yet (or left half-written by a crash: the builder starts it over)
  }
  options.onProgress?.(`preparing ${stage.kind} dataset for stage ${stage.name} from ${dataset.source}`);
  const common = { outDir: dir, tokenizer, valFraction: dataset.valFraction, seed, limit: dataset.limit };
  const built =
    stage.kind === 'pretrain'
      ? await buildPretrainDataset({ ...common, source: toDocumentSource(dataset, { baseDir: options.baseDir }) })
      : await buildSftDataset({ ...common, source: toQaSource(dataset, { baseDir: options.baseDir }), blockSize });
  return { stage: stage.name, dir, manifest: built.manifest, reused: false };
}

async function fileStat(stage: StageConfig, baseDir: string): Promise<unknown> {
  const source = stage.dataset.source;
  if (source.startsWith('poetry:') || source.startsWith('poetry-qa:')) return null;
  try {
    const s = await fs.stat(path.resolve(baseDir, source));
    return [s.size, s.mtimeMs];
  } catch {
    return null; // the builder reports the missing file with its name
  }
}
