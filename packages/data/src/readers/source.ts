/**
 * Where text comes from. A curriculum names a dataset with a string ("data/news.jsonl",
 * "poetry:tang", "poetry-qa:tang") plus a few options; this module turns that into a typed
 * source and says clearly what is wrong with a bad one.
 */
import path from 'node:path';
import { DataError } from '../errors.ts';
import { POETRY_COLLECTION_NAMES, POETRY_QA_COLLECTION_NAMES } from './poetry-collections.ts';

/** File formats by extension. */
export const FILE_FORMATS = {
  '.txt': 'txt',
  '.text': 'txt',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.json': 'json',
  '.csv': 'csv',
  '.parquet': 'parquet',
} as const;
export type FileFormat = (typeof FILE_FORMATS)[keyof typeof FILE_FORMATS];

/** A dataset as a curriculum stage names it (the same fields as core's DatasetConfig). */
export interface DatasetSourceConfig {
  source: string;
  /** Text field of .jsonl/.json/.csv/.parquet records (default "text"). */
  field?: string;
  /** Question field of Q&A records (default "question"). */
  questionField?: string;
  /** Answer field of Q&A records (default "answer"). */
  answerField?: string;
  /** At most this many documents or Q&A pairs. */
  limit?: number;
  valFraction?: number;
}

export interface FileDocumentSource {
  kind: 'file';
  path: string;
  format: FileFormat;
  /** Record field holding the text (default "text"; ignored for .txt). */
  field?: string;
  limit?: number;
}
export interface PoetryDocumentSource {
  kind: 'poetry';
  collection: string;
  limit?: number;
}
export type DocumentSource = FileDocumentSource | PoetryDocumentSource;

export interface FileQaSource {
  kind: 'file';
  path: string;
  format: Exclude<FileFormat, 'txt'>;
  questionField?: string;
  answerField?: string;
  limit?: number;
}
export interface PoetryQaSource {
  kind: 'poetry-qa';
  collection: string;
  limit?: number;
}
export type QaSource = FileQaSource | PoetryQaSource;

export const DEFAULT_TEXT_FIELD = 'text';
export const DEFAULT_QUESTION_FIELD = 'question';
export const DEFAULT_ANSWER_FIELD = 'answer';

/** The parsed form of a source string, before it is known whether documents or Q&A are wanted. */
export type SourceSpec =
  | { kind: 'file'; path: string; format: FileFormat }
  | { kind: 'poetry'; collection: string }
  | { kind: 'poetry-qa'; collection: string };

const validFormats = () => Object.keys(FILE_FORMATS).join(' ');

/**
 * Parses "poetry:<name>", "poetry-qa:<name>" or a file path (resolved against baseDir, the
 * folder of the curriculum file, when relative).
 */
export function parseSourceSpec(spec: string, options: { baseDir?: string } = {}): SourceSpec {
  const text = spec.trim();
  if (!text) throw new DataError('dataset source is empty; give a file path or poetry:<name>');
  const prefixed = /^(poetry|poetry-qa):(.*)$/.exec(text);
  if (prefixed) {
    const kind = prefixed[1] as 'poetry' | 'poetry-qa';
    const collection = prefixed[2]!.trim();
    const valid = kind === 'poetry' ? POETRY_COLLECTION_NAMES : POETRY_QA_COLLECTION_NAMES;
    if (!valid.includes(collection)) {
      throw new DataError(`unknown collection "${text}"; valid: ${valid.map((n) => `${kind}:${n}`).join(', ')}`);
    }
    return { kind, collection };
  }
  const ext = path.extname(text).toLowerCase();
  const format = (FILE_FORMATS as Record<string, FileFormat>)[ext];
  if (!format) {
    throw new DataError(
      `unsupported dataset file "${text}": extension must be one of ${validFormats()} ` +
        `(or use poetry:<name> / poetry-qa:<name>)`,
    );
  }
  return { kind: 'file', path: path.resolve(options.baseDir ?? process.cwd(), text), format };
}

/** A pretraining stage's documents from its dataset config. */
export function toDocumentSource(
  config: DatasetSourceConfig | string,
  options: { baseDir?: string } = {},
): DocumentSource {
  const cfg = typeof config === 'string' ? { source: config } : config;
  const spec = parseSourceSpec(cfg.source, options);
  checkLimit(cfg.limit, cfg.source);
  if (spec.kind === 'poetry-qa') {
    throw new DataError(
      `${cfg.source} is a Q&A source, for SFT stages; a pretrain stage reads documents (use poetry:${spec.collection})`,
    );
  }
  if (spec.kind === 'poetry') return { ...spec, ...(cfg.limit ? { limit: cfg.limit } : {}) };
  return {
    ...spec,
    ...(spec.format !== 'txt' ? { field: cfg.field ?? DEFAULT_TEXT_FIELD } : {}),
    ...(cfg.limit ? { limit: cfg.limit } : {}),
  };
}

/** An SFT stage's Q&A pairs from its dataset config. */
export function toQaSource(config: DatasetSourceConfig | string, options: { baseDir?: string } = {}): QaSource {
  const cfg = typeof config === 'string' ? { source: config } : config;
  const spec = parseSourceSpec(cfg.source, options);
  checkLimit(cfg.limit, cfg.source);
  if (spec.kind === 'poetry') {
    if (POETRY_QA_COLLECTION_NAMES.includes(spec.collection)) {
      throw new DataError(
        `${cfg.source} holds documents; an SFT stage reads Q&A pairs (use poetry-qa:${spec.collection})`,
      );
    }
    throw new DataError(
      `${cfg.source} holds documents; an SFT stage reads Q&A pairs: valid: ${POETRY_QA_COLLECTION_NAMES.map((n) => `poetry-qa:${n}`).join(', ')}`,
    );
  }
  if (spec.kind === 'poetry-qa') return { ...spec, ...(cfg.limit ? { limit: cfg.limit } : {}) };
  if (spec.format === 'txt') {
    throw new DataError(
      `${spec.path}: a .txt file has no question/answer fields; use .jsonl, .json, .csv or .parquet for SFT`,
    );
  }
  return {
    kind: 'file',
    path: spec.path,
    format: spec.format,
    questionField: cfg.questionField ?? DEFAULT_QUESTION_FIELD,
    answerField: cfg.answerField ?? DEFAULT_ANSWER_FIELD,
    ...(cfg.limit ? { limit: cfg.limit } : {}),
  };
}

function checkLimit(limit: number | undefined, source: string): void {
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) {
    throw new DataError(`${source}: limit must be a positive integer, got ${limit}`);
  }
}

/** A one-line description of a document source for manifests and logs. */
export function describeDocumentSource(source: DocumentSource): string {
  const limit = source.limit ? ` (limit ${source.limit})` : '';
  if (source.kind === 'poetry') return `poetry:${source.collection}${limit}`;
  if (source.format === 'txt') return `${source.path}${limit}`;
  return `${source.path}#${source.field ?? DEFAULT_TEXT_FIELD}${limit}`;
}

/** A one-line description of a Q&A source for manifests and logs. */
export function describeQaSource(source: QaSource): string {
  const limit = source.limit ? ` (limit ${source.limit})` : '';
  if (source.kind === 'poetry-qa') return `poetry-qa:${source.collection}${limit}`;
  const q = source.questionField ?? DEFAULT_QUESTION_FIELD;
  const a = source.answerField ?? DEFAULT_ANSWER_FIELD;
  return `${source.path}#${q},${a}${limit}`;
}
