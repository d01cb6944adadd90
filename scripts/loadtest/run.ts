/**
 * The load test itself, without its command line (scripts/loadtest.ts) so that a test can run
 * it small: start the service, submit and read at once, wait for every accepted run to end
 * (or the deadline), read the outcome from Postgres (the truth) and the API's own event-loop
 * delay from its /metrics, clean up, and say whether it passed.
 */
import type { WorkerAd } from '@miniglm/core/service';
import { LatencyRecorder, percentile, type RouteLatency } from './latency.ts';
import type { LoadTestOptions } from './options.ts';
import { judge } from './report.ts';
import { startServices, type LoadTestResources, type Services } from './services.ts';
import { emptySubmissions, readUntil, submitRuns } from './traffic.ts';

export interface RunOutcome {
  succeeded: number;
  failed: number;
  cancelled: number;
  /** Still queued or running at the deadline: stuck. */
  notFinal: number;
  /** Runs in the database that no 201 announced (a refused submission that wrote something). */
  unannounced: number;
  /** Accepted runs that the database does not hold. */
  missing: number;
  /** A few of the failed, cancelled and stuck runs: "<id> <status>: <error or stage state>". */
  examples: string[];
  /** Seconds from submission to the end, over the runs that ended. */
  secondsToEnd: { p50: number; max: number };
  /** Stages trained, by the worker that trained them last. */
  stagesByWorker: Record<string, number>;
}

export interface EventLoopDelay {
  p50: number;
  p99: number;
  max: number;
}

export interface LoadReport {
  options: LoadTestOptions;
  /** Made for the load test and removed after it. */
  resources: LoadTestResources;
  workers: WorkerAd[];
  submitted: number;
  accepted: number;
  refused: [message: string, count: number][];
  submitFailures: string[];
  runs: RunOutcome;
  /** From the first submission until the last run ended (or the deadline). */
  wallSeconds: number;
  reads: RouteLatency[];
  submits: RouteLatency[];
  /** The API process's event-loop delay over the load (ms), from prom-client's histogram. */
  eventLoop?: EventLoopDelay;
  apiMemoryMb?: number;
  serviceExits: string[];
  cleanupProblems: string[];
  /** Why the load test failed; empty when it passed. */
  failures: string[];
}

const RUN_POLL_MS = 500;

/**
 * `signal` stops the load test (Ctrl-C): it then throws, after cleaning up. `onStarted` hears
 * where the service runs once it is up, before the load begins.
 */
export async function runLoadTest(
  options: LoadTestOptions,
  signal?: AbortSignal,
  onStarted?: (services: Pick<Services, 'apiUrl' | 'workers' | 'resources'>) => void,
): Promise<LoadReport> {
  const services = await startServices(options, signal);
  onStarted?.(services);
  let report: Omit<LoadReport, 'cleanupProblems' | 'failures'>;
  try {
    report = await loadService(services, options, signal);
  } catch (error) {
    const problems = await services.stop();
    if (problems.length) (error as Error).message += `; and cleaning up: ${problems.join('; ')}`;
    throw error;
  }
  const whole = { ...report, cleanupProblems: await services.stop(), failures: [] };
  return { ...whole, failures: judge(whole) };
}

