/**
 * What every language model here offers the trainer, the sampler and checkpoints,
 * whatever its architecture (GPT or the LSTM baseline).
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '@miniglm/data';
import type { ModelConfig } from './config.ts';
import { GPT } from './gpt.ts';
import { LSTM } from './lstm.ts';

export interface ForwardOptions {
  /** Dropout is active only while training. */
  training: boolean;
  /** Makes dropout reproducible: the trainer passes the step. */
  seed?: number;
}

/** Precision of the weights for decoding: float32 (exact), float16 or int8 (weight-only, faster). */
export type DecodeWeights = 'float32' | 'float16' | 'int8';

/** Whatever a model carries from one decoding step to the next (KV cache, LSTM state). */
export interface DecodeState {
  kind: string;
}

export interface LanguageModel {
  readonly config: ModelConfig;
  /** Trainable parameters by name, in a fixed order. */
  readonly params: Map<string, tf.Variable>;
  /** idx [B, T] int32 → logits [B·T, vocab]. */
  logits(idx: tf.Tensor2D, opts: ForwardOptions): tf.Tensor2D;
  /** Longest context the model can condition on (a GPT's block size; Infinity for an LSTM). */
  readonly contextLimit: number;
  /**
   * Incremental decoding: a fresh state for `batch` sequences. `weights`: the products'
   * weights in half precision or int8 where the backend has them (native GPT), else ignored.
   */
  startDecoding(batch: number, options?: { weights?: DecodeWeights }): DecodeState;
  /** Feeds idx [B, T] after what the state has seen; returns the last position's logits [B, vocab]. */
  decode(idx: tf.Tensor2D, state: DecodeState): tf.Tensor2D;
  /**
   * Forgets every token the state has seen, keeping what it prepared once (the native path's
   * packed weights): how a sampler starts over on a new window without paying that again.
   */
  restartDecoding(state: DecodeState): void;
  disposeDecoding(state: DecodeState): void;
  dispose(): void;
}

/** Input the model cannot take (a sequence longer than the block size, ...). */
export class ModelInputError extends UserError {}

export function createModel(config: ModelConfig, seed: number): LanguageModel {
  return config.kind === 'gpt' ? new GPT(config, seed) : new LSTM(config, seed);
}

/** Number of scalar parameters. */
export function parameterCount(model: LanguageModel): number {
  let n = 0;
  for (const v of model.params.values()) n += v.size;
  return n;
}

/**
 * Which parameters get weight decay: matrices and embeddings (≥ 2-D), never biases or
 * LayerNorm gains — as nanoGPT's configure_optimizers does.
 */
export function decays(param: tf.Variable): boolean {
  return param.rank >= 2;
}
