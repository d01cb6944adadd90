/**
 * @miniglm/api: the REST API of the training service.
 *
 *   const app = await buildApi({ db, redis, prefix });   // a Fastify instance (app.inject in tests)
 *   const { url, close } = await startApi({ db, redis, port: 8080 });
 */
export { buildApi, startApi, type ApiOptions, type StartOptions, type StartedApi } from './server.ts';
export { DEFAULT_GENERATE_TIMEOUT_MS } from './routes/generate.ts';
export { MAX_UPLOAD_BYTES } from './routes/files.ts';
