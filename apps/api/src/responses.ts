/**
 * TypeBox schemas of what the routes answer, one per status code. Each is the one definition
 * of its answer: the OpenAPI document at /docs shows it, the TypeBox type provider types the
 * handlers by it, the views declare it as their return type, and index.ts exports it to
 * clients as a read-model type (RunView, RunListItem, CompareView, ...).
 *
 * A response schema also serialises (fast-json-stringify), and a property it does not name is
 * left out of the answer. Every field a view returns is therefore named here; the compiler
 * checks the object literals of the views against these types, and `sameShape` below checks
 * the two answers that are core's types rather than literals.
 */
import { STATUS_CODES } from 'node:http';
import { Type, type SchemaOptions, type Static, type TSchema } from '@sinclair/typebox';
import { Curriculum, StageConfig } from '@miniglm/core';
import type { Prisma } from '@miniglm/core/db';
import type { GenerateResult, SubmittedRun } from '@miniglm/core/service';
import { RUN_STATUSES } from './schemas.ts';

/** A Date where the server builds the answer, an ISO 8601 string on the wire (`Json<T>` in index.ts). */
const Timestamp = Type.Unsafe<Date>({ type: 'string', format: 'date-time' });
const Nullable = <T extends TSchema>(schema: T, options?: SchemaOptions) => Type.Union([schema, Type.Null()], options);
/** A Json column, answered as it was stored. An empty schema is serialised by JSON.stringify. */
const StoredJson = (description: string) => Type.Unsafe<Prisma.JsonValue>({ description });

const Uuid = Type.String({ format: 'uuid' });
const Status = Type.Union(RUN_STATUSES.map((s) => Type.Literal(s)));
const StageKind = Type.Index(StageConfig, ['kind']);
/**
 * The curriculum as stored: parseCurriculum's output, so every default is filled in, which the
 * type says (core's Curriculum) and the schema (what a client may send) cannot.
 */
const CurriculumView = Type.Unsafe<Curriculum>({
  ...Curriculum,
  description: 'the curriculum with its defaults filled in',
});
const EVENT_TYPES = ['queued', 'started', 'checkpointed', 'retried', 'finished', 'failed', 'cancelled'] as const;

export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'the HTTP reason phrase, e.g. "Not Found"' }),
    message: Type.String({ description: 'what went wrong, naming the field by its JSON path' }),
  },
  { description: 'Every error has this shape' },
);

/** The error answers a route can give: the one error shape, described by each status's reason. */
export function errors<const Codes extends readonly number[]>(...codes: Codes) {
  return Object.fromEntries(
    codes.map((code) => [code, { ...ErrorBody, description: STATUS_CODES[code] ?? 'Error' }]),
  ) as { [K in Codes[number]]: typeof ErrorBody };
}

/**
 * The 429 of a route with a quota or a rate limit (`description` says which): a rate limit's
 * answer carries Retry-After; a quota's has none (it frees up when runs end or bytes go).
 */
export function tooManyRequests(description: string) {
  return {
    429: {
      ...ErrorBody,
      description,
      headers: {
        'retry-after': Type.Integer({ description: "seconds until the rate limit's window ends; absent for a quota" }),
      },
    },
  };
}

/** The cursor of the next page of a list (pagination.ts); null on the last page. */
const NextCursor = Nullable(
  Type.String({ description: 'pass it as ?cursor= for the next page; null when this page is the last' }),
);

/** What a downsampled history answer says about itself (views/metric-history.ts). */
const Downsampling = {
  maxPoints: Type.Integer({ description: 'the most points per history that this answer was allowed' }),
  downsampled: Type.Boolean({
    description: 'some history had more points: it holds the lowest and highest point of each step bucket',
  }),
};

// ---------------------------------------------------------------------------- runs

export const SubmittedRunView = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    status: Type.Literal('queued'),
    stages: Type.Array(Type.Object({ id: Uuid, index: Type.Integer(), name: Type.String() })),
    curriculum: CurriculumView,
    initFrom: Nullable(
      Type.Object({
        checkpointId: Uuid,
        alias: Type.Optional(Type.String({ description: 'when initFrom named an alias' })),
      }),
    ),
  },
  { description: 'The run, queued' },
);

