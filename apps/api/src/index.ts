/**
 * @miniglm/api: the REST API of the training service.
 *
 *   const app = await buildApi({ db, redis, prefix });   // a Fastify instance (app.inject in tests)
 *   const { url, close } = await startApi({ db, redis, port: 8080 });
 */
export {
  buildApi,
  startApi,
  KeylessExposureError,
  type ApiOptions,
  type StartOptions,
  type StartedApi,
} from './server.ts';
export type { Principal } from './auth.ts';
export { DEFAULT_GENERATE_TIMEOUT_MS } from './routes/generate.ts';
export { MAX_UPLOAD_BYTES } from './routes/files.ts';

import type { Static, TSchema } from '@sinclair/typebox';
import type * as responses from './responses.ts';

/** A read model as a client receives it: JSON turns dates into strings. */
export type Json<T> = T extends Date
  ? string
  : T extends (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

/** The answer a response schema (responses.ts) describes, as a client receives it. */
export type Answer<S extends TSchema> = Json<Static<S>>;

// The read models clients use (the CLI, the dashboard's type-check): one definition each, the
// schema the API answers by.
/** GET /v1/runs/:id */
export type RunView = Answer<typeof responses.RunView>;
/** One row of GET /v1/runs */
export type RunListItem = Answer<typeof responses.RunListItem>;
/** GET /v1/compare */
export type CompareView = Answer<typeof responses.CompareView>;
/** POST /v1/runs (201) */
export type SubmittedRunView = Answer<typeof responses.SubmittedRunView>;
/** One event of GET /v1/runs/:id/events */
export type RunEvent = Answer<typeof responses.RunEvent>;
/** GET /v1/runs/:id/metrics */
export type RunMetrics = Answer<typeof responses.RunMetrics>;
/** GET /v1/runs/:id/lineage */
export type Lineage = Answer<typeof responses.Lineage>;
/** GET /v1/checkpoints/:id, and each of GET /v1/checkpoints */
export type CheckpointView = Answer<typeof responses.CheckpointView>;
/** GET /v1/aliases/:name, and each of GET /v1/aliases */
export type AliasView = Answer<typeof responses.AliasView>;
/** GET /v1/files/:id, POST /v1/files, and each of GET /v1/files */
export type FileView = Answer<typeof responses.FileView>;
/** POST /v1/generate */
export type GenerateView = Answer<typeof responses.GenerateView>;
/** Every error: { error, message } */
export type ErrorBody = Answer<typeof responses.ErrorBody>;
