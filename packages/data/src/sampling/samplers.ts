/**
 * Batch samplers for training and fixed batches for validation.
 *
 * Pretraining: random windows of blockSize + 1 tokens anywhere in the split's token stream
 * (windows may cross document boundaries; the eot between documents teaches where one ends),
 * x = w[0..T), y = w[1..T+1), no mask.
 * SFT: whole random rows (never a window across two pairs), y and mask per sft-mask.ts.
 *
 * Sampler state is the PRNG's four words plus a counter: after setState, next() returns the
 * very batches the original sampler would have returned.
 */
import type { OpenedDataset } from '../build/open.ts';
import type { SplitName } from '../build/manifest.ts';
import { DataError } from '../errors.ts';
import { createRng, deriveSeed } from '../rng.ts';
import type { Batch, BatchSampler, SamplerState } from '../types.ts';
import { writeSftTargets } from './sft-mask.ts';

export interface SamplerOptions {
  batchSize: number;
  blockSize: number;
  seed: number;
}

function checkShape(batchSize: number, blockSize: number): void {
  if (!(Number.isInteger(batchSize) && batchSize >= 1))
    throw new DataError(`batchSize must be a positive integer, got ${batchSize}`);
  if (!(Number.isInteger(blockSize) && blockSize >= 1))
    throw new DataError(`blockSize must be a positive integer, got ${blockSize}`);
}

function checkPretrainLength(tokens: ArrayLike<number>, blockSize: number, what: string): void {
  if (tokens.length < blockSize + 1) {
    throw new DataError(
      `${what} has ${tokens.length} tokens; a window of blockSize ${blockSize} needs at least ${blockSize + 1}`,
    );
  }
}

function fillWindow(
  tokens: ArrayLike<number>,
  start: number,
  T: number,
  x: Int32Array,
  y: Int32Array,
  at: number,
): void {
  for (let t = 0; t < T; t++) {
    x[at + t] = tokens[start + t]!;
    y[at + t] = tokens[start + t + 1]!;
  }
}

class PretrainSampler implements BatchSampler {
  private readonly rng;
  private drawn = 0;

  constructor(
    private readonly tokens: ArrayLike<number>,
    readonly batchSize: number,
    readonly blockSize: number,
    seed: number,
  ) {
    checkShape(batchSize, blockSize);
    checkPretrainLength(tokens, blockSize, 'the token split');
    this.rng = createRng(deriveSeed(seed, 'pretrain-sampler'));
  }

  next(): Batch {
    const { batchSize: B, blockSize: T } = this;
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    const starts = this.tokens.length - T; // valid starts: 0 .. len - T - 1
    for (let b = 0; b < B; b++) fillWindow(this.tokens, this.rng.int(starts), T, x, y, b * T);
    this.drawn++;
    return { batchSize: B, blockSize: T, x, y };
  }

  getState(): SamplerState {
    return { kind: 'pretrain', rng: this.rng.getState(), drawn: this.drawn };
  }

  setState(state: SamplerState): void {
    if (state.kind !== 'pretrain') throw new DataError(`sampler state is for ${state.kind}, this sampler is pretrain`);
    this.rng.setState(state.rng);
    this.drawn = state.drawn;
  }
}

class SftSampler implements BatchSampler {
  private readonly rng;
  private drawn = 0;
  private readonly rows: number;

  constructor(
    private readonly tokens: ArrayLike<number>,
    readonly batchSize: number,
    readonly blockSize: number,
    private readonly sepId: number,
    private readonly eotId: number,
    seed: number,
  ) {
    checkShape(batchSize, blockSize);
    this.rows = checkRows(tokens, blockSize, 'the SFT split');
    this.rng = createRng(deriveSeed(seed, 'sft-sampler'));
  }

  next(): Batch {
    const rows = Array.from({ length: this.batchSize }, () => this.rng.int(this.rows));
    this.drawn++;
    return sftBatch(this.tokens, rows, this.blockSize, this.sepId, this.eotId);
  }

  getState(): SamplerState {
    return { kind: 'sft', rng: this.rng.getState(), drawn: this.drawn };
  }

  setState(state: SamplerState): void {
    if (state.kind !== 'sft') throw new DataError(`sampler state is for ${state.kind}, this sampler is sft`);
    this.rng.setState(state.rng);
    this.drawn = state.drawn;
  }
}

