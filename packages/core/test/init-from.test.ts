/** The initFrom check that miniglm train (a checkpoint file) and submitRun (a stored run) share. */
import { describe, expect, it } from 'vitest';
import { initFromMismatch } from '../src/init-from.ts';
import { parseCurriculum, type Curriculum } from '../src/index.ts';

function curriculum(model: Record<string, unknown>): Curriculum {
  const r = parseCurriculum({
    name: 'branch',
    tokenizer: { name: 'char' },
    model,
    stages: [{ name: 'pre', kind: 'pretrain', dataset: { source: 'a.txt' }, iterations: 1, batchSize: 1 }],
  });
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

describe('initFromMismatch', () => {
  const gpt = { kind: 'gpt', layers: 2, heads: 2, dim: 16, blockSize: 32 };

  it('accepts the same architecture and tokenizer', () => {
    expect(initFromMismatch(curriculum(gpt), { model: gpt, tokenizer: 'char' }, 'x.ckpt')).toBeUndefined();
  });

  it('names the first field that differs, and where the checkpoint is', () => {
    expect(initFromMismatch(curriculum(gpt), { model: { ...gpt, dim: 32 }, tokenizer: 'char' }, 'x.ckpt')).toBe(
      "/model/dim: 16 differs from the initFrom checkpoint's 32 (x.ckpt)",
    );
    expect(initFromMismatch(curriculum(gpt), { model: gpt, tokenizer: 'r50k_base' }, 'x.ckpt')).toBe(
      "/tokenizer/name: char differs from the initFrom checkpoint's r50k_base",
    );
  });

  it('compares only the fields both sides have (an LSTM has no heads)', () => {
    const lstm = { kind: 'lstm', layers: 2, dim: 16, blockSize: 32 };
    expect(
      initFromMismatch(curriculum(lstm), { model: { ...lstm, heads: 4 }, tokenizer: 'char' }, 'x'),
    ).toBeUndefined();
  });
});
