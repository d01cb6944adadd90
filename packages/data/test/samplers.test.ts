import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildPretrainDataset,
  buildSftDataset,
  createBatchSampler,
  createPretrainSampler,
  evalBatches,
  openDataset,
  type Batch,
  type OpenedDataset,
} from '../src/index.ts';
import { useTempDir } from './helpers.ts';

const tmp = useTempDir('samplers');
const same = (a: Batch, b: Batch) => {
  expect(Array.from(a.x)).toEqual(Array.from(b.x));
  expect(Array.from(a.y)).toEqual(Array.from(b.y));
  expect(a.mask && Array.from(a.mask)).toEqual(b.mask && Array.from(b.mask));
};

describe('batch samplers', () => {
  let pretrain: OpenedDataset;
  let sft: OpenedDataset;
  beforeAll(async () => {
    const docs = Array.from({ length: 50 }, (_, i) => `文档${i}：${'春眠不觉晓处处闻啼鸟'.slice(i % 5)}`);
    await buildPretrainDataset({
      documents: docs,
      tokenizer: 'char',
      compactVocab: true,
      outDir: path.join(tmp(), 'p'),
      valFraction: 0.2,
    });
    pretrain = await openDataset(path.join(tmp(), 'p'));
    const pairs = Array.from({ length: 40 }, (_, i) => ({ question: `问${i}`, answer: `答案${i}。` }));
    await buildSftDataset({
      pairs,
      tokenizer: 'char',
      compactVocab: true,
      blockSize: 12,
      outDir: path.join(tmp(), 's'),
      valFraction: 0.2,
    });
    sft = await openDataset(path.join(tmp(), 's'));
  });

  it('pretrain: x and y are consecutive windows of the token stream', () => {
    const sampler = createBatchSampler(pretrain, 'train', { batchSize: 3, blockSize: 8, seed: 5 });
    const batch = sampler.next();
    expect(batch.mask).toBeUndefined();
    expect(batch.x).toHaveLength(24);
    const stream = Array.from(pretrain.train).join(',');
    for (let b = 0; b < 3; b++) {
      const x = Array.from(batch.x.subarray(b * 8, b * 8 + 8));
      const y = Array.from(batch.y.subarray(b * 8, b * 8 + 8));
      expect(y.slice(0, 7)).toEqual(x.slice(1));
      expect(stream).toContain([...x, y[7]].join(','));
    }
  });

  it.each(['pretrain', 'sft'] as const)('%s: state save/restore continues the exact batch sequence', (kind) => {
    const ds = kind === 'pretrain' ? pretrain : sft;
    const opts = { batchSize: 4, blockSize: kind === 'pretrain' ? 8 : 12, seed: 11 };
    const a = createBatchSampler(ds, 'train', opts);
    a.next();
    a.next();
    const state = JSON.parse(JSON.stringify(a.getState()));
    expect(state).toMatchObject({ kind, drawn: 2 });
    const expected = [a.next(), a.next(), a.next()];
    const b = createBatchSampler(ds, 'train', { ...opts, seed: 999 });
    b.setState(state);
    for (const batch of expected) same(b.next(), batch);
    expect(b.getState()).toEqual(a.getState());
    expect(() => b.setState({ ...state, kind: kind === 'sft' ? 'pretrain' : 'sft' })).toThrow(/sampler state is for/);
  });

  it('same seed, same batches; the seed matters', () => {
    const opts = { batchSize: 2, blockSize: 8 };
    same(
      createBatchSampler(pretrain, 'train', { ...opts, seed: 1 }).next(),
      createBatchSampler(pretrain, 'train', { ...opts, seed: 1 }).next(),
    );
    const other = createBatchSampler(pretrain, 'train', { ...opts, seed: 2 }).next();
    expect(Array.from(other.x)).not.toEqual(
      Array.from(createBatchSampler(pretrain, 'train', { ...opts, seed: 1 }).next().x),
    );
  });

  it('evalBatches are fixed and cover the split evenly', () => {
    const first = evalBatches(pretrain, 'val', { batches: 3, batchSize: 2, blockSize: 8 });
    const second = evalBatches(pretrain, 'val', { batches: 3, batchSize: 2, blockSize: 8 });
    expect(first).toHaveLength(3);
    first.forEach((batch, i) => same(batch, second[i]!));
    expect(Array.from(first[0]!.x.subarray(0, 8))).toEqual(Array.from(pretrain.val.subarray(0, 8)));
    const rows = evalBatches(sft, 'val', { batches: 2, batchSize: 3, blockSize: 12 });
    expect(rows[0]!.mask).toBeDefined();
    expect(Array.from(rows[0]!.x.subarray(0, 12))).toEqual(Array.from(sft.val.subarray(0, 12)));
  });

  it('names the numbers when a split is too short for the block', () => {
    expect(() => createPretrainSampler(new Uint16Array(8), { batchSize: 1, blockSize: 8, seed: 1 })).toThrow(
      /has 8 tokens; a window of blockSize 8 needs at least 9/,
    );
  });
});
