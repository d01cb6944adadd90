import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildSftDataset, createBatchSampler, loadHeldOutQa, openDataset, type QaPair } from '../src/index.ts';
import { useTempDir } from './helpers.ts';

const tmp = useTempDir('sft');
const out = (name: string) => path.join(tmp(), name);

const PAIRS: QaPair[] = Array.from({ length: 30 }, (_, i) => ({
  question: `问题${i}？`,
  // Every third answer is too long for a 16-token block.
  answer: i % 3 === 0 ? `这是一个很长很长很长很长的答案${i}。` : `答${i}。`,
}));

describe('buildSftDataset', () => {
  it('writes one blockSize row per pair and counts truncated rows', async () => {
    const result = await buildSftDataset({
      pairs: PAIRS,
      tokenizer: 'char',
      compactVocab: true,
      blockSize: 16,
      outDir: out('a'),
      valFraction: 0.2,
      seed: 3,
    });
    const m = result.manifest;
    expect(m.kind).toBe('sft');
    expect(m.blockSize).toBe(16);
    expect(m.counts.pairs.train + m.counts.pairs.val).toBe(30);
    expect(result.truncated).toBe(10);
    expect(m.counts.truncated.train + m.counts.truncated.val).toBe(10);
    expect(m.counts.tokens.train).toBe(m.counts.pairs.train * 16);
    expect(result.skippedQuestionTooLong).toBe(0);

    const ds = await openDataset(out('a'));
    const tok = ds.tokenizer;
    const rows = (tokens: ArrayLike<number>) =>
      Array.from({ length: tokens.length / 16 }, (_, r) => Array.from(tokens).slice(r * 16, r * 16 + 16));
    for (const row of rows(ds.train)) {
      expect(row.indexOf(tok.sepId)).toBeGreaterThan(0);
      expect(row.filter((id) => id === tok.sepId)).toHaveLength(1);
    }
    // The held-out pairs are kept as text, in the same order as the val rows.
    const heldOut = await loadHeldOutQa(out('a'));
    expect(heldOut).toHaveLength(m.counts.pairs.val);
    expect(m.heldOut.pairs).toBe(m.counts.pairs.val);
    rows(ds.val).forEach((row, i) => {
      expect(tok.decode(row.slice(0, row.indexOf(tok.sepId)))).toBe(heldOut[i]!.question);
    });
    const text = await readFile(out('a/val.qa.jsonl'), 'utf8');
    expect(text.trim().split('\n')).toHaveLength(heldOut.length);
  });

  it('skips and counts pairs whose question fills the block', async () => {
    const pairs = [...PAIRS.slice(0, 5), { question: '这个问题实在是太长了以至于放不下任何答案', answer: '答' }];
    const result = await buildSftDataset({ pairs, tokenizer: 'char', blockSize: 16, outDir: out('skip') });
    expect(result.skippedQuestionTooLong).toBe(1);
    expect(result.manifest.counts.skippedQuestionTooLong).toBe(1);
    expect(result.manifest.counts.pairs.train + result.manifest.counts.pairs.val).toBe(5);
    await expect(
      buildSftDataset({ pairs: pairs.slice(5), tokenizer: 'char', blockSize: 16, outDir: out('skip2') }),
    ).rejects.toThrow(/all 1 pairs of pairs were skipped: each question alone fills blockSize 16/);
  });

  it('is deterministic per seed and keeps val.qa.jsonl in step when a row moves split', async () => {
    const a = await buildSftDataset({
      pairs: PAIRS.slice(0, 3),
      tokenizer: 'r50k_base',
      blockSize: 32,
      outDir: out('d1'),
      valFraction: 0.01,
    });
    const b = await buildSftDataset({
      pairs: PAIRS.slice(0, 3),
      tokenizer: 'r50k_base',
      blockSize: 32,
      outDir: out('d2'),
      valFraction: 0.01,
    });
    expect(a.manifest).toEqual(b.manifest);
    expect(a.manifest.counts.pairs).toEqual({ train: 2, val: 1 });
    expect(await loadHeldOutQa(out('d1'))).toEqual([PAIRS[2]]);
  });

  it('builds from poetry-qa and samples batches with the mask', async () => {
    const { manifest } = await buildSftDataset({
      source: 'poetry-qa:tang',
      limit: 40,
      tokenizer: 'char',
      compactVocab: true,
      blockSize: 48,
      outDir: out('poetry'),
    });
    expect(manifest.source).toBe('poetry-qa:tang (limit 40)');
    const ds = await openDataset(out('poetry'));
    const sampler = createBatchSampler(ds, 'train', { batchSize: 4, blockSize: 48, seed: 1 });
    const batch = sampler.next();
    expect(batch.mask).toBeDefined();
    for (let b = 0; b < 4; b++) {
      const x = Array.from(batch.x.subarray(b * 48, b * 48 + 48));
      const mask = Array.from(batch.mask!.subarray(b * 48, b * 48 + 48));
      const sep = x.indexOf(ds.tokenizer.sepId);
      expect(mask.indexOf(1)).toBe(sep);
    }
    expect(() => createBatchSampler(ds, 'train', { batchSize: 4, blockSize: 32, seed: 1 })).toThrow(
      /rebuild the SFT dataset with blockSize 32/,
    );
  });
});
