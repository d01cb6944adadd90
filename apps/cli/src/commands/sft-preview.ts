/**
 * `miniglm sft-preview`: how one Q&A pair becomes a training row — x, y and the loss mask,
 * token by token — so anyone can check the mask by eye.
 */
import { createTokenizer, isTokenizerName, sftExample, TOKENIZER_NAMES } from '@miniglm/data';
import { numberFlag, parseCommandArgs, requireFlag } from '../args.ts';
import { UsageError } from '../errors.ts';

const HELP = `usage: miniglm sft-preview --question Q --answer A [--tokenizer char] [--block N] [--json]

  --question   the question text
  --answer     the answer text
  --tokenizer  ${TOKENIZER_NAMES.join(' | ')} (default char)
  --block      row length in tokens (default 16)
  --json       print {"x": [...], "y": [...], "mask": [...]} instead of a table`;

export async function sftPreview(argv: string[]): Promise<void> {
  const flags = parseCommandArgs(
    'sft-preview',
    argv,
    {
      question: { type: 'string' },
      answer: { type: 'string' },
      tokenizer: { type: 'string', default: 'char' },
      block: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    HELP,
  );
  const question = requireFlag('question', flags.question);
  const answer = requireFlag('answer', flags.answer);
  const name = flags.tokenizer!;
  if (!isTokenizerName(name))
    throw new UsageError(`unknown tokenizer "${name}"; choose one of ${TOKENIZER_NAMES.join(', ')}`);
  const block = numberFlag('block', flags.block, 16, { integer: true, min: 2, max: 65536 });
  const tokenizer = createTokenizer(name);
  const row = sftExample(tokenizer, question, answer, block);
  const x = Array.from(row.x, (id) => tokenizer.tokenToString(id));
  const y = Array.from(row.y, (id) => tokenizer.tokenToString(id));
  const mask = Array.from(row.mask);
  if (flags.json) {
    console.log(JSON.stringify({ x, y, mask }));
    return;
  }
  const width = Math.max(...x.map((s) => s.length), ...y.map((s) => s.length), 1);
  const line = (label: string, cells: (string | number)[]) =>
    `${label.padEnd(6)}${cells.map((c) => String(c).padEnd(width + 1)).join('')}`;
  console.log(line('X:', x));
  console.log(line('Y:', y));
  console.log(line('MASK:', mask));
}
