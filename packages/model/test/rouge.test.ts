/**
 * ROUGE-L (src/rouge.ts) against values computed by hand: LCS, precision = LCS/|candidate|,
 * recall = LCS/|reference|, F-beta = (1 + β²)·P·R / (R + β²·P).
 */
import { describe, expect, it } from 'vitest';
import { lcsLength, meanRouge, rougeL, rougeTokens } from '../src/index.ts';

describe('rougeTokens', () => {
  it('splits CJK text into characters, other text into lower-cased words, and drops punctuation', () => {
    expect(rougeTokens('郭靖是谁？')).toEqual(['郭', '靖', '是', '谁']);
    expect(rougeTokens('The Cat, sat!  On the mat.')).toEqual(['the', 'cat', 'sat', 'on', 'the', 'mat']);
    expect(rougeTokens('GPT模型很小')).toEqual(['gpt', '模', '型', '很', '小']);
    expect(rougeTokens("don't stop...")).toEqual(["don't", 'stop']);
    expect(rougeTokens('，。！？…')).toEqual([]);
    // Full-width letters and digits are folded (NFKC) before matching.
    expect(rougeTokens('ＡＢＣ１２３')).toEqual(['abc123']);
  });
});

describe('lcsLength', () => {
  it('matches hand-computed longest common subsequences', () => {
    expect(lcsLength([...'ABCBDAB'], [...'BDCABA'])).toBe(4); // e.g. BCBA
    expect(lcsLength([...'郭靖是谁'], [...'郭靖是黄蓉的丈夫'])).toBe(3);
    expect(lcsLength([...'abc'], [...'xyz'])).toBe(0);
    expect(lcsLength([], [...'abc'])).toBe(0);
    expect(lcsLength([...'abc'], [])).toBe(0);
    expect(lcsLength([...'aaaa'], [...'aa'])).toBe(2);
    expect(lcsLength([...'xaybzc'], [...'abc'])).toBe(3);
  });
});

describe('rougeL', () => {
  it('Chinese, character level: 郭靖是谁 vs 郭靖是黄蓉的丈夫 → LCS 3, P 3/4, R 3/8, F1 0.5', () => {
    const s = rougeL('郭靖是谁', '郭靖是黄蓉的丈夫');
    expect(s.precision).toBeCloseTo(3 / 4, 12);
    expect(s.recall).toBeCloseTo(3 / 8, 12);
    expect(s.f).toBeCloseTo(0.5, 12);
  });

  it('English, word level: LCS "the fox jumps" → P 3/5, R 3/7, F1 0.5', () => {
    // candidate: the quick brown fox jumps (5); reference: the fox jumps quickly over the dog (7)
    const s = rougeL('The quick brown fox jumps', 'the fox jumps quickly over the dog');
    expect(s.precision).toBeCloseTo(3 / 5, 12);
    expect(s.recall).toBeCloseTo(3 / 7, 12);
    expect(s.f).toBeCloseTo((2 * (3 / 5) * (3 / 7)) / (3 / 5 + 3 / 7), 12);
    expect(s.f).toBeCloseTo(0.5, 12);
  });

  it('English, word level, equal lengths: "the cat sat on the mat" vs "the cat is on the mat" → 5/6', () => {
    const s = rougeL('The cat sat on the mat.', 'the cat is on the mat');
    expect(s).toEqual({ precision: 5 / 6, recall: 5 / 6, f: expect.closeTo(5 / 6, 12) });
  });

  it('identical strings score 1', () => {
    expect(rougeL('李白。', '李白。')).toEqual({ precision: 1, recall: 1, f: 1 });
    expect(rougeL('Hello there, world', 'Hello there, world')).toEqual({ precision: 1, recall: 1, f: 1 });
  });

  it('empty or punctuation-only input scores 0', () => {
    const zero = { precision: 0, recall: 0, f: 0 };
    expect(rougeL('', '郭靖')).toEqual(zero);
    expect(rougeL('郭靖', '')).toEqual(zero);
    expect(rougeL('', '')).toEqual(zero);
    expect(rougeL('。！', '郭靖')).toEqual(zero);
  });

  it('no common unit scores 0', () => {
    expect(rougeL('黄蓉', '郭靖')).toEqual({ precision: 0, recall: 0, f: 0 });
  });

  it('punctuation and case are ignored', () => {
    expect(rougeL('郭靖，是谁？', '郭靖是谁')).toEqual({ precision: 1, recall: 1, f: 1 });
    expect(rougeL('Hello, WORLD!', 'hello world')).toEqual({ precision: 1, recall: 1, f: 1 });
    expect(rougeL('《静夜思》的作者是李白。', '静夜思的作者是李白').f).toBe(1);
  });

  it('beta ≠ 1 uses F = (1 + β²)·P·R / (R + β²·P)', () => {
    // P = 3/4, R = 3/8.
    const f = (beta: number) => ((1 + beta * beta) * (3 / 4) * (3 / 8)) / (3 / 8 + beta * beta * (3 / 4));
    expect(f(2)).toBeCloseTo(1.40625 / 3.375, 12); // ≈ 0.4167, by hand
    for (const beta of [0.5, 2, 3]) {
      const s = rougeL('郭靖是谁', '郭靖是黄蓉的丈夫', beta);
      expect(s.precision).toBeCloseTo(3 / 4, 12);
      expect(s.recall).toBeCloseTo(3 / 8, 12);
      expect(s.f).toBeCloseTo(f(beta), 12);
    }
    // Large beta weighs recall, small beta weighs precision.
    expect(rougeL('郭靖是谁', '郭靖是黄蓉的丈夫', 100).f).toBeCloseTo(3 / 8, 3);
    expect(rougeL('郭靖是谁', '郭靖是黄蓉的丈夫', 0.01).f).toBeCloseTo(3 / 4, 3);
  });

  it('meanRouge averages each field', () => {
    const m = meanRouge([rougeL('郭靖是谁', '郭靖是黄蓉的丈夫'), rougeL('李白', '李白')]);
    expect(m.precision).toBeCloseTo((0.75 + 1) / 2, 12);
    expect(m.recall).toBeCloseTo((0.375 + 1) / 2, 12);
    expect(m.f).toBeCloseTo((0.5 + 1) / 2, 12);
    expect(meanRouge([])).toEqual({ precision: 0, recall: 0, f: 0 });
  });
});
