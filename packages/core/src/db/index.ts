/**
 * The database layer of the training service: client factory, migrations, artifact store.
 * Row and enum types of the generated client come as one namespace (`DbModels.Run`,
 * `DbModels.StageStatus`, ...) so that they never collide with core's own names (core's
 * `Evaluation` is the evaluator's result, `DbModels.Evaluation` its stored row).
 */
export * from './client.ts';
export * from './migrate.ts';
export * from './artifacts.ts';
export * from './garbage.ts';
export * from './db-errors.ts';
export type { PrismaClient, Prisma } from './generated/client/index.js';
export type * as DbModels from './generated/client/index.js';
