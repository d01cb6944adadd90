/**
 * @miniglm/data: tokenizers, corpus readers, dataset builders and batch samplers.
 * Plain library code: no services, no TensorFlow.
 */
export * from './types.ts';
export { DataError, UserError, isUserError } from './errors.ts';
export { createRng, deriveSeed, type Rng } from './rng.ts';

// Tokenizers
export {
  createTokenizer,
  COMPACT_EOT,
  COMPACT_SEP,
  COMPACT_BYTE_OFFSET,
  COMPACT_RESERVED,
} from './tokenizers/tokenizer.ts';
export { VocabCounter, buildCompactVocab, collectCompactVocab } from './tokenizers/compact.ts';
export { isTokenizerName } from './tokenizers/vocab.ts';
export { CHAR_EOT, CHAR_SEP, CHAR_OFFSET } from './tokenizers/char.ts';

// Readers
export {
  FILE_FORMATS,
  DEFAULT_TEXT_FIELD,
  DEFAULT_QUESTION_FIELD,
  DEFAULT_ANSWER_FIELD,
  parseSourceSpec,
  toDocumentSource,
  toQaSource,
  describeDocumentSource,
  describeQaSource,
  type FileFormat,
  type DatasetSourceConfig,
  type DocumentSource,
  type FileDocumentSource,
  type PoetryDocumentSource,
  type QaSource,
  type FileQaSource,
  type PoetryQaSource,
  type SourceSpec,
} from './readers/source.ts';
export { readDocuments } from './readers/documents.ts';
export { MAX_TXT_DOCUMENT_CHARS, readRecords, type SourceRecord } from './readers/files.ts';
export { readQaPairs } from './readers/qa.ts';
export type { QaPair } from './readers/qa-types.ts';
export { datasetTexts } from './readers/texts.ts';
export {
  POETRY_COLLECTIONS,
  POETRY_COLLECTION_NAMES,
  POETRY_QA_COLLECTION_NAMES,
  type PoetryCollection,
} from './readers/poetry-collections.ts';
export { readPoems, poemText, poetryDataDir, type Poem } from './readers/poetry.ts';
export { poemQaPairs, readPoetryQa } from './readers/poetry-qa.ts';

// Dataset builders and loader
export { buildPretrainDataset, type PretrainBuildOptions, type PretrainBuildResult } from './build/pretrain.ts';
export { buildSftDataset, type SftBuildOptions, type SftBuildResult } from './build/sft.ts';
export type { TokenizerChoice } from './build/tokenizer-plan.ts';
export { DEFAULT_SEED, DEFAULT_VAL_FRACTION, type CommonBuildOptions } from './build/options.ts';
export { openDataset, loadHeldOutQa, type OpenedDataset, type OpenDatasetOptions } from './build/open.ts';
export {
  DATASET_FORMAT,
  DATASET_VERSION,
  MANIFEST_FILE,
  HELD_OUT_QA_FILE,
  readManifest,
  type DatasetManifest,
  type PretrainManifest,
  type SftManifest,
  type PerSplit,
  type SplitName,
} from './build/manifest.ts';
export { DEFAULT_SHARD_TOKENS, dtypeFor, type ShardInfo, type TokenArray, type TokenDtype } from './build/shards.ts';

// SFT rows, mask and samplers
export { sftRow, sftExample, writeSftTargets, type SftRow, type SftExample } from './sampling/sft-mask.ts';
export {
  createPretrainSampler,
  createSftSampler,
  createBatchSampler,
  evalBatches,
  type SamplerOptions,
  type EvalBatchOptions,
} from './sampling/samplers.ts';
