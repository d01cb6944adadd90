/**
 * A run's error text is read by people: one line, no stack, no library source. Prisma's
 * errors carry a code frame of the call site, which in its bundled runtime is a few KB of
 * minified JavaScript; the reason is the message's last line, or the database's own words in
 * `meta`. Everything else is reduced to its message on one line, with a cap on its length.
 */

const MAX_LENGTH = 500;

interface PrismaLikeError {
  name: string;
  message: string;
  code?: string;
  meta?: { modelName?: string; driverAdapterError?: { cause?: { originalMessage?: string } } };
}

/** Prisma's client errors, and its driver adapter's (a database error Prisma has no code for). */
export function isPrismaError(error: unknown): error is PrismaLikeError {
  return error instanceof Error && (error.name.startsWith('PrismaClient') || error.name === 'DriverAdapterError');
}

/** `error` in words for a run's error text. */
export function plainError(error: unknown): string {
  if (isPrismaError(error)) {
    const reason = error.meta?.driverAdapterError?.cause?.originalMessage ?? lastLine(error.message);
    const on = error.meta?.modelName ? ` (${error.meta.modelName})` : '';
    const code = error.code ? `, Prisma ${error.code}` : '';
    return cap(`database error${on}: ${oneLine(reason)}${code}`);
  }
  return plainMessage(error instanceof Error ? error.message : String(error));
}

/** A message as text (a job's failedReason, say): a Prisma call-site frame is cut, lines joined. */
export function plainMessage(message: string): string {
  const text = /Invalid `[^`]*` invocation/.test(message) ? `database error: ${lastLine(message)}` : message;
  return cap(oneLine(text));
}

function lastLine(text: string): string {
  return (
    text
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
      .at(-1) ?? text
  );
}

/** Lines joined, stack frames ("at f (file:1:2)") left out, spaces collapsed. */
function oneLine(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/^\s*at\s.+(:\d+:\d+\)?|<anonymous>\)?)$/.test(line))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
}

function cap(text: string): string {
  return text.length <= MAX_LENGTH ? text : `${text.slice(0, MAX_LENGTH - 1)}…`;
}
