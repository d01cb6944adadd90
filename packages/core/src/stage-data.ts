/** A prepared dataset opened for one stage: its training sampler and fixed validation batches. */
import { createBatchSampler, evalBatches, openDataset, type Batch, type BatchSampler } from '@miniglm/data';
import type { PreparedDataset } from './datasets.ts';

export interface StageData {
  train: BatchSampler;
  valBatches: Batch[];
}

export async function openStageData(
  dataset: PreparedDataset,
  o: { blockSize: number; batchSize: number; seed: number; evalBatches: number },
): Promise<StageData> {
  const opened = await openDataset(dataset.dir);
  return {
    train: createBatchSampler(opened, 'train', { batchSize: o.batchSize, blockSize: o.blockSize, seed: o.seed }),
    valBatches: evalBatches(opened, 'val', { batches: o.evalBatches, batchSize: o.batchSize, blockSize: o.blockSize }),
  };
}
