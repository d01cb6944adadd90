/**
 * pglite-prisma-adapter 0.6 (the release for Prisma 6) was written against Prisma 6.10's
 * driver-adapter interface. Prisma 6.19's query compiler sends some arguments encoded,
 * with their type in `argTypes`: Bytes as a base64 string, lists of bytes as arrays of
 * numbers. The adapter ignores argTypes and hands the string to PGlite, which refuses it
 * ("Invalid input for bytea type"). And it reports every database error as a plain
 * "postgres" error, so a unique violation is not Prisma's P2002 as it is on a server.
 * This shim decodes those arguments and classifies those errors on every query, including
 * queries inside transactions, so that code behaves the same on PGlite and on a server;
 * everything else passes through unchanged.
 */
import type { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';

interface ArgType {
  scalarType: string;
  arity?: string;
}
interface SqlQuery {
  sql: string;
  args: unknown[];
  argTypes?: ArgType[];
}

/** A driver adapter factory for `new PrismaClient({ adapter })`; typed by the caller. */
export function pgliteAdapterFactory(pglite: PGlite): unknown {
  return wrap(new PrismaPGlite(pglite));
}

const QUERY_METHODS = new Set(['queryRaw', 'executeRaw']);
const WRAPPED_RESULTS = new Set(['connect', 'connectToShadowDb', 'startTransaction']);

/** Proxies an adapter object: decodes query arguments and wraps the connections and transactions it hands out. */
function wrap<T extends object>(target: T): T {
  return new Proxy(target, {
    get(obj, key, receiver) {
      const value: unknown = Reflect.get(obj, key, receiver);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (typeof key === 'string' && QUERY_METHODS.has(key)) {
        return async (query: SqlQuery) => {
          try {
            return await method.call(obj, {
              ...query,
              args: query.args.map((a, i) => decodeArg(a, query.argTypes?.[i])),
            });
          } catch (error) {
            throw classify(error);
          }
        };
      }
      if (typeof key === 'string' && WRAPPED_RESULTS.has(key)) {
        return async (...args: unknown[]) => wrap((await method.apply(obj, args)) as object);
      }
      return method.bind(obj);
    },
  });
}

function decodeArg(arg: unknown, type: ArgType | undefined): unknown {
  if (arg === null || arg === undefined || type?.scalarType !== 'bytes') return arg;
  if (type.arity === 'list' && Array.isArray(arg) && arg.every((a) => typeof a === 'string' || a === null)) {
    return arg.map((a) => decodeArg(a, { scalarType: 'bytes' }));
  }
  if (typeof arg === 'string') return Buffer.from(arg, 'base64');
  if (Array.isArray(arg)) return Uint8Array.from(arg as number[]);
  return arg;
}

interface PostgresCause {
  kind: string;
  code?: string;
  message?: string;
  detail?: string;
  column?: string;
}

/**
 * Gives a database error the kind Prisma maps to its own codes (P2002 unique, P2003 foreign
 * key, P2011 null, P2034 write conflict, ...), as @prisma/adapter-pg does on a server.
 */
function classify(error: unknown): unknown {
  const e = error as { name?: string; cause?: PostgresCause };
  const cause = e?.cause;
  if (e?.name !== 'DriverAdapterError' || cause?.kind !== 'postgres' || !cause.code) return error;
  const fields = cause.detail?.match(/Key \(([^)]+)\)/)?.[1]?.split(', ');
  const kinds: Record<string, object> = {
    '23505': { kind: 'UniqueConstraintViolation', constraint: fields ? { fields } : undefined },
    '23502': { kind: 'NullConstraintViolation', constraint: cause.column ? { fields: [cause.column] } : undefined },
    '23503': {
      kind: 'ForeignKeyConstraintViolation',
      constraint: cause.column ? { fields: [cause.column] } : undefined,
    },
    '22001': { kind: 'LengthMismatch', column: cause.column },
    '22003': { kind: 'ValueOutOfRange', cause: cause.message },
    '40001': { kind: 'TransactionWriteConflict' },
  };
  const mapped = kinds[cause.code];
  if (mapped) (e as { cause: unknown }).cause = { originalCode: cause.code, originalMessage: cause.message, ...mapped };
  return error;
}
