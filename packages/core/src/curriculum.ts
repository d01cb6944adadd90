/**
 * The curriculum: what a user submits to train a model in stages. One TypeBox definition
 * gives the runtime validation (CLI today, the REST API later), the TypeScript types and the
 * OpenAPI schema. Every limit is here so that a bad file fails before anything is written.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { formatSchemaError } from './schema-errors.ts';
import { TOKENIZER_NAMES } from '@miniglm/data';

const strict = { additionalProperties: false } as const;

/** Upper bounds that keep one request from asking for an absurd amount of work or memory. */
export const LIMITS = {
  blockSize: 4096,
  layers: 96,
  heads: 64,
  dim: 8192,
  iterations: 10_000_000,
  batchSize: 4096,
  gradAccum: 1024,
} as const;

export const TokenizerConfig = Type.Object(
  {
    name: Type.Union(
      TOKENIZER_NAMES.map((n) => Type.Literal(n)),
      { description: 'r50k_base is the GPT-2 BPE of the report; char is one token per character' },
    ),
    compactVocab: Type.Optional(
      Type.Boolean({
        default: true,
        description: 'Remap the ids the corpora use to a dense range, so a small model carries a small embedding',
      }),
    ),
  },
  strict,
);

export const ModelConfig = Type.Object(
  {
    kind: Type.Union([Type.Literal('gpt'), Type.Literal('lstm')], { default: 'gpt' }),
    layers: Type.Integer({ minimum: 1, maximum: LIMITS.layers }),
    heads: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.heads, description: 'GPT only' })),
    dim: Type.Integer({ minimum: 1, maximum: LIMITS.dim }),
    blockSize: Type.Integer({ minimum: 2, maximum: LIMITS.blockSize }),
    dropout: Type.Optional(Type.Number({ minimum: 0, maximum: 0.9, default: 0 })),
    bias: Type.Optional(Type.Boolean({ default: false })),
  },
  strict,
);

/** Where a stage's text comes from. */
export const DatasetConfig = Type.Object(
  {
    source: Type.String({
      minLength: 1,
      description:
        'A file (.txt .jsonl .json .csv .parquet), a bundled collection "poetry:<name>" (tang, song, songci, lunyu, shijing, ...), ' +
        'or for SFT "poetry-qa:<name>" (questions generated from the collection\'s metadata)',
    }),
    field: Type.Optional(
      Type.String({ minLength: 1, description: 'Text field of .jsonl/.json/.csv/.parquet records' }),
    ),
    questionField: Type.Optional(Type.String({ minLength: 1, default: 'question' })),
    answerField: Type.Optional(Type.String({ minLength: 1, default: 'answer' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, description: 'Use at most this many documents or Q&A pairs' })),
    valFraction: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 0.5, default: 0.05 })),
  },
  strict,
);

export const TrainConfig = Type.Object(
  {
    iterations: Type.Integer({ minimum: 1, maximum: LIMITS.iterations }),
    batchSize: Type.Integer({ minimum: 1, maximum: LIMITS.batchSize }),
    gradAccum: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.gradAccum, default: 1 })),
    lr: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 10, default: 1e-3 })),
    minLr: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 10,
        description: 'Learning rate at the end of the cosine decay (default lr / 10, as nanoGPT)',
      }),
    ),
    warmup: Type.Optional(Type.Integer({ minimum: 0, maximum: LIMITS.iterations, default: 100 })),
    weightDecay: Type.Optional(Type.Number({ minimum: 0, maximum: 10, default: 0.1 })),
    beta1: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.9 })),
    beta2: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.99 })),
    gradClip: Type.Optional(Type.Number({ minimum: 0, default: 1, description: '0 turns clipping off' })),
    evalEvery: Type.Optional(Type.Integer({ minimum: 1, default: 100 })),
    evalBatches: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 10 })),
    checkpointEvery: Type.Optional(Type.Integer({ minimum: 1, default: 500 })),
  },
  strict,
);

