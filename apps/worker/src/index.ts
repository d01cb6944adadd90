export { startWorker, DEFAULT_SETTINGS, type WorkerOptions, type RunningWorker } from './worker.ts';
export type { WorkerSettings } from './context.ts';
