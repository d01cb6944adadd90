/**
 * Read latencies of the load test, per route: every answer's time as the client saw it, and
 * the answers that were not a success, by status.
 */

export interface RouteLatency {
  route: string;
  count: number;
  /** Answers that were not 2xx, by status ("network" when there was no answer). */
  errors: Record<string, number>;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export class LatencyRecorder {
  private readonly times = new Map<string, number[]>();
  private readonly errors = new Map<string, Record<string, number>>();

  /** One answer of `route` (a route pattern, so that every run's URL counts as one route). */
  record(route: string, ms: number, status: number | 'network'): void {
    let times = this.times.get(route);
    if (!times) this.times.set(route, (times = []));
    times.push(ms);
    if (status !== 'network' && status >= 200 && status < 300) return;
    const errors = this.errors.get(route) ?? {};
    errors[String(status)] = (errors[String(status)] ?? 0) + 1;
    this.errors.set(route, errors);
  }

  summary(): RouteLatency[] {
    return [...this.times].map(([route, times]) => {
      const sorted = [...times].sort((a, b) => a - b);
      return {
        route,
        count: sorted.length,
        errors: this.errors.get(route) ?? {},
        p50: percentile(sorted, 0.5),
        p95: percentile(sorted, 0.95),
        p99: percentile(sorted, 0.99),
        max: sorted.at(-1)!,
      };
    });
  }
}

/** The nearest-rank percentile of ascending `sorted` (q in (0, 1]): a time that was measured. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