const StageSummary = Type.Object({
  index: Type.Integer(),
  name: Type.String(),
  status: Status,
  step: Type.Integer(),
  iterations: Type.Integer(),
  progress: Type.Number({ description: 'fraction done, 0 to 1' }),
});

export const RunListItem = Type.Object({
  id: Uuid,
  name: Type.String(),
  status: Status,
  tags: Type.Array(Type.String()),
  createdAt: Timestamp,
  startedAt: Nullable(Timestamp),
  finishedAt: Nullable(Timestamp),
  error: Nullable(Type.String()),
  stage: Nullable(StageSummary, { description: 'the running stage, else the next queued, else the last' }),
  tokensPerSec: Nullable(Type.Number()),
  etaSeconds: Nullable(Type.Number({ description: 'time left for the whole run' })),
  bestValLoss: Nullable(Type.Number()),
});

export const RunList = Type.Object(
  { runs: Type.Array(RunListItem), nextCursor: NextCursor },
  { description: 'Runs, newest first' },
);

const LatestMetrics = Type.Object(
  {
    trainLoss: Nullable(Type.Number()),
    valLoss: Nullable(Type.Number()),
    lr: Nullable(Type.Number()),
    gradNorm: Nullable(Type.Number()),
  },
  { description: "the stage's latest value of each" },
);

/** How many of a stage's checkpoints GET /v1/runs/:id shows (the latest). */
export const CHECKPOINTS_PER_STAGE_VIEW = 20;

const CheckpointRef = Type.Object({ id: Uuid, step: Type.Integer(), createdAt: Timestamp });

const StageView = Type.Object({
  id: Uuid,
  index: Type.Integer(),
  name: Type.String(),
  kind: StageKind,
  status: Status,
  step: Type.Integer({ description: 'iterations done' }),
  iterations: Type.Integer(),
  progress: Type.Number({ description: 'fraction done, 0 to 1' }),
  etaSeconds: Nullable(Type.Number({ description: 'time left at the current speed, while it runs' })),
  tokensPerSec: Nullable(Type.Number()),
  backend: Nullable(Type.String({ description: 'the TensorFlow.js backend that trained it' })),
  attempts: Type.Integer({ description: 'how many times a worker has started it' }),
  workerId: Nullable(Type.String()),
  parentCheckpointId: Nullable(Uuid),
  datasetId: Nullable(Uuid),
  metrics: LatestMetrics,
  checkpoints: Type.Array(CheckpointRef, {
    description: `the latest ${CHECKPOINTS_PER_STAGE_VIEW} checkpoints, by step; GET /v1/checkpoints?run= pages through all`,
  }),
  checkpointCount: Type.Integer({ description: 'how many checkpoints the stage has' }),
  startedAt: Nullable(Timestamp),
  finishedAt: Nullable(Timestamp),
  error: Nullable(Type.String()),
});

const EvaluationView = Type.Object({
  id: Uuid,
  checkpointId: Uuid,
  perplexity: Nullable(Type.Number()),
  valLoss: Nullable(Type.Number()),
  perStage: StoredJson("[{ stage, loss, perplexity }] on every stage's held-out split"),
  rouge: StoredJson('ROUGE-L on held-out Q&A: { stage, pairs, mean, items }'),
  samples: StoredJson('[{ prompt, mode, outputs, tokensPerSec }]'),
  createdAt: Timestamp,
});

export const RunView = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    status: Status,
    error: Nullable(Type.String()),
    tags: Type.Array(Type.String()),
    seed: Type.Integer(),
    params: Nullable(Type.Integer({ description: "the model's parameters, known once prepared" })),
    tokenizer: Type.Object({
      name: Type.String(),
      vocabSize: Nullable(Type.Integer({ description: 'null until the run is prepared' })),
    }),
    curriculum: CurriculumView,
    createdAt: Timestamp,
    startedAt: Nullable(Timestamp),
    finishedAt: Nullable(Timestamp),
    etaSeconds: Nullable(Type.Number({ description: 'time left for the whole run' })),
    stages: Type.Array(StageView),
    evaluation: Nullable(EvaluationView, { description: 'the latest evaluation' }),
    aliases: Type.Array(Type.Object({ name: Type.String(), checkpointId: Uuid })),
  },
  { description: 'A run with its stages, latest evaluation and aliases' },
);

