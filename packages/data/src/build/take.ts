/** The first `limit` items of a (possibly async) iterable, without reading one more. */
export async function* take<T>(items: AsyncIterable<T> | Iterable<T>, limit: number): AsyncGenerator<T> {
  if (limit <= 0) return;
  let n = 0;
  for await (const item of items) {
    yield item;
    if (++n >= limit) return;
  }
}
