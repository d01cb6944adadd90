/**
 * TypeBox schemas of the request parts: validated by validation.ts, published in the OpenAPI
 * document at /docs, and the handlers' types (through the TypeBox type provider). Every object
 * is closed (`additionalProperties: false`): an unknown field is an error, not a silently
 * ignored typo. What the routes answer is in responses.ts.
 *
 * A field with a default is not wrapped in Type.Optional: the validator fills the default in
 * before the handler runs, so the handler's type says the field is always there, and the
 * default is written here only. A client may still leave it out; server.ts's
 * `defaultsAreOptional` says so in the OpenAPI document.
 */
import { Type, type Static } from '@sinclair/typebox';

const strict = { additionalProperties: false } as const;

export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;

/**
 * `?limit=&cursor=` of a list route: at most `limit` items (default and maximum per list,
 * written here), and the page after the one whose `nextCursor` is given (pagination.ts).
 */
const pageQuery = (defaultLimit: number, maxLimit: number) => ({
  limit: Type.Integer({
    minimum: 1,
    maximum: maxLimit,
    default: defaultLimit,
    description: `items per page (default ${defaultLimit}, at most ${maxLimit})`,
  }),
  cursor: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 500,
      description: 'the nextCursor of the previous page; leave it out for the first page',
    }),
  ),
});

/**
 * `?maxPoints=` of the metric histories: the most points one history answers. Longer ones
 * are downsampled in SQL (views/metric-history.ts), so the answer stays bounded however
 * long the run; the default applies when the parameter is absent.
 */
export const DEFAULT_MAX_POINTS = 1000;
const maxPoints = (description: string) =>
  Type.Integer({ minimum: 100, maximum: 10_000, default: DEFAULT_MAX_POINTS, description });

export const IdParams = Type.Object({ id: Type.String({ description: 'a uuid' }) }, strict);
export type IdParams = Static<typeof IdParams>;

export const ListRunsQuery = Type.Object(
  {
    status: Type.Optional(Type.Union(RUN_STATUSES.map((s) => Type.Literal(s)))),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    ...pageQuery(50, 500),
  },
  strict,
);
export type ListRunsQuery = Static<typeof ListRunsQuery>;

export const MetricsQuery = Type.Object(
  {
    keys: Type.String({
      default: 'trainLoss,valLoss',
      pattern: '^[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*$',
      description: 'comma-separated metric keys (trainLoss, valLoss, lr, gradNorm, tokensPerSec, ...), at most 20',
    }),
    maxPoints: maxPoints(
      'the most points per key and stage; a longer history is cut into steps buckets and each keeps its lowest and highest point, plus the first and last point',
    ),
  },
  strict,
);
export type MetricsQuery = Static<typeof MetricsQuery>;

export const ListCheckpointsQuery = Type.Object(
  {
    run: Type.Optional(Type.String({ minLength: 1, description: 'only the checkpoints of this run' })),
    ...pageQuery(100, 500),
  },
  strict,
);
export type ListCheckpointsQuery = Static<typeof ListCheckpointsQuery>;

export const ALIAS_PATTERN = '^[A-Za-z0-9_.-]{1,64}$';
export const AliasParams = Type.Object(
  {
    name: Type.String({
      pattern: ALIAS_PATTERN,
      description: 'an alias name: 1 to 64 letters, digits, "_", "." or "-"',
    }),
  },
  strict,
);
export type AliasParams = Static<typeof AliasParams>;

export const PutAliasBody = Type.Object(
  {
    checkpoint: Type.String({
      minLength: 1,
      description: 'a checkpoint id, or another alias (the alias then points at its checkpoint)',
    }),
  },
  strict,
);
export type PutAliasBody = Static<typeof PutAliasBody>;

export const UploadQuery = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[^/\\\\]+$',
      description: 'the file name; its extension (.txt .jsonl .ndjson .json .csv .parquet) decides how it is read',
    }),
  },
  strict,
);
export type UploadQuery = Static<typeof UploadQuery>;

/** Documentation only: the raw bytes of the file. */
export const UploadBody = Type.String({
  format: 'binary',
  description: "the file's bytes, sent as they are (no multipart)",
});

export const ListFilesQuery = Type.Object(pageQuery(100, 500), strict);
export type ListFilesQuery = Static<typeof ListFilesQuery>;

export const ListEventsQuery = Type.Object(pageQuery(500, 500), strict);
export type ListEventsQuery = Static<typeof ListEventsQuery>;

export const ListAliasesQuery = Type.Object(pageQuery(100, 500), strict);
export type ListAliasesQuery = Static<typeof ListAliasesQuery>;

export const GenerateBody = Type.Object(
  {
    checkpoint: Type.Optional(
      Type.String({ minLength: 1, description: 'a checkpoint id; give this or `alias`, not both' }),
    ),
    alias: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'an alias name (PUT /v1/aliases/:name); give this or `checkpoint`, not both',
      }),
    ),
    prompt: Type.String({ maxLength: 10_000, description: 'the text to continue, or the question (mode "answer")' }),
    mode: Type.Optional(
      Type.Union([Type.Literal('completion'), Type.Literal('answer')], {
        description: 'default: "answer" when the checkpoint comes from an sft stage, else "completion"',
      }),
    ),
    temperature: Type.Number({ minimum: 0, maximum: 10, default: 0.8, description: '0 is greedy' }),
    topK: Type.Integer({ minimum: 0, default: 0, description: '0 turns top-k off' }),
    topP: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 1 }),
    maxTokens: Type.Integer({ minimum: 1, maximum: 2048, default: 128 }),
    samples: Type.Integer({ minimum: 1, maximum: 20, default: 5 }),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })),
  },
  strict,
);
export type GenerateBody = Static<typeof GenerateBody>;

export const CompareQuery = Type.Object(
  {
    runs: Type.String({ minLength: 1, description: 'comma-separated run ids, 2 to 20' }),
    maxPoints: maxPoints(
      'the most rows per history; each run gets an equal share (at least 10 points), downsampled as GET /v1/runs/:id/metrics does',
    ),
  },
  strict,
);
export type CompareQuery = Static<typeof CompareQuery>;