export const StageConfig = Type.Composite(
  [
    Type.Object({
      name: Type.String({
        minLength: 1,
        maxLength: 64,
        pattern: '^[A-Za-z0-9_.-]+$',
        description: 'names the stage folder: letters, digits, "_", "." and "-"',
      }),
      kind: Type.Union([Type.Literal('pretrain'), Type.Literal('sft')]),
      dataset: DatasetConfig,
    }),
    TrainConfig,
  ],
  strict,
);

export const EvaluationConfig = Type.Object(
  {
    valBatches: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 20 })),
    rougeSamples: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000, default: 20 })),
    maxNewTokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 64 })),
    prompts: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 100 })),
    samples: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 5 })),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 10, default: 0.8 })),
    topK: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
    topP: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 1 })),
  },
  strict,
);

export const Curriculum = Type.Object(
  {
    // Names the run folder: no path separators, no leading dot.
    name: Type.String({
      minLength: 1,
      maxLength: 128,
      pattern: '^[^./\\\\][^/\\\\]*$',
      description: 'names the run folder: no "/" or "\\", and no leading "."',
    }),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: 1337 })),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32 })),
    tokenizer: TokenizerConfig,
    model: ModelConfig,
    initFrom: Type.Optional(Type.String({ minLength: 1, description: 'A checkpoint to start the first stage from' })),
    stages: Type.Array(StageConfig, { minItems: 1, maxItems: 64 }),
    evaluation: Type.Optional(EvaluationConfig),
  },
  strict,
);

export type TokenizerConfig = Static<typeof TokenizerConfig>;
export type ModelConfig = Static<typeof ModelConfig>;
export type DatasetConfig = Static<typeof DatasetConfig>;
export type TrainConfig = Static<typeof TrainConfig>;
export type StageConfig = Static<typeof StageConfig>;
export type EvaluationConfig = Static<typeof EvaluationConfig>;
export type Curriculum = Static<typeof Curriculum>;

export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Checks untrusted input against the schema and fills in defaults. The error names the
 * offending field by its JSON path ("/stages/0/iterations: Expected integer").
 */
export function parseCurriculum(input: unknown): Result<Curriculum> {
  const withDefaults = Value.Default(Curriculum, Value.Clone(input));
  const first = Value.Errors(Curriculum, withDefaults).First();
  if (first)
    return {
      ok: false,
      error: formatSchemaError(first),
    };
  const curriculum = withDefaults as Curriculum;
  const semantic = checkCurriculum(curriculum);
  return semantic ? { ok: false, error: semantic } : { ok: true, value: curriculum };
}

/** Rules a JSON schema cannot say. */
function checkCurriculum(c: Curriculum): string | undefined {
  const m = c.model;
  if (m.kind === 'gpt') {
    const heads = m.heads ?? 1;
    if (m.dim % heads !== 0) return `/model/dim: ${m.dim} is not divisible by heads=${heads}`;
  }
  if (c.tokenizer.name === 'char' && c.tokenizer.compactVocab === false)
    return '/tokenizer/compactVocab: the char tokenizer needs a compact vocabulary (its full range is 1.1M ids, far too many rows for an embedding)';
  const names = new Set<string>();
  for (const [i, s] of c.stages.entries()) {
    if (names.has(s.name)) return `/stages/${i}/name: stage name "${s.name}" is used twice`;
    names.add(s.name);
    if (s.minLr !== undefined && s.minLr > (s.lr ?? 1e-3))
      return `/stages/${i}/minLr: ${s.minLr} is larger than lr=${s.lr}`;
    if (s.kind === 'sft' && s.dataset.source.startsWith('poetry:'))
      return `/stages/${i}/dataset/source: an sft stage needs Q&A records (a .jsonl file or "poetry-qa:<name>"), not "${s.dataset.source}"`;
  }
  return undefined;
}
