/**
 * @miniglm/api: the REST API of the training service.
 *
 *   const app = await buildApi({ db, redis, prefix });   // a Fastify instance (app.inject in tests)
 *   const { url, close } = await startApi({ db, redis, port: 8080 });
 */
export { buildApi, startApi, type ApiOptions, type StartOptions, type StartedApi } from './server.ts';
export { DEFAULT_GENERATE_TIMEOUT_MS } from './routes/generate.ts';
export { MAX_UPLOAD_BYTES } from './routes/files.ts';

import type { compareRuns } from './views/compare.ts';
import type { getRun, listRuns } from './views/runs.ts';

/** A read model as a client receives it: JSON turns dates into strings. */
export type Json<T> = T extends Date
  ? string
  : T extends (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

/** The answers of GET /v1/runs/:id, one row of GET /v1/runs, and GET /v1/compare: one definition for the API and its clients. */
export type RunView = Json<Awaited<ReturnType<typeof getRun>>>;
export type RunListItem = Json<Awaited<ReturnType<typeof listRuns>>[number]>;
export type CompareView = Json<Awaited<ReturnType<typeof compareRuns>>>;
