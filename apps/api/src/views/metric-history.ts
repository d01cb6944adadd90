/**
 * Metric histories, bounded whatever the run's length. A history (one key of one stage, or
 * of one run on the global step axis) that fits in `maxPoints` is answered whole; a longer
 * one is downsampled in Postgres: its steps are cut into equal buckets and each bucket gives
 * its lowest and its highest point (with their own steps), plus the history's first and last
 * point. Spikes therefore stay visible, the global minimum and maximum are always there, and
 * the latest value of a live run is exact.
 *
 * Why in SQL: a run with a million points made the API read, hold and serialise a million
 * rows (33 MB, seconds with the event loop blocked, /healthz included). Here the API reads
 * one small row per bucket. Postgres reads each (stage, key) through the primary key
 * (stageId, key, step) and aggregates in one pass: min/max over ARRAY[value, step] find a
 * bucket's extreme and its step without sorting.
 */
import type { SqlExecutor } from '@miniglm/core/db';

export interface HistoryRequest {
  keys: string[];
  /** The stages to read, each with its offset on the x axis and the history it belongs to. */
  stages: { id: string; offset: number; owner: string }[];
  /** The most points one history may hold (at least 4). */
  maxPoints: number;
  /** Histories of the same key share one bucket grid, so that the runs of a comparison line up. */
  sharedGrid?: boolean;
}

/** key → owner → [x, value] points in x order (x = stage offset + step). */
export type Histories = Map<string, Map<string, [number, number][]>>;

/** One (stage, key) with points: where it starts and ends. */
interface Part {
  stage: { id: string; offset: number; owner: string };
  key: string;
  first: [number, number];
  last: [number, number];
}

/** A history to downsample: its parts and bucket grid (bucket = floor((x - origin) / width)). */
interface Downsampled {
  owner: string;
  key: string;
  parts: Part[];
  origin: number;
  width: number;
}

type Point = [x: number, value: number];

/** The histories asked for, each at most `maxPoints` long; `downsampled` when one was longer. */
export async function metricHistories(
  sql: SqlExecutor,
  request: HistoryRequest,
): Promise<{ histories: Histories; downsampled: boolean }> {
  const histories: Histories = new Map(request.keys.map((key) => [key, new Map()]));
  const parts = await seriesParts(sql, request);
  const byHistory = new Map<string, Part[]>();
  for (const part of parts) {
    const id = `${part.stage.owner}\u0000${part.key}`;
    byHistory.set(id, [...(byHistory.get(id) ?? []), part]);
  }
  // Steps are unique per (stage, key), so a history holds at most the steps its parts span.
  const span = (ps: Part[]) => ps.reduce((sum, p) => sum + p.last[0] - p.first[0] + 1, 0);
  const whole = [...byHistory.values()].filter((ps) => span(ps) <= request.maxPoints).flat();
  const grids = bucketGrids(
    [...byHistory.values()].filter((ps) => span(ps) > request.maxPoints),
    request.maxPoints,
    request.sharedGrid ?? false,
  );
  const [wholePoints, sampled] = await Promise.all([readWhole(sql, whole), readBuckets(sql, grids)]);

  const put = (owner: string, key: string, points: Point[]) => histories.get(key)!.set(owner, points);
  for (const [i, part] of whole.entries()) {
    const points = wholePoints.get(i) ?? [];
    const earlier = histories.get(part.key)!.get(part.stage.owner) ?? [];
    put(part.stage.owner, part.key, inXOrder([...earlier, ...points]));
  }
  let downsampled = false;
  for (const [i, grid] of grids.entries()) {
    const { points, count } = sampled.get(i) ?? { points: [], count: 0 };
    const ends = grid.parts.flatMap((p) => [p.first, p.last]).sort((a, b) => a[0] - b[0]);
    const kept = inXOrder([...points, ends[0]!, ends.at(-1)!]);
    downsampled ||= count > kept.length;
    put(grid.owner, grid.key, kept);
  }
  return { histories, downsampled };
}

/** Each (stage, key) that has points, with its first and last point (two index look-ups each). */
async function seriesParts(sql: SqlExecutor, request: HistoryRequest): Promise<Part[]> {
  if (request.stages.length === 0 || request.keys.length === 0) return [];
  const rows = await sql.query<{ i: number; key: string; f: number[]; l: number[] }>(
    `SELECT s.i::int AS i, k.key AS key, ARRAY[f.step, f.value] AS f, ARRAY[l.step, l.value] AS l
       FROM unnest($1::text[]) WITH ORDINALITY AS s(stage, i)
      CROSS JOIN unnest($2::text[]) AS k(key)
      CROSS JOIN LATERAL (SELECT m."step", m."value" FROM "MetricPoint" m
                           WHERE m."stageId" = s.stage AND m."key" = k.key ORDER BY m."step" LIMIT 1) f
      CROSS JOIN LATERAL (SELECT m."step", m."value" FROM "MetricPoint" m
                           WHERE m."stageId" = s.stage AND m."key" = k.key ORDER BY m."step" DESC LIMIT 1) l`,
    [request.stages.map((s) => s.id), request.keys],
  );
  return rows.map((r) => {
    const stage = request.stages[r.i - 1]!;
    const at = (p: number[]): Point => [stage.offset + Number(p[0]), Number(p[1])];
    return { stage, key: r.key, first: at(r.f), last: at(r.l) };
  });
}