function checkRows(tokens: ArrayLike<number>, blockSize: number, what: string): number {
  if (tokens.length === 0 || tokens.length % blockSize !== 0) {
    throw new DataError(`${what} has ${tokens.length} tokens, not a whole number of ${blockSize}-token rows`);
  }
  return tokens.length / blockSize;
}

function sftBatch(tokens: ArrayLike<number>, rows: number[], T: number, sepId: number, eotId: number): Batch {
  const B = rows.length;
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  const mask = new Float32Array(B * T);
  rows.forEach((row, b) => {
    const start = row * T;
    for (let t = 0; t < T; t++) x[b * T + t] = tokens[start + t]!;
    writeSftTargets(tokens, start, T, sepId, eotId, y, mask, b * T);
  });
  return { batchSize: B, blockSize: T, x, y, mask };
}

/** Random windows from a token stream (x, y; no mask). */
export function createPretrainSampler(tokens: ArrayLike<number>, options: SamplerOptions): BatchSampler {
  return new PretrainSampler(tokens, options.batchSize, options.blockSize, options.seed);
}

/** Random whole rows of an SFT token array (rows of blockSize tokens), with the loss mask. */
export function createSftSampler(
  tokens: ArrayLike<number>,
  options: SamplerOptions & { sepId: number; eotId: number },
): BatchSampler {
  return new SftSampler(tokens, options.batchSize, options.blockSize, options.sepId, options.eotId, options.seed);
}

function checkSftBlock(dataset: OpenedDataset, blockSize: number): void {
  if (dataset.manifest.kind === 'sft' && dataset.manifest.blockSize !== blockSize) {
    throw new DataError(
      `${dataset.dir}: SFT rows are ${dataset.manifest.blockSize} tokens but the model's block size is ${blockSize}; ` +
        `rebuild the SFT dataset with blockSize ${blockSize}`,
    );
  }
}

/** The sampler that fits a dataset's kind. */
export function createBatchSampler(dataset: OpenedDataset, split: SplitName, options: SamplerOptions): BatchSampler {
  const tokens = dataset.tokens[split];
  if (dataset.manifest.kind === 'pretrain') {
    checkPretrainLength(tokens, options.blockSize, `${dataset.dir} ${split} split`);
    return createPretrainSampler(tokens, options);
  }
  checkSftBlock(dataset, options.blockSize);
  return createSftSampler(tokens, { ...options, sepId: dataset.tokenizer.sepId, eotId: dataset.tokenizer.eotId });
}

export interface EvalBatchOptions {
  /** How many batches. */
  batches: number;
  batchSize: number;
  blockSize: number;
}

/**
 * Fixed validation batches: windows (pretrain) or rows (SFT) spread evenly over the whole
 * split, the same every call, so val loss is comparable between evaluations and runs.
 * When the split has fewer rows than asked for, rows repeat (evenly).
 */
export function evalBatches(dataset: OpenedDataset, split: SplitName, options: EvalBatchOptions): Batch[] {
  const { batches, batchSize: B, blockSize: T } = options;
  checkShape(B, T);
  if (!(Number.isInteger(batches) && batches >= 1))
    throw new DataError(`batches must be a positive integer, got ${batches}`);
  const tokens = dataset.tokens[split];
  const total = batches * B;
  const out: Batch[] = [];
  if (dataset.manifest.kind === 'pretrain') {
    checkPretrainLength(tokens, T, `${dataset.dir} ${split} split`);
    const starts = tokens.length - T;
    for (let k = 0; k < batches; k++) {
      const x = new Int32Array(B * T);
      const y = new Int32Array(B * T);
      for (let b = 0; b < B; b++) fillWindow(tokens, Math.floor(((k * B + b) * starts) / total), T, x, y, b * T);
      out.push({ batchSize: B, blockSize: T, x, y });
    }
    return out;
  }
  checkSftBlock(dataset, T);
  const rows = checkRows(tokens, T, `${dataset.dir} ${split} split`);
  for (let k = 0; k < batches; k++) {
    const picks = Array.from({ length: B }, (_, b) => Math.floor(((k * B + b) * rows) / total));
    out.push(sftBatch(tokens, picks, T, dataset.tokenizer.sepId, dataset.tokenizer.eotId));
  }
  return out;
}
