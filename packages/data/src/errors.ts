/**
 * The one error class of the data package. Its message is a single line a user can act on:
 * it names the file (and line or item) and the field or value at fault, so the CLI and the
 * API can show it as is, without a stack trace.
 */
export class DataError extends Error {
  override readonly name = 'DataError';

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