/**
 * Buckets for the histories over budget: `(maxPoints - 2) / 2` of them, two points each,
 * leaves room for the first and last point. With a shared grid, the histories of one key
 * share the origin and width of their combined range (each then has no more buckets).
 */
function bucketGrids(over: Part[][], maxPoints: number, shared: boolean): Downsampled[] {
  const buckets = Math.max(1, Math.floor((maxPoints - 2) / 2));
  const range = (ps: Part[]) => ({
    lo: Math.min(...ps.map((p) => p.first[0])),
    hi: Math.max(...ps.map((p) => p.last[0])),
  });
  const byKey = new Map<string, { lo: number; hi: number }>();
  for (const ps of over) {
    const r = range(ps);
    const seen = byKey.get(ps[0]!.key);
    byKey.set(ps[0]!.key, seen ? { lo: Math.min(seen.lo, r.lo), hi: Math.max(seen.hi, r.hi) } : r);
  }
  return over.map((ps) => {
    const { lo, hi } = shared ? byKey.get(ps[0]!.key)! : range(ps);
    const width = Math.max(1, Math.ceil((hi - lo + 1) / buckets));
    return { owner: ps[0]!.stage.owner, key: ps[0]!.key, parts: ps, origin: lo, width };
  });
}

/** Every point of these (stage, key) parts, by the part's position. */
async function readWhole(sql: SqlExecutor, parts: Part[]): Promise<Map<number, Point[]>> {
  const out = new Map<number, Point[]>();
  if (parts.length === 0) return out;
  const rows = await sql.query<{ i: number; step: number; value: number }>(
    `SELECT s.i::int AS i, m."step" AS step, m."value" AS value
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS s(stage, key, i)
      CROSS JOIN LATERAL (SELECT "step", "value" FROM "MetricPoint"
                           WHERE "stageId" = s.stage AND "key" = s.key) m`,
    [parts.map((p) => p.stage.id), parts.map((p) => p.key)],
  );
  for (const r of rows) {
    const list = out.get(r.i - 1) ?? [];
    list.push([parts[r.i - 1]!.stage.offset + Number(r.step), Number(r.value)]);
    out.set(r.i - 1, list);
  }
  return out;
}

/**
 * The lowest and highest point of each bucket of each history, and how many points it has.
 * Postgres aggregates each (stage, key) part on the history's grid; a bucket that straddles
 * two stages comes back once per stage and is merged here.
 */
async function readBuckets(
  sql: SqlExecutor,
  grids: Downsampled[],
): Promise<Map<number, { points: Point[]; count: number }>> {
  const out = new Map<number, { points: Point[]; count: number }>();
  const parts = grids.flatMap((g, gi) => g.parts.map((p) => ({ ...p, gi, grid: g })));
  if (parts.length === 0) return out;
  const rows = await sql.query<{ i: number; bucket: number; n: number; lowest: number[]; highest: number[] }>(
    // Ties: the earliest of equal lowest values, the latest of equal highest ones.
    `SELECT s.i::int AS i, b.bucket, b.n, b.lowest, b.highest
       FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
            WITH ORDINALITY AS s(stage, key, off, origin, width, i)
      CROSS JOIN LATERAL (
            SELECT ((m."step" + s.off - s.origin) / s.width)::int AS bucket, count(*)::int AS n,
                   min(ARRAY[m."value", m."step"]) AS lowest, max(ARRAY[m."value", m."step"]) AS highest
              FROM "MetricPoint" m
             WHERE m."stageId" = s.stage AND m."key" = s.key
             GROUP BY 1) b`,
    [
      parts.map((p) => p.stage.id),
      parts.map((p) => p.key),
      parts.map((p) => p.stage.offset),
      parts.map((p) => p.grid.origin),
      parts.map((p) => p.grid.width),
    ],
  );
  const buckets = new Map<string, { gi: number; low: Point; high: Point }>();
  const counts = new Map<number, number>();
  for (const r of rows) {
    const part = parts[r.i - 1]!;
    const low: Point = [part.stage.offset + Number(r.lowest[1]), Number(r.lowest[0])];
    const high: Point = [part.stage.offset + Number(r.highest[1]), Number(r.highest[0])];
    counts.set(part.gi, (counts.get(part.gi) ?? 0) + r.n);
    const id = `${part.gi}:${r.bucket}`;
    const seen = buckets.get(id);
    if (!seen) buckets.set(id, { gi: part.gi, low, high });
    else {
      if (low[1] < seen.low[1] || (low[1] === seen.low[1] && low[0] < seen.low[0])) seen.low = low;
      if (high[1] > seen.high[1] || (high[1] === seen.high[1] && high[0] > seen.high[0])) seen.high = high;
    }
  }
  for (const { gi, low, high } of buckets.values()) {
    const entry = out.get(gi) ?? { points: [], count: counts.get(gi) ?? 0 };
    entry.points.push(low, high);
    out.set(gi, entry);
  }
  return out;
}

/** Sorted by x, one point per x (a bucket's lowest point may also be its highest, or the first). */
function inXOrder(points: Point[]): Point[] {
  points.sort((a, b) => a[0] - b[0]);
  return points.filter((p, i) => i === 0 || p[0] !== points[i - 1]![0]);
}