async function loadService(
  services: Services,
  options: LoadTestOptions,
  signal?: AbortSignal,
): Promise<Omit<LoadReport, 'cleanupProblems' | 'failures'>> {
  const { apiUrl, keys, db } = services;
  const metricsKey = keys[0]!.key;
  // prom-client resets its event-loop histogram at every scrape: this one starts the window.
  await scrapeApiMetrics(apiUrl, metricsKey);

  const started = performance.now();
  const deadline = Date.now() + options.deadlineS * 1000;
  const reads = new LatencyRecorder();
  const submits = new LatencyRecorder();
  const submissions = emptySubmissions(keys);
  const stopReading = new AbortController();
  const readers = Array.from({ length: options.readers }, (_, i) =>
    readUntil(
      apiUrl,
      keys,
      submissions.accepted,
      { pauseMs: options.readPauseMs, first: i },
      reads,
      stopReading.signal,
    ),
  );
  try {
    await submitRuns(apiUrl, keys, options, submissions, submits, signal);
    // The database is this load test's own: every run in it is one of ours.
    while (Date.now() < deadline) {
      signal?.throwIfAborted();
      const open = await db.prisma.run.count({ where: { status: { in: ['queued', 'running'] } } });
      if (open === 0 || services.unexpectedExits().length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, RUN_POLL_MS));
    }
  } finally {
    stopReading.abort();
    await Promise.all(readers);
  }
  const wallSeconds = (performance.now() - started) / 1000;
  const apiMetrics = await scrapeApiMetrics(apiUrl, metricsKey);
  const acceptedIds = [...submissions.accepted.values()].flat();
  return {
    options,
    resources: services.resources,
    workers: services.workers,
    submitted: options.runs,
    accepted: acceptedIds.length,
    refused: [...submissions.refused],
    submitFailures: submissions.failed,
    runs: await runOutcome(services, acceptedIds),
    wallSeconds,
    reads: reads.summary(),
    submits: submits.summary(),
    eventLoop: apiMetrics && {
      p50: apiMetrics.nodejs_eventloop_lag_p50_seconds! * 1000,
      p99: apiMetrics.nodejs_eventloop_lag_p99_seconds! * 1000,
      max: apiMetrics.nodejs_eventloop_lag_max_seconds! * 1000,
    },
    apiMemoryMb: apiMetrics && apiMetrics.process_resident_memory_bytes! / 2 ** 20,
    serviceExits: services.unexpectedExits(),
  };
}

/** What became of the runs, as Postgres has it. */
async function runOutcome(services: Services, acceptedIds: string[]): Promise<RunOutcome> {
  const prisma = services.db.prisma;
  const runs = await prisma.run.findMany({
    select: {
      id: true,
      status: true,
      error: true,
      createdAt: true,
      finishedAt: true,
      stages: { select: { status: true, step: true, iterations: true, workerId: true } },
    },
  });
  const accepted = new Set(acceptedIds);
  const count = (status: string) => runs.filter((r) => r.status === status).length;
  const bad = runs.filter((r) => r.status !== 'succeeded');
  const seconds = runs
    .filter((r) => r.finishedAt)
    .map((r) => (r.finishedAt!.getTime() - r.createdAt.getTime()) / 1000)
    .sort((a, b) => a - b);
  const stagesByWorker: Record<string, number> = {};
  for (const stage of runs.flatMap((r) => r.stages))
    if (stage.status === 'succeeded')
      stagesByWorker[stage.workerId ?? '?'] = (stagesByWorker[stage.workerId ?? '?'] ?? 0) + 1;
  return {
    succeeded: count('succeeded'),
    failed: count('failed'),
    cancelled: count('cancelled'),
    notFinal: count('queued') + count('running'),
    unannounced: runs.filter((r) => !accepted.has(r.id)).length,
    missing: acceptedIds.length - runs.filter((r) => accepted.has(r.id)).length,
    examples: bad
      .slice(0, 5)
      .map(
        (r) =>
          `${r.id} ${r.status}: ${r.error ?? r.stages.map((s) => `stage ${s.status} at ${s.step}/${s.iterations}`).join(', ')}`,
      ),
    secondsToEnd: { p50: percentile(seconds, 0.5), max: seconds.at(-1) ?? NaN },
    stagesByWorker,
  };
}

/** The API's Prometheus metrics as name -> value (series without labels only), or undefined. */
async function scrapeApiMetrics(apiUrl: string, key: string): Promise<Record<string, number> | undefined> {
  const response = await fetch(`${apiUrl}/metrics`, { headers: { authorization: `Bearer ${key}` } }).catch(
    () => undefined,
  );
  if (!response?.ok) return undefined;
  const values: Record<string, number> = {};
  for (const [, name, value] of (await response.text()).matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$/gm))
    values[name!] = Number(value);
  return values;
}