export const RunEvent = Type.Object({
  id: Type.Integer(),
  at: Timestamp,
  type: Type.Union(EVENT_TYPES.map((t) => Type.Literal(t))),
  stageId: Uuid,
  stage: Type.String({ description: "the stage's name" }),
  stageIndex: Type.Integer(),
  workerId: Nullable(Type.String()),
  step: Nullable(Type.Integer()),
  message: Nullable(Type.String()),
});

export const RunEvents = Type.Object(
  { events: Type.Array(RunEvent), nextCursor: NextCursor },
  { description: 'In time order' },
);

export const RunMetrics = Type.Object(
  {
    stages: Type.Array(
      Type.Object({
        id: Uuid,
        index: Type.Integer(),
        name: Type.String(),
        iterations: Type.Integer(),
        offset: Type.Integer({ description: "the earlier stages' iterations: global step = offset + step" }),
      }),
    ),
    series: Type.Record(
      Type.String({ description: 'metric key' }),
      Type.Record(
        Type.String({ description: 'stage name' }),
        Type.Array(Type.Tuple([Type.Integer(), Type.Number()], { description: '[step, value]' })),
      ),
    ),
    ...Downsampling,
  },
  { description: 'Metric histories by key and stage' },
);

export const LineageNode = Type.Object({
  id: Type.String(),
  type: Type.Union([Type.Literal('dataset'), Type.Literal('stage'), Type.Literal('checkpoint'), Type.Literal('run')]),
  label: Type.String(),
  runId: Type.Optional(Uuid),
  stageId: Type.Optional(Uuid),
  status: Type.Optional(Status),
  kind: Type.Optional(StageKind),
  index: Type.Optional(Type.Integer()),
  step: Type.Optional(Type.Integer()),
  createdAt: Type.Optional(Timestamp),
});
export const LineageEdge = Type.Object({
  from: Type.String(),
  to: Type.String(),
  type: Type.Union([Type.Literal('trained-on'), Type.Literal('parent'), Type.Literal('produced')]),
});

export const Lineage = Type.Object(
  {
    runId: Type.String(),
    nodes: Type.Array(LineageNode),
    edges: Type.Array(LineageEdge),
    truncated: Type.Boolean({ description: 'the graph was cut at its size limit' }),
  },
  { description: 'Datasets → stages → checkpoints, across runs' },
);

export const CancelledRun = Type.Object(
  { id: Uuid, status: Type.Literal('cancelled') },
  { description: 'Cancelled; a running stage stops at its next iteration' },
);

// ---------------------------------------------------------------------------- compare

export const CompareView = Type.Object(
  {
    runs: Type.Array(
      Type.Object({
        id: Uuid,
        name: Type.String(),
        status: Status,
        finalValLoss: Nullable(Type.Number()),
        perplexity: Nullable(Type.Number()),
        rouge: Nullable(Type.Number({ description: 'mean ROUGE-L F' })),
        params: Nullable(Type.Integer()),
        tokensPerSec: Nullable(Type.Number()),
        wallSeconds: Nullable(Type.Number()),
        backend: Nullable(Type.String()),
      }),
    ),
    differences: Type.Array(
      Type.Object({
        path: Type.String({ description: 'stages by name: "stages.qa.lr"' }),
        values: Type.Record(Type.String({ description: 'run id' }), Type.Unknown()),
      }),
    ),
    histories: Type.Record(
      Type.String({ description: 'trainLoss or valLoss' }),
      Type.Array(
        Type.Object({
          step: Type.Integer({ description: 'global step' }),
          values: Type.Record(Type.String({ description: 'run id' }), Nullable(Type.Number())),
        }),
      ),
    ),
    ...Downsampling,
  },
  { description: 'Results, the settings that differ, and loss histories aligned by global step' },
);

