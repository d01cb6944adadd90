/**
 * A model's size and its training memory, without TensorFlow.js: what a service that never
 * trains (the API, checking a submission) needs to know about a model.
 */
export { countParameters, resolveModelConfig, type ModelConfig } from './config.ts';
export { estimateTrainingMemory, formatBytes, memoryLimit, type TrainingMemory } from './memory.ts';
