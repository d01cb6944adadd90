/** What the API, the workers and the CLI share about the service. */
export * from './ids.ts';
export * from './queues.ts';
export * from './states.ts';
export * from './status.ts';
export * from './redis.ts';
export * from './sources.ts';
export * from './submit.ts';
export * from './capacity.ts';
export * from './quotas.ts';
export * from './running-quota.ts';
export * from './settings.ts';
export * from './local-redis.ts';
export * from './api-keys.ts';
export * from './retention.ts';
export * from './deletion.ts';
