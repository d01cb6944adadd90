/**
 * Recognising the database errors that callers handle as an answer rather than a failure.
 * Prisma reports them by its own code, plain SQL (`db.sql`) by Postgres's SQLSTATE; PGlite's
 * errors get Prisma's codes through pglite-adapter.ts.
 */

/**
 * A row still refers to what a statement deleted, or a row was written naming one that is
 * gone: Prisma's P2003, Postgres's foreign_key_violation (23503) or restrict_violation (23001).
 */
export function isForeignKeyViolation(error: unknown): boolean {
  const code = String((error as { code?: unknown } | null)?.code);
  return code === 'P2003' || code === '23503' || code === '23001';
}
