/**
 * Errors a user can act on, and the one test that tells them from bugs and outages.
 *
 * A UserError is a failure that retrying cannot fix and whose message, one line, says what is
 * wrong in the user's own terms (the file, field, value or number at fault). The CLI prints
 * it without a stack trace; the worker fails the run at once instead of retrying the job.
 * Everything else (a lost connection, a killed process, a bug) is not one: the worker
 * retries it and the CLI reports it as an internal error.
 *
 * It lives here, in the lowest package, so every package can extend it. The family:
 *   DataError               @miniglm/data   a corpus, tokenizer or dataset is not usable (below)
 *   ConfigError             @miniglm/model  config.ts: a model config the model cannot take
 *   CheckpointError         @miniglm/model  checkpoint.ts: a file that is not a readable checkpoint
 *   ModelInputError         @miniglm/model  model.ts: input the model cannot take (too long, ...)
 *   BackendError            @miniglm/model  backend/select.ts: a backend that cannot be loaded
 *   MemoryLimitError        @miniglm/model  memory.ts: training that would not fit in memory
 *   CurriculumError         @miniglm/core   curriculum-file.ts: a curriculum that cannot run
 *   ArtifactIntegrityError  @miniglm/core   db/artifacts.ts: stored bytes that do not match their sha256
 *   LocalRedisError         @miniglm/core   service/local-redis.ts: the demo's private Redis cannot start
 *   SettingError            @miniglm/core   service/settings.ts: a MINIGLM_* setting it cannot take
 *   KeylessExposureError    the API         apps/api/src/server.ts: no API key, and an address beyond loopback
 *   UsageError, TrainingError  the CLI      apps/cli/src/errors.ts: a bad command line, a diverged stage
 */

// Symbol.for gives the same symbol to every copy of this module (two installs, a bundle),
// where `instanceof UserError` would answer false for an error made by the other copy.
const USER_ERROR = Symbol.for('miniglm.UserError');

export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    // The subclass's own name, so logs say "CheckpointError", not "Error" (as BullMQ's errors do).
    this.name = new.target.name;
  }
}
// On the prototype: every subclass, from any copy of this module, carries it.
Object.defineProperty(UserError.prototype, USER_ERROR, { value: true });

/**
 * True for an error a user can act on (see UserError). Classify errors in the process that
 * caught them: an error sent to another process arrives as plain data without the brand, so
 * a child says what it was alongside the message (the worker's training child does).
 */
export function isUserError(error: unknown): error is UserError {
  return typeof error === 'object' && error !== null && (error as { [USER_ERROR]?: unknown })[USER_ERROR] === true;
}

/**
 * The one error class of the data package. Its message is a single line a user can act on:
 * it names the file (and line or item) and the field or value at fault, so the CLI and the
 * API can show it as is, without a stack trace.
 */
export class DataError extends UserError {
  constructor(message: string, options?: { cause?: unknown }) {
    // Keep messages to one line so they read well in logs and HTTP error bodies.
    super(message.replace(/\s*\n\s*/g, ' '), options);
  }
}

/** A short, one-line description of something thrown by a library we call. */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s*\n\s*/g, ' ');
}
