/**
 * ROUGE-L: precision, recall and F-beta of the longest common subsequence between a
 * candidate and a reference. Chinese, Japanese and Korean text is compared character by
 * character (it has no spaces between words); other text word by word, lower-cased, with
 * punctuation as separators. Mixed text mixes both.
 */
export interface RougeScore {
  precision: number;
  recall: number;
  f: number;
}

// One unit per Han, Hiragana, Katakana or Hangul character; otherwise runs of letters and digits.
const CJK = '\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}\\p{Script=Hangul}';
const UNITS = new RegExp(`[${CJK}]|(?:(?![${CJK}])[\\p{L}\\p{N}_'])+`, 'gu');

/** The units ROUGE-L compares: CJK characters and lower-cased words; punctuation is dropped. */
export function rougeTokens(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(UNITS) ?? [];
}

export function lcsLength<T>(a: readonly T[], b: readonly T[]): number {
  // One row of the dynamic-programming table at a time: O(|a|·|b|) time, O(|b|) memory.
  let prev = new Array<number>(b.length + 1).fill(0);
  let curr = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      curr[j] = a[i - 1] === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, curr[j - 1]!);
    }
    [prev, curr] = [curr, prev];
  }
  return prev[b.length]!;
}

/** ROUGE-L of one candidate against one reference; beta = 1 weighs precision and recall equally. */
export function rougeL(candidate: string, reference: string, beta = 1): RougeScore {
  const c = rougeTokens(candidate);
  const r = rougeTokens(reference);
  if (c.length === 0 || r.length === 0) return { precision: 0, recall: 0, f: 0 };
  const lcs = lcsLength(c, r);
  const precision = lcs / c.length;
  const recall = lcs / r.length;
  const b2 = beta * beta;
  const f = precision + recall === 0 ? 0 : ((1 + b2) * precision * recall) / (recall + b2 * precision);
  return { precision, recall, f };
}

/** Mean of each field over several pairs. */
export function meanRouge(scores: RougeScore[]): RougeScore {
  const n = Math.max(scores.length, 1);
  const sum = (k: keyof RougeScore) => scores.reduce((s, x) => s + x[k], 0) / n;
  return { precision: sum('precision'), recall: sum('recall'), f: sum('f') };
}
