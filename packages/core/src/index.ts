export * from './curriculum.ts';
export * from './schema-errors.ts';
export * from './curriculum-file.ts';
export * from './datasets.ts';
export * from './stage-data.ts';
export * from './run-stage.ts';
export * from './evaluation.ts';
export * from './local-run.ts';
