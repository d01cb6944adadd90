import { describe, expect, it } from 'vitest';
import {
  buildCompactVocab,
  collectCompactVocab,
  COMPACT_RESERVED,
  createTokenizer,
  DataError,
  TOKENIZER_NAMES,
  VocabCounter,
  type Tokenizer,
} from '../src/index.ts';

const SAMPLES = [
  '床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。',
  'Emoji 😀 and a family 👩‍👩‍👧 and flags 🇨🇳',
  'mixed ASCII: def f(x): return x ** 2  # 平方\n\ttabs\r\nand CRLF',
  '[SEP]',
  '<|endoftext|>',
  'question[SEP]answer<|endoftext|>more',
  '𠀀𪚥 rare CJK Extension B, ǅ, e\u0301, \u0000 nul',
  '',
  '龘',
];
const CORPUS = ['床前明月光，疑是地上霜。', 'hello world', '郭靖是黄蓉的丈夫。'];

function roundTrips(tok: Tokenizer): void {
  for (const text of SAMPLES) {
    const ids = tok.encode(text);
    expect(tok.decode(ids), `${tok.spec.name} ${JSON.stringify(text)}`).toBe(text);
    expect(ids).not.toContain(tok.sepId);
    expect(ids).not.toContain(tok.eotId);
    for (const id of ids) expect(id).toBeLessThan(tok.vocabSize);
  }
}

describe.each(TOKENIZER_NAMES)('%s tokenizer', (name) => {
  const full = createTokenizer(name);
  const compact = createTokenizer(buildCompactVocab(name, CORPUS));

  it('round-trips CJK, emoji, ASCII and special-token spellings (full vocabulary)', () => roundTrips(full));
  it('round-trips the same with a compact vocabulary, unseen text included', () => roundTrips(compact));

  it('has distinct special ids that print as [SEP] and [EOT] and decode to nothing', () => {
    // BPE: sep is a new id one past the largest base id (char fixes it at 257).
    if (name !== 'char') expect(full.sepId).toBe(full.vocabSize - 1);
    expect(full.eotId).not.toBe(full.sepId);
    expect(full.tokenToString(full.sepId)).toBe('[SEP]');
    expect(full.tokenToString(full.eotId)).toBe('[EOT]');
    expect(full.decode([full.eotId, full.sepId])).toBe('');
  });

  it('lays the compact vocabulary out as [eot, sep, 256 bytes, corpus ids sorted]', () => {
    const vocab = compact.spec.vocab!;
    expect(compact.eotId).toBe(0);
    expect(compact.sepId).toBe(1);
    expect(vocab[0]).toBe(full.eotId);
    expect(vocab[1]).toBe(full.sepId);
    const rest = vocab.slice(COMPACT_RESERVED);
    expect(rest).toEqual([...rest].sort((a, b) => a - b));
    expect(compact.vocabSize).toBe(vocab.length);
    expect(compact.vocabSize).toBeLessThan(700);
    // Corpus text maps to corpus tokens, with no byte fallback.
    for (const text of CORPUS) {
      expect(compact.encode(text).every((id) => id >= COMPACT_RESERVED || compact.decode([id]).length === 1)).toBe(
        true,
      );
      expect(compact.encode(text)).toHaveLength(full.encode(text).length);
    }
    expect(compact.tokenToString(0)).toBe('[EOT]');
    expect(compact.tokenToString(1)).toBe('[SEP]');
  });

  it('builds the same vocabulary incrementally', async () => {
    const counter = new VocabCounter(name);
    for (const text of CORPUS) counter.addText(text);
    expect(buildCompactVocab(name, counter)).toEqual(compact.spec);
    expect(
      await collectCompactVocab(
        name,
        (async function* () {
          yield* CORPUS;
        })(),
      ),
    ).toEqual(compact.spec);
  });

  it('rejects ids outside the vocabulary with a DataError', () => {
    expect(() => full.decode([full.vocabSize])).toThrow(DataError);
    expect(() => compact.decode([compact.vocabSize + 5])).toThrow(/not in the compact/);
  });
});

describe('tokenizer details', () => {
  it('char: one token per code point, ids 258 + code point', () => {
    const tok = createTokenizer('char');
    expect(tok.encode('a😀中')).toEqual([258 + 0x61, 258 + 0x1f600, 258 + 0x4e2d]);
    expect(tok.eotId).toBe(256);
    expect(tok.sepId).toBe(257);
    expect(tok.tokenToString(258 + 0x1f600)).toBe('😀');
  });

  it('char compact falls back to UTF-8 bytes for unseen characters', () => {
    const tok = createTokenizer(buildCompactVocab('char', ['abc']));
    const ids = tok.encode('a😀');
    expect(ids).toHaveLength(1 + 4); // "a" plus four byte tokens
    expect(tok.decode(ids)).toBe('a😀');
    expect(tok.tokenToString(ids[1]!)).toBe('<0xF0>');
  });

  it('r50k_base: GPT-2 ids, "<|endoftext|>" typed as text is several tokens', () => {
    const tok = createTokenizer('r50k_base');
    expect(tok.eotId).toBe(50256);
    expect(tok.sepId).toBe(50257);
    expect(tok.vocabSize).toBe(50258);
    expect(tok.encode('<|endoftext|>').length).toBeGreaterThan(1);
    expect(tok.encode('hello world')).toEqual([31373, 995]);
  });

  it('BPE decode joins byte pieces that split a character across tokens', () => {
    const tok = createTokenizer('r50k_base');
    const ids = tok.encode('😀');
    expect(ids.length).toBeGreaterThan(1);
    expect(tok.decode(ids)).toBe('😀');
    expect(tok.decode(ids.slice(0, 1))).toBe('\uFFFD'); // a lone piece decodes once, as U+FFFD
  });

  it('rejects a corrupt compact vocabulary with the entry named', () => {
    const spec = buildCompactVocab('r50k_base', ['hi']);
    const broken = { ...spec, vocab: [...spec.vocab!] };
    broken.vocab[0] = 5;
    expect(() => createTokenizer(broken)).toThrow(/entry 0 must be eot/);
    expect(() => createTokenizer({ name: 'char', vocab: [256, 257, 1] })).toThrow(/at least 258 entries/);
    expect(() => createTokenizer('gpt5' as never)).toThrow(/unknown tokenizer "gpt5"; valid: r50k_base/);
  });
});
