/**
 * SFT rows, targets and loss mask, exactly as mission.md specifies:
 *
 *   row  = encode(question) [SEP] encode(answer) [EOT], cut to blockSize or padded with EOT
 *   x    = the row
 *   y    = x shifted left by one, with one EOT appended
 *   mask = 1 from the position whose target is the first answer token through the position
 *          whose target is the first EOT after the answer (inclusive), 0 elsewhere; when the
 *          answer was cut and no EOT follows it, through the last position.
 *
 * Positions come from each row's own [SEP] (the first sep id in the row: encode never
 * produces it, so it cannot hide inside a question), never from searching for text.
 */
import { DataError } from '../errors.ts';
import type { Tokenizer } from '../types.ts';

export interface SftRow {
  row: number[];
  /** The answer (with its EOT) did not fit: q + [SEP] + a is longer than the block. */
  truncated: boolean;
}

/**
 * The row for one pair, or undefined when the question leaves no room for [SEP] and at least
 * one answer token. An answer that exactly fills the block is not truncated: its EOT is the
 * appended target y[T-1].
 */
export function sftRow(
  question: readonly number[],
  answer: readonly number[],
  blockSize: number,
  sepId: number,
  eotId: number,
): SftRow | undefined {
  if (question.length + 2 > blockSize) return undefined;
  const full = [...question, sepId, ...answer];
  const truncated = full.length > blockSize;
  const row = full.slice(0, blockSize);
  while (row.length < blockSize) row.push(eotId);
  return { row, truncated };
}

/**
 * Writes y and mask for one row of x (length T at xOffset) into y/mask at outOffset. Used by
 * the batch sampler (straight into batch arrays) and by sftExample.
 */
export function writeSftTargets(
  x: ArrayLike<number>,
  xOffset: number,
  blockSize: number,
  sepId: number,
  eotId: number,
  y: Int32Array,
  mask: Float32Array,
  outOffset: number,
): void {
  const T = blockSize;
  let sep = -1;
  for (let t = 0; t < T; t++) {
    y[outOffset + t] = t + 1 < T ? x[xOffset + t + 1]! : eotId;
    mask[outOffset + t] = 0;
    if (sep < 0 && x[xOffset + t] === sepId) sep = t;
  }
  if (sep < 0) return; // not an SFT row: nothing to learn from
  // y[sep] is the first answer token; go until the first target that is an EOT.
  for (let t = sep; t < T; t++) {
    mask[outOffset + t] = 1;
    if (y[outOffset + t] === eotId) break;
  }
}

export interface SftExample {
  x: number[];
  y: number[];
  mask: number[];
  truncated: boolean;
}

/** One pair as the model sees it (for previews such as the CLI's sft-preview). */
export function sftExample(tokenizer: Tokenizer, question: string, answer: string, blockSize: number): SftExample {
  if (!(Number.isInteger(blockSize) && blockSize >= 2))
    throw new DataError(`blockSize must be an integer >= 2, got ${blockSize}`);
  const q = tokenizer.encode(question);
  const built = sftRow(q, tokenizer.encode(answer), blockSize, tokenizer.sepId, tokenizer.eotId);
  if (!built) {
    throw new DataError(
      `question is ${q.length} tokens; with [SEP] and one answer token it needs ${q.length + 2}, more than blockSize ${blockSize}`,
    );
  }
  const y = new Int32Array(blockSize);
  const mask = new Float32Array(blockSize);
  writeSftTargets(built.row, 0, blockSize, tokenizer.sepId, tokenizer.eotId, y, mask, 0);
  return { x: built.row, y: Array.from(y), mask: Array.from(mask), truncated: built.truncated };
}
