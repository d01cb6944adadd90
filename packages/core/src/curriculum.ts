/**
 * The curriculum: what a user submits to train a model in stages. One TypeBox definition
 * gives the runtime validation (of the CLI's files and the REST API's bodies), the TypeScript
 * types and the OpenAPI schema. Every limit is here so that a bad file fails before anything
 * is written, and every default (DEFAULTS) so that it is filled in once, by parseCurriculum.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { formatSchemaError } from './schema-errors.ts';
import { DEFAULT_ANSWER_FIELD, DEFAULT_QUESTION_FIELD, DEFAULT_VAL_FRACTION, TOKENIZER_NAMES } from '@miniglm/data';

/**
 * Every default of a curriculum, each with its reason (as nanoGPT's train.py). The schema
 * below takes its `default`s from here and parseCurriculum fills them in, so a parsed
 * Curriculum carries them all and code downstream reads `stage.lr`, never `stage.lr ?? 1e-3`.
 */
export const DEFAULTS = {
  // One file gives the same numbers on every machine and every rerun (nanoGPT's 1337).
  seed: 1337,
  tokenizer: {
    // The corpora use a few thousand of a BPE's 50k-200k ids: remapped to a dense range,
    // a small model carries no embedding rows that would never train.
    compactVocab: true,
  },
  model: {
    kind: 'gpt', // the report's model; lstm is its baseline
    dropout: 0, // nanoGPT: 0 for pretraining; try 0.1+ for finetuning
    bias: false, // nanoGPT: no bias in linears and LayerNorms is a bit better and faster
  },
  dataset: {
    // The data package's own (it reads the records and splits them): the field names of the
    // poetry-qa records, and a held-out split (0.05) large enough for a steady val loss.
    questionField: DEFAULT_QUESTION_FIELD,
    answerField: DEFAULT_ANSWER_FIELD,
    valFraction: DEFAULT_VAL_FRACTION,
  },
  // The hyper-parameters of a stage. minLr has no fixed default: it is a tenth of the stage's
  // own lr (minLrOf; nanoGPT: "learning_rate / 10 usually"), so a stage that sets only lr
  // still decays to a tenth of it.
  stage: {
    gradAccum: 1, // one micro-batch per step; raise it for a batch larger than memory holds
    lr: 1e-3, // nanoGPT's for its baby networks, which "can afford to go a bit higher"
    warmup: 100, // linear warmup iterations (nanoGPT's), capped at the stage's iterations
    weightDecay: 0.1, // AdamW's decoupled decay as GPT-3 and nanoGPT; matrices and embeddings only
    beta1: 0.9,
    beta2: 0.99, // nanoGPT: "a bit bigger because number of tokens per iter is small"
    gradClip: 1, // global gradient-norm limit, as nanoGPT; 0 turns clipping off
    evalEvery: 100, // a val-loss point every 100 steps: a curve, at little evaluation time
    evalBatches: 10, // held-out batches per val loss: steady enough to compare two points
    checkpointEvery: 500, // a crash loses at most this many steps; each write holds weights and optimizer
  },
  // Which checkpoints of each stage a service run keeps as new ones land (service/retention.ts;
  // aliased ones, those a stage starts from and evaluated ones are always kept). nanoGPT keeps
  // only the last, MLflow everything: the last 3 are the resume point and two to fall back on,
  // the best by val loss is the model a user usually wants, and 4 or so checkpoints per stage
  // keep the database bounded however long the stage and however small its checkpointEvery.
  retention: {
    keepLast: 3,
    keepBest: 1,
  },
  evaluation: {
    valBatches: 20, // the final perplexity is measured once: twice a stage's evalBatches
    rougeSamples: 20, // held-out Q&A pairs answered for ROUGE-L; generating is the slow part
    maxNewTokens: 64, // the answers of the Q&A sets are a sentence or two
    samples: 5, // the report reads five samples per prompt
    temperature: 0.8, // nanoGPT's sample.py; the report saw low temperatures repeat themselves
    topK: 0, // off: the temperature alone shapes the samples
    topP: 1, // off
  },
} as const;

