/**
 * Turning failures into one line a user can act on. User errors (isUserError: every package's
 * own kinds, listed in packages/data/src/errors.ts) carry messages written for users; anything
 * else is a bug, reported with a hint to get the stack.
 */
import { isUserError, UserError } from '@miniglm/data';

/** A bad command line: wrong flags, missing arguments. */
export class UsageError extends UserError {}

/** A stage that could not go on (its loss became NaN): the message says what was kept. */
export class TrainingError extends UserError {}

export function describeFailure(error: unknown): string {
  if (isUserError(error)) return error.message;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'ENOSPC') return (error as Error).message;
  const message = error instanceof Error ? error.message : String(error);
  // What the wasm backend says when its 4 GB heap runs out (or a tensor is too large for it).
  if (/memory access out of bounds|Cannot allocate Wasm memory|Out of memory/i.test(message))
    return `out of memory in the TensorFlow.js backend (${message.split('\n')[0]}); use a smaller batchSize, blockSize or model`;
  return process.env.MINIGLM_DEBUG
    ? (error instanceof Error && error.stack) || message
    : `${message.split('\n')[0]} (internal error; run with MINIGLM_DEBUG=1 for a stack trace)`;
}
