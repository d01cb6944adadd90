/**
 * Types shared by the data package and its users (the model package, the CLI, later the
 * service). One definition each; everything else imports from here.
 */

/** The tokenizers a dataset or checkpoint can name. `r50k_base` is the report's GPT-2 BPE. */
export const TOKENIZER_NAMES = ['r50k_base', 'cl100k_base', 'o200k_base', 'char'] as const;
export type TokenizerName = (typeof TOKENIZER_NAMES)[number];

/**
 * What it takes to rebuild a tokenizer exactly: its name and, when the corpus was remapped
 * to a compact vocabulary, the base ids in dense order (dense id i <-> base id `vocab[i]`).
 * Travels inside dataset manifests and checkpoints.
 */
export interface TokenizerSpec {
  name: TokenizerName;
  /** Base ids kept, in dense order; absent when the full base vocabulary is used. */
  vocab?: number[];
}

export interface Tokenizer {
  readonly spec: TokenizerSpec;
  /** Number of ids the model's embedding must hold (max id + 1). */
  readonly vocabSize: number;
  /** End of text: separates documents and pads SFT rows. Never produced by `encode`. */
  readonly eotId: number;
  /** The question/answer separator. Never produced by `encode`. */
  readonly sepId: number;
  /** Plain text to ids. Text that spells a special token ("[SEP]", "<|endoftext|>") stays text. */
  encode(text: string): number[];
  /** Ids to text; special tokens decode to nothing. decode(encode(s)) === s for every string. */
  decode(ids: ArrayLike<number>): string;
  /** One id as a readable string for previews: special tokens as "[SEP]" and "[EOT]". */
  tokenToString(id: number): string;
}

/** One batch for the model: row-major [batchSize, blockSize] arrays. */
export interface Batch {
  batchSize: number;
  blockSize: number;
  /** Input ids. */
  x: Int32Array;
  /** Target ids: x shifted left by one. */
  y: Int32Array;
  /** Loss weight per position (1 = counted). Absent for pretraining (every position counts). */
  mask?: Float32Array;
}

/** Serializable sampler state: enough to continue the exact same batch sequence. */
export interface SamplerState {
  kind: 'pretrain' | 'sft';
  /** State of the sampler's seeded PRNG. */
  rng: number[];
  /** Batches drawn so far (for reporting only). */
  drawn: number;
}

export interface BatchSampler {
  readonly blockSize: number;
  readonly batchSize: number;
  next(): Batch;
  getState(): SamplerState;
  setState(state: SamplerState): void;
}