/** The learning rate at the end of a stage's cosine decay (see DEFAULTS.stage). */
export function minLrOf(stage: { lr: number; minLr?: number }): number {
  return stage.minLr ?? stage.lr / 10;
}

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
        default: DEFAULTS.tokenizer.compactVocab,
        description: 'Remap the ids the corpora use to a dense range, so a small model carries a small embedding',
      }),
    ),
  },
  strict,
);

export const ModelConfig = Type.Object(
  {
    kind: Type.Union([Type.Literal('gpt'), Type.Literal('lstm')], { default: DEFAULTS.model.kind }),
    layers: Type.Integer({ minimum: 1, maximum: LIMITS.layers }),
    heads: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.heads, description: 'GPT only' })),
    dim: Type.Integer({ minimum: 1, maximum: LIMITS.dim }),
    blockSize: Type.Integer({ minimum: 2, maximum: LIMITS.blockSize }),
    dropout: Type.Optional(Type.Number({ minimum: 0, maximum: 0.9, default: DEFAULTS.model.dropout })),
    bias: Type.Optional(Type.Boolean({ default: DEFAULTS.model.bias })),
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
    questionField: Type.Optional(Type.String({ minLength: 1, default: DEFAULTS.dataset.questionField })),
    answerField: Type.Optional(Type.String({ minLength: 1, default: DEFAULTS.dataset.answerField })),
    limit: Type.Optional(Type.Integer({ minimum: 1, description: 'Use at most this many documents or Q&A pairs' })),
    valFraction: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, maximum: 0.5, default: DEFAULTS.dataset.valFraction }),
    ),
  },
  strict,
);

export const TrainConfig = Type.Object(
  {
    iterations: Type.Integer({ minimum: 1, maximum: LIMITS.iterations }),
    batchSize: Type.Integer({ minimum: 1, maximum: LIMITS.batchSize }),
    gradAccum: Type.Optional(
      Type.Integer({ minimum: 1, maximum: LIMITS.gradAccum, default: DEFAULTS.stage.gradAccum }),
    ),
    lr: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 10, default: DEFAULTS.stage.lr })),
    minLr: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 10,
        description: 'Learning rate at the end of the cosine decay (default lr / 10, as nanoGPT)',
      }),
    ),
    warmup: Type.Optional(Type.Integer({ minimum: 0, maximum: LIMITS.iterations, default: DEFAULTS.stage.warmup })),
    weightDecay: Type.Optional(Type.Number({ minimum: 0, maximum: 10, default: DEFAULTS.stage.weightDecay })),
    beta1: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, default: DEFAULTS.stage.beta1 })),
    beta2: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, default: DEFAULTS.stage.beta2 })),
    gradClip: Type.Optional(
      Type.Number({ minimum: 0, default: DEFAULTS.stage.gradClip, description: '0 turns clipping off' }),
    ),
    evalEvery: Type.Optional(Type.Integer({ minimum: 1, default: DEFAULTS.stage.evalEvery })),
    evalBatches: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: DEFAULTS.stage.evalBatches })),
    checkpointEvery: Type.Optional(Type.Integer({ minimum: 1, default: DEFAULTS.stage.checkpointEvery })),
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
    valBatches: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: DEFAULTS.evaluation.valBatches })),
    rougeSamples: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 100_000, default: DEFAULTS.evaluation.rougeSamples }),
    ),
    maxNewTokens: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 100_000, default: DEFAULTS.evaluation.maxNewTokens }),
    ),
    prompts: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 100 })),
    samples: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: DEFAULTS.evaluation.samples })),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 10, default: DEFAULTS.evaluation.temperature })),
    topK: Type.Optional(Type.Integer({ minimum: 0, default: DEFAULTS.evaluation.topK })),
    topP: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, default: DEFAULTS.evaluation.topP })),
  },
  strict,
);

