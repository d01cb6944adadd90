/**
 * Cursor pagination for the list routes. A page is read by keyset, never by OFFSET: the
 * cursor holds the sort key of the last item sent (e.g. its createdAt and id), and the next
 * page starts strictly after it. Rows inserted meanwhile therefore never shift the pages: no
 * item already read comes back, none that was there is skipped.
 *
 * The cursor is opaque to clients (base64url JSON); it names the list it belongs to, so a
 * cursor of one list given to another is refused instead of silently misread.
 */
import { badRequest } from './errors.ts';

/** A value of a sort key as it travels in a cursor: dates as ISO strings. */
type KeyPart = string | number;

/** A sort key's parts: what each position of the cursor must be. */
export type KeyShape = readonly ('date' | 'uuid' | 'string' | 'int')[];

/** The key parts decoded: dates as Date again. */
export type DecodedKey = (string | number | Date)[];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function encodeCursor(list: string, key: (string | number | Date)[]): string {
  const parts: KeyPart[] = key.map((part) => (part instanceof Date ? part.toISOString() : part));
  return Buffer.from(JSON.stringify({ l: list, k: parts })).toString('base64url');
}

const refused = (list: string) =>
  badRequest(
    `query string /cursor: not a cursor of this list; pass the nextCursor that GET ${list} returned, as it came, or leave cursor out for the first page`,
  );

/** The sort key a cursor holds, checked against the list's key shape; a 400 naming `cursor` otherwise. */
export function decodeCursor(raw: string, list: string, shape: KeyShape): DecodedKey {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw refused(list);
  }
  const { l, k } = (decoded ?? {}) as { l?: unknown; k?: unknown };
  if (l !== list || !Array.isArray(k) || k.length !== shape.length) throw refused(list);
  return shape.map((kind, i) => {
    const part: unknown = k[i];
    if (kind === 'int' && Number.isSafeInteger(part)) return part as number;
    if (kind === 'uuid' && typeof part === 'string' && UUID.test(part)) return part;
    if (kind === 'string' && typeof part === 'string') return part;
    if (kind === 'date' && typeof part === 'string') {
      const date = new Date(part);
      if (!Number.isNaN(date.getTime())) return date;
    }
    throw refused(list);
  });
}

/**
 * The rows after the item (createdAt, id) in a list sorted newest first, by (createdAt, id)
 * descending: a Prisma `where` for runs and files.
 */
export function olderThan(createdAt: Date, id: string) {
  return { OR: [{ createdAt: { lt: createdAt } }, { createdAt, id: { lt: id } }] };
}

/**
 * A page from `limit + 1` rows read in list order: the first `limit`, and the cursor of the
 * last of them when there was one more (null at the end, so a client stops without an
 * extra empty request).
 */
export function toPage<Row>(
  rows: Row[],
  limit: number,
  list: string,
  keyOf: (row: Row) => (string | number | Date)[],
): { items: Row[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(list, keyOf(last)) : null };
}
