import { describe, expect, it } from 'vitest';
import { createSftSampler, createTokenizer, sftExample, sftRow, writeSftTargets } from '../src/index.ts';

describe('SFT rows and mask (mission.md)', () => {
  const tok = createTokenizer('char');

  it('reproduces the mission figure token for token', () => {
    const ex = sftExample(tok, '郭靖是谁?', '郭靖是黄蓉的丈夫。', 16);
    const show = (ids: number[]) => ids.map((id) => tok.tokenToString(id));
    expect(show(ex.x)).toEqual([
      '郭',
      '靖',
      '是',
      '谁',
      '?',
      '[SEP]',
      '郭',
      '靖',
      '是',
      '黄',
      '蓉',
      '的',
      '丈',
      '夫',
      '。',
      '[EOT]',
    ]);
    expect(show(ex.y)).toEqual([
      '靖',
      '是',
      '谁',
      '?',
      '[SEP]',
      '郭',
      '靖',
      '是',
      '黄',
      '蓉',
      '的',
      '丈',
      '夫',
      '。',
      '[EOT]',
      '[EOT]',
    ]);
    expect(ex.mask).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    expect(ex.truncated).toBe(false);
  });

  it('gives the same mask through the batch sampler', () => {
    const ex = sftExample(tok, '郭靖是谁?', '郭靖是黄蓉的丈夫。', 16);
    const sampler = createSftSampler(ex.x, {
      batchSize: 2,
      blockSize: 16,
      seed: 1,
      sepId: tok.sepId,
      eotId: tok.eotId,
    });
    const batch = sampler.next();
    expect(Array.from(batch.x.subarray(16, 32))).toEqual(ex.x);
    expect(Array.from(batch.y.subarray(16, 32))).toEqual(ex.y);
    expect(Array.from(batch.mask!.subarray(16, 32))).toEqual(ex.mask);
  });

  it('pads with eot and masks only answer + first eot in a longer block', () => {
    const ex = sftExample(tok, '问', '答案', 8);
    // x: 问 [SEP] 答 案 [EOT] [EOT] [EOT] [EOT]
    expect(ex.x.map((id) => tok.tokenToString(id))).toEqual([
      '问',
      '[SEP]',
      '答',
      '案',
      '[EOT]',
      '[EOT]',
      '[EOT]',
      '[EOT]',
    ]);
    expect(ex.mask).toEqual([0, 1, 1, 1, 0, 0, 0, 0]);
  });

  it('runs the mask to the end of a truncated row', () => {
    const ex = sftExample(tok, '问题', '一二三四五六七八', 6);
    expect(ex.truncated).toBe(true);
    expect(ex.x.map((id) => tok.tokenToString(id))).toEqual(['问', '题', '[SEP]', '一', '二', '三']);
    expect(ex.mask).toEqual([0, 0, 1, 1, 1, 1]);
    expect(tok.tokenToString(ex.y[5]!)).toBe('[EOT]');
  });

  it('treats an answer that exactly fills the block as complete (its eot is the last target)', () => {
    const ex = sftExample(tok, '问', '一二三四', 6);
    expect(ex.truncated).toBe(false);
    expect(ex.mask).toEqual([0, 1, 1, 1, 1, 1]);
  });

  it('finds [SEP] by id, so "[" or "[SEP]" typed in a question changes nothing', () => {
    const ex = sftExample(tok, 'a[SEP]b', 'c', 12);
    const sepAt = ex.x.indexOf(tok.sepId);
    expect(sepAt).toBe(7);
    expect(ex.mask.indexOf(1)).toBe(7);
    expect(ex.mask.filter((m) => m === 1)).toHaveLength(2); // "c" then the eot
  });

  it('refuses a question that leaves no room for [SEP] and one answer token', () => {
    expect(sftRow([1, 2, 3], [4], 4, 9, 8)).toBeUndefined();
    expect(sftRow([1, 2], [4], 4, 9, 8)).toEqual({ row: [1, 2, 9, 4], truncated: false });
    expect(() => sftExample(tok, '一二三', '答', 4)).toThrow(/question is 3 tokens/);
  });

  it('leaves a row without [SEP] unmasked', () => {
    const y = new Int32Array(4);
    const mask = new Float32Array(4).fill(7);
    writeSftTargets([1, 2, 3, 4], 0, 4, 99, 0, y, mask, 0);
    expect(Array.from(y)).toEqual([2, 3, 4, 0]);
    expect(Array.from(mask)).toEqual([0, 0, 0, 0]);
  });
});