/** Which checkpoints of each stage a run on the service keeps (see DEFAULTS.retention). */
export const RetentionConfig = Type.Object(
  {
    keepLast: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: LIMITS.iterations,
        default: DEFAULTS.retention.keepLast,
        description: "A stage's latest checkpoints kept (at least 1: its resume point)",
      }),
    ),
    keepBest: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: LIMITS.iterations,
        default: DEFAULTS.retention.keepBest,
        description: "A stage's checkpoints with the lowest val loss kept besides the latest",
      }),
    ),
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
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: DEFAULTS.seed })),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32 })),
    tokenizer: TokenizerConfig,
    model: ModelConfig,
    initFrom: Type.Optional(Type.String({ minLength: 1, description: 'A checkpoint to start the first stage from' })),
    stages: Type.Array(StageConfig, { minItems: 1, maxItems: 64 }),
    evaluation: Type.Optional(EvaluationConfig),
    retention: Type.Optional(RetentionConfig),
  },
  strict,
);

/** What a user writes: the schema's own type, where every default is optional. */
export type CurriculumInput = Static<typeof Curriculum>;

/** T with the fields D gives defaults for made required; D must fit T (a default of the wrong type fails to compile). */
type Filled<T, D extends Partial<T>> = Flat<
  Omit<T, keyof D> & { [K in keyof D & keyof T]-?: Exclude<T[K], undefined> }
>;
type Flat<T> = { [K in keyof T]: T[K] };

// What parseCurriculum returns: the schema's types with every field DEFAULTS gives filled in.
export type TokenizerConfig = Filled<Static<typeof TokenizerConfig>, typeof DEFAULTS.tokenizer>;
export type ModelConfig = Filled<Static<typeof ModelConfig>, typeof DEFAULTS.model>;
export type DatasetConfig = Filled<Static<typeof DatasetConfig>, typeof DEFAULTS.dataset>;
export type TrainConfig = Filled<Static<typeof TrainConfig>, typeof DEFAULTS.stage>;
export type StageConfig = Flat<
  Filled<Omit<Static<typeof StageConfig>, 'dataset'>, typeof DEFAULTS.stage> & { dataset: DatasetConfig }
>;
export type EvaluationConfig = Filled<Static<typeof EvaluationConfig>, typeof DEFAULTS.evaluation>;
export type RetentionConfig = Filled<Static<typeof RetentionConfig>, typeof DEFAULTS.retention>;
export type Curriculum = Flat<
  Filled<
    Omit<CurriculumInput, 'tokenizer' | 'model' | 'stages' | 'evaluation' | 'retention'>,
    Pick<typeof DEFAULTS, 'seed'>
  > & {
    tokenizer: TokenizerConfig;
    model: ModelConfig;
    stages: StageConfig[];
    /** Absent when the user gave none: evaluationOf fills it from DEFAULTS.evaluation. */
    evaluation?: EvaluationConfig;
    /** Absent when the user gave none: retentionOf fills it from DEFAULTS.retention. */
    retention?: RetentionConfig;
  }
>;

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
  // Valid, and Value.Default has filled in every field DEFAULTS gives.
  const curriculum = withDefaults as Curriculum;
  const semantic = checkCurriculum(curriculum);
  return semantic ? { ok: false, error: semantic } : { ok: true, value: curriculum };
}

/**
 * The curriculum of a stored Run row. submitRun stores parseCurriculum's output, so its
 * defaults are there already; filling them again is cheap and reads rows written any other
 * way (by hand, by a test) as a Curriculum too. Not validated again: a stored run is history.
 */
export function curriculumOf(run: { curriculum: unknown }): Curriculum {
  return Value.Default(Curriculum, Value.Clone(run.curriculum)) as Curriculum;
}

/** The evaluation settings of a curriculum, DEFAULTS.evaluation where it gives none. */
export function evaluationOf(curriculum: Curriculum): EvaluationConfig {
  return curriculum.evaluation ?? DEFAULTS.evaluation;
}

/** The retention policy of a curriculum, DEFAULTS.retention where it gives none. */
export function retentionOf(curriculum: Pick<Curriculum, 'retention'>): RetentionConfig {
  return curriculum.retention ?? DEFAULTS.retention;
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
    if (s.minLr !== undefined && s.minLr > s.lr) return `/stages/${i}/minLr: ${s.minLr} is larger than lr=${s.lr}`;
    if (s.kind === 'sft' && s.dataset.source.startsWith('poetry:'))
      return `/stages/${i}/dataset/source: an sft stage needs Q&A records (a .jsonl file or "poetry-qa:<name>"), not "${s.dataset.source}"`;
  }
  return undefined;
}
