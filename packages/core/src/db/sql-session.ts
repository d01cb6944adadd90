/**
 * The few raw SQL operations the migration runner needs, over either a Postgres server (one
 * `pg` connection, so session state such as an advisory lock and BEGIN/COMMIT stay on it)
 * or an embedded PGlite. Prisma is not used here: its raw-SQL path sends a script as one
 * prepared statement, which Postgres refuses for a migration of many statements.
 */
import type { PGlite, Transaction as PGliteTransaction } from '@electric-sql/pglite';
import pg from 'pg';

export interface SqlSession {
  /** One statement with $1.. parameters; returns the rows. */
  query<R extends object = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** A script of any number of statements (simple query protocol, no parameters). */
  exec(script: string): Promise<void>;
  /** Runs `fn` inside BEGIN .. COMMIT, rolling back when it throws. */
  transaction<T>(fn: (session: SqlSession) => Promise<T>): Promise<T>;
}

/** A session on its own connection to a Postgres server; `close` ends that connection. */
export async function openPgSession(url: string): Promise<SqlSession & { close(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  // A dropped connection would otherwise surface as an unhandled 'error' event.
  client.on('error', () => {});
  await client.connect();
  const session: SqlSession & { close(): Promise<void> } = {
    async query<R extends object>(sql: string, params: unknown[] = []) {
      return (await client.query(sql, params)).rows as R[];
    },
    async exec(script) {
      // No parameters: pg uses the simple protocol, which accepts many statements.
      await client.query(script);
    },
    async transaction(fn) {
      await client.query('BEGIN');
      try {
        const result = await fn(session);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    },
    async close() {
      await client.end();
    },
  };
  return session;
}

/** A session over an open PGlite (which is a single connection already). */
export function pgliteSession(db: PGlite | PGliteTransaction): SqlSession {
  return {
    async query<R extends object>(sql: string, params: unknown[] = []) {
      return (await db.query<R>(sql, params)).rows;
    },
    async exec(script) {
      await db.exec(script);
    },
    async transaction(fn) {
      if (!('transaction' in db)) return fn(pgliteSession(db)); // already inside one
      return db.transaction((tx) => fn(pgliteSession(tx)));
    },
  };
}