// ---------------------------------------------------------------------------- checkpoints, aliases

export const CheckpointView = Type.Object({
  id: Uuid,
  step: Type.Integer(),
  stage: Type.Object({ id: Uuid, name: Type.String(), index: Type.Integer(), kind: StageKind }),
  run: Type.Object({ id: Uuid, name: Type.String() }),
  metrics: StoredJson('losses and friends at this step ({ trainLoss, valLoss, lr, ... })'),
  artifact: Type.Object({ sha256: Type.String(), size: Type.Integer({ description: 'bytes' }) }),
  aliases: Type.Array(Type.String()),
  createdAt: Timestamp,
});

export const CheckpointList = Type.Object(
  { checkpoints: Type.Array(CheckpointView), nextCursor: NextCursor },
  { description: 'Checkpoints, newest first' },
);

/** The bytes, streamed from the artifact store. */
export const CheckpointBytes = {
  description: 'The checkpoint file; x-sha256 names its hash',
  content: {
    'application/octet-stream': { schema: Type.Unsafe<NodeJS.ReadableStream>({ type: 'string', format: 'binary' }) },
  },
};

export const AliasView = Type.Object({
  name: Type.String(),
  checkpointId: Uuid,
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

export const AliasList = Type.Object(
  { aliases: Type.Array(AliasView), nextCursor: NextCursor },
  { description: 'Aliases by name' },
);

export const AliasSet = Type.Object(
  { name: Type.String(), checkpointId: Uuid },
  { description: 'Where it points now' },
);

/** No body: the type is undefined, so that `reply.send()` sends nothing. */
export const NoContent = Type.Unsafe<undefined>({ type: 'null', description: 'Done; no body' });

// ---------------------------------------------------------------------------- files

export const FileView = Type.Object({
  id: Uuid,
  name: Type.String(),
  format: Type.String({ description: 'txt, jsonl, json, csv or parquet' }),
  size: Type.Integer({ description: 'bytes' }),
  records: Type.Integer(),
  fields: Type.Array(Type.String(), { description: "the first record's keys ([] for .txt)" }),
  sha256: Type.String(),
  source: Type.String({ description: 'what a curriculum names it by: "file:<id>"' }),
  createdAt: Timestamp,
});

export const FileList = Type.Object(
  { files: Type.Array(FileView), nextCursor: NextCursor },
  { description: 'Files, newest first' },
);

// ---------------------------------------------------------------------------- generate

export const GenerateView = Type.Object(
  {
    checkpointId: Uuid,
    outputs: Type.Array(Type.String()),
    tokens: Type.Integer({ description: 'tokens generated, all samples together' }),
    tokensPerSec: Type.Number(),
    seconds: Type.Number(),
    workerId: Type.String(),
    warm: Type.Boolean({ description: 'the model was already loaded on the worker' }),
  },
  { description: "The worker's samples" },
);

// ---------------------------------------------------------------------------- health

export const Alive = Type.Object({ status: Type.Literal('ok') }, { description: 'The process answers' });

export const Ready = Type.Object(
  { status: Type.Literal('ready'), database: Type.Literal('ok'), redis: Type.Literal('ok') },
  { description: 'Postgres and Redis both answer' },
);

export const NotReady = Type.Composite(
  [
    ErrorBody,
    Type.Object({
      database: Type.String({ description: '"ok", or why the database does not answer' }),
      redis: Type.String({ description: '"ok", or why Redis does not answer' }),
    }),
  ],
  { description: 'Postgres or Redis does not answer' },
);

export const MetricsText = {
  description: 'Prometheus text format',
  content: { 'text/plain': { schema: Type.String() } },
};

// The worker's answer and core's submitted run pass through as they are, not as literals the
// compiler could check field by field: their schemas must name exactly the fields of core's types.
type SameShape<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const sameShape: [
  SameShape<Static<typeof GenerateView>, GenerateResult>,
  SameShape<Static<typeof SubmittedRunView>, SubmittedRun>,
] = [true, true];
