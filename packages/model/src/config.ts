/**
 * Model configurations. The whole config is stored in every checkpoint, so a checkpoint
 * alone is enough to rebuild its model.
 */
import { UserError } from '@miniglm/data';

export interface GPTConfig {
  kind: 'gpt';
  /** Rows of the token embedding (the tokenizer's vocabSize). */
  vocabSize: number;
  /** Longest context the model attends over; position embeddings have this many rows. */
  blockSize: number;
  layers: number;
  heads: number;
  /** Embedding width; must divide by heads. */
  dim: number;
  /** Dropout on attention weights and residual branches during training (nanoGPT: 0.0-0.2). */
  dropout: number;
  /** Biases in linear layers and LayerNorms; the course setup trains without (faster, as good). */
  bias: boolean;
}

export interface LSTMConfig {
  kind: 'lstm';
  vocabSize: number;
  /** Training window; an LSTM has no hard context limit but batches are this long. */
  blockSize: number;
  /** Stacked LSTM layers (the report's baseline used two). */
  layers: number;
  /** Embedding and hidden width. */
  dim: number;
  dropout: number;
}

export type ModelConfig = GPTConfig | LSTMConfig;

export class ConfigError extends UserError {}

/** Fills defaults and checks what the model can actually take; throws ConfigError naming the field. */
export function resolveModelConfig(input: {
  kind?: 'gpt' | 'lstm';
  vocabSize: number;
  blockSize: number;
  layers: number;
  heads?: number;
  dim: number;
  dropout?: number;
  bias?: boolean;
}): ModelConfig {
  const positive = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new ConfigError(`model ${name} must be a positive integer, got ${v}`);
  };
  positive('vocabSize', input.vocabSize);
  positive('blockSize', input.blockSize);
  positive('layers', input.layers);
  positive('dim', input.dim);
  const dropout = input.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) throw new ConfigError(`model dropout must be in [0, 1), got ${dropout}`);
  if ((input.kind ?? 'gpt') === 'lstm') {
    return {
      kind: 'lstm',
      vocabSize: input.vocabSize,
      blockSize: input.blockSize,
      layers: input.layers,
      dim: input.dim,
      dropout,
    };
  }
  const heads = input.heads ?? 1;
  positive('heads', heads);
  if (input.dim % heads !== 0) throw new ConfigError(`model dim ${input.dim} is not divisible by heads ${heads}`);
  return {
    kind: 'gpt',
    vocabSize: input.vocabSize,
    blockSize: input.blockSize,
    layers: input.layers,
    heads,
    dim: input.dim,
    dropout,
    bias: input.bias ?? false,
  };
}

/** Parameters a config will have, without building it (for reports and limits). */
export function countParameters(c: ModelConfig): number {
  if (c.kind === 'lstm') {
    // embedding + per layer (4 gates x (input + hidden + bias)) + output projection
    return c.vocabSize * c.dim + c.layers * 4 * c.dim * (2 * c.dim + 1) + c.dim * c.vocabSize + c.vocabSize;
  }
  const b = c.bias ? 1 : 0;
  const perLayer = 2 * c.dim * (1 + b) + 4 * c.dim * c.dim + 4 * c.dim * b + 8 * c.dim * c.dim + 5 * c.dim * b;
  return c.vocabSize * c.dim + c.blockSize * c.dim + c.layers * perLayer + c.dim * (1 + b);
}
