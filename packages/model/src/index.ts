export {
  initBackend,
  activeBackend,
  backendThreads,
  BackendError,
  BACKEND_NAMES,
  type BackendName,
} from './backend/select.ts';
export {
  type ModelConfig,
  type GPTConfig,
  type LSTMConfig,
  resolveModelConfig,
  countParameters,
  ConfigError,
} from './config.ts';
export {
  estimateTrainingMemory,
  memoryLimit,
  checkTrainingFits,
  formatBytes,
  MemoryLimitError,
  type TrainingMemory,
} from './memory.ts';
export {
  createModel,
  parameterCount,
  decays,
  ModelInputError,
  type LanguageModel,
  type DecodeWeights,
  type ForwardOptions,
} from './model.ts';
export { GPT } from './gpt.ts';
export { LSTM } from './lstm.ts';
export { maskedCrossEntropy, gelu, layerNorm } from './ops.ts';
export { AdamW, clipByGlobalNorm, type AdamWOptions } from './adamw.ts';
export { learningRate, type LrSchedule } from './schedule.ts';
export {
  trainStage,
  batchLoss,
  evaluateLoss,
  type TrainOptions,
  type TrainStageInput,
  type StageOutcome,
  type StepMetrics,
} from './trainer.ts';
export {
  saveCheckpoint,
  readCheckpoint,
  restoreModel,
  restoreOptimizer,
  CheckpointError,
  type Checkpoint,
  type CheckpointHeader,
} from './checkpoint.ts';
export { generate, pick, type SampleOptions, type SampleResult } from './generate.ts';
export { perplexity, decodedPerplexity, evaluateQa, qaPrompt, type QaItem } from './evaluate.ts';
export { rougeL, rougeTokens, lcsLength, meanRouge, type RougeScore } from './rouge.ts';
