/**
 * `miniglm sft-preview`: one Q&A pair as a training row. The char case must reproduce the
 * figure of mission.md token for token; with GPT-2 BPE the separator must be one real special
 * token, never the text "[SEP]" typed by a user.
 */
import { describe, expect, it } from 'vitest';
import { expectSuccess, runCli, useTempDir } from './helpers.ts';

const tmp = useTempDir('sft-preview');

interface Preview {
  x: string[];
  y: string[];
  mask: number[];
}

async function preview(question: string, answer: string, tokenizer: string, block: number, json = true) {
  const r = await runCli(
    [
      'sft-preview',
      '--question',
      question,
      '--answer',
      answer,
      '--tokenizer',
      tokenizer,
      '--block',
      String(block),
      ...(json ? ['--json'] : []),
    ],
    tmp(),
  );
  expectSuccess(r);
  expect(r.stderr).toBe('');
  return r;
}

/** The structural rules of mission.md, for any tokenizer. */
function checkRowRules(p: Preview, block: number): { sep: number; firstEot: number } {
  expect(p.x).toHaveLength(block);
  expect(p.y).toHaveLength(block);
  expect(p.mask).toHaveLength(block);
  // y is x shifted left by one, with one [EOT] appended.
  expect(p.y.slice(0, -1)).toEqual(p.x.slice(1));
  expect(p.y.at(-1)).toBe('[EOT]');
  const sep = p.x.indexOf('[SEP]');
  expect(sep).toBeGreaterThan(0);
  // The first answer token is the target at the [SEP] position; the mask runs from there
  // through the position whose target is the first [EOT] after the answer, inclusive.
  const firstEot = p.y.indexOf('[EOT]', sep);
  expect(firstEot).toBeGreaterThan(sep);
  expect(p.mask).toEqual(p.mask.map((_, i) => (i >= sep && i <= firstEot ? 1 : 0)));
  // Padding after the answer is [EOT] only.
  expect(new Set(p.x.slice(firstEot + 1))).toEqual(new Set(p.x.length > firstEot + 1 ? ['[EOT]'] : []));
  return { sep, firstEot };
}

describe('miniglm sft-preview', () => {
  it('prints the mission.md figure exactly (char tokenizer, block 16, --json)', async () => {
    const r = await preview('郭靖是谁?', '郭靖是黄蓉的丈夫。', 'char', 16);
    const expected: Preview = {
      x: ['郭', '靖', '是', '谁', '?', '[SEP]', '郭', '靖', '是', '黄', '蓉', '的', '丈', '夫', '。', '[EOT]'],
      y: ['靖', '是', '谁', '?', '[SEP]', '郭', '靖', '是', '黄', '蓉', '的', '丈', '夫', '。', '[EOT]', '[EOT]'],
      mask: [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0],
    };
    // Exactly one JSON line, in this key order.
    expect(r.stdout).toBe(`${JSON.stringify(expected)}\n`);
    checkRowRules(JSON.parse(r.stdout) as Preview, 16);
  });

  it('prints the same row as the X / Y / MASK table of the README without --json', async () => {
    const r = await preview('郭靖是谁?', '郭靖是黄蓉的丈夫。', 'char', 16, false);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    const cells = (line: string, label: string) => {
      expect(line.startsWith(label)).toBe(true);
      return line.slice(label.length).trim().split(/\s+/);
    };
    expect(cells(lines[0]!, 'X:')).toEqual('郭 靖 是 谁 ? [SEP] 郭 靖 是 黄 蓉 的 丈 夫 。 [EOT]'.split(' '));
    expect(cells(lines[1]!, 'Y:')).toEqual('靖 是 谁 ? [SEP] 郭 靖 是 黄 蓉 的 丈 夫 。 [EOT] [EOT]'.split(' '));
    expect(cells(lines[2]!, 'MASK:')).toEqual('0 0 0 0 0 1 1 1 1 1 1 1 1 1 1 0'.split(' '));
  });

  it('uses one real [SEP] token with r50k_base (GPT-2 BPE)', async () => {
    const p = JSON.parse((await preview('郭靖是谁?', '郭靖是黄蓉的丈夫。', 'r50k_base', 64)).stdout) as Preview;
    expect(p.x.filter((t) => t === '[SEP]')).toHaveLength(1);
    expect(p.y.filter((t) => t === '[SEP]')).toHaveLength(1);
    const { sep, firstEot } = checkRowRules(p, 64);
    // BPE splits these Chinese characters into byte tokens: more tokens than characters,
    // yet the answer is complete (not truncated) in a 64-token row.
    expect(sep).toBeGreaterThan('郭靖是谁?'.length);
    expect(firstEot - sep).toBeGreaterThan('郭靖是黄蓉的丈夫。'.length);
    expect(p.x[firstEot]).not.toBe('[EOT]');
    expect(p.x[firstEot + 1]).toBe('[EOT]');
  });

  it('does not turn "[SEP]" typed inside the question into a separator', async () => {
    for (const tokenizer of ['r50k_base', 'char']) {
      const question = 'who is [SEP] 郭靖?';
      const p = JSON.parse((await preview(question, '郭靖是黄蓉的丈夫。', tokenizer, 64)).stdout) as Preview;
      expect(
        p.x.filter((t) => t === '[SEP]'),
        tokenizer,
      ).toHaveLength(1);
      const { sep } = checkRowRules(p, 64);
      // The typed text survives as ordinary tokens before the one real separator.
      expect(p.x.slice(0, sep).join(''), tokenizer).toContain('[SEP]');
      expect(p.x.slice(0, sep).length, tokenizer).toBeGreaterThan(1);
      expect(
        p.mask.slice(0, sep).every((m) => m === 0),
        tokenizer,
      ).toBe(true);
    }
  });
});
