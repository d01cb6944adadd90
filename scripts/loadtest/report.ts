/** The load test's verdict and its printed report. */
import type { RouteLatency } from './latency.ts';
import type { LoadReport } from './run.ts';

/** Why the load test failed, one sentence per reason; empty when it passed. */
export function judge(report: Omit<LoadReport, 'failures'>): string[] {
  const { runs, options } = report;
  const failures: string[] = [];
  if (report.accepted === 0) failures.push('no run was accepted, so nothing was measured');
  if (report.submitFailures.length > 0)
    failures.push(`${report.submitFailures.length} submissions got an answer that was neither 201 nor 429`);
  if (runs.failed + runs.cancelled > 0)
    failures.push(`${runs.failed} runs failed and ${runs.cancelled} were cancelled`);
  if (runs.notFinal > 0)
    failures.push(`${runs.notFinal} runs were still queued or running after ${options.deadlineS} s`);
  if (runs.missing > 0) failures.push(`${runs.missing} accepted runs are not in the database`);
  if (runs.unannounced > 0) failures.push(`${runs.unannounced} runs are in the database without a 201 for them`);
  for (const route of report.reads) {
    const errors = Object.values(route.errors).reduce((a, b) => a + b, 0);
    if (errors > 0) failures.push(`${route.route}: ${errors} of ${route.count} answers were not a success`);
    if (route.p99 >= options.maxReadP99Ms)
      failures.push(`${route.route}: p99 ${ms(route.p99)} ms is not under ${options.maxReadP99Ms} ms`);
  }
  for (const exit of report.serviceExits) failures.push(exit);
  for (const problem of report.cleanupProblems) failures.push(problem);
  return failures;
}

export function formatReport(r: LoadReport): string {
  const o = r.options;
  const backends = [...new Set(r.workers.map((w) => w.backend))].join(', ');
  const lines = [
    `${o.runs} runs (${o.iterations} iterations each) from ${o.keys} keys to ${o.workers} workers ` +
      `(${backends}, nice ${o.workerNice}, MINIGLM_THREADS=${o.workerThreads}), ${o.readers} read loops`,
    `submitted ${r.submitted}: accepted ${r.accepted}, refused by quota ${sum(r.refused.map(([, n]) => n))}, ` +
      `failed ${r.submitFailures.length}`,
    ...r.refused.slice(0, 3).map(([message, n]) => `  429 x${n}: ${message}`),
    ...r.submitFailures.slice(0, 5).map((f) => `  ${f}`),
    `runs: succeeded ${r.runs.succeeded}, failed ${r.runs.failed}, cancelled ${r.runs.cancelled}, ` +
      `not final ${r.runs.notFinal}; submission to end p50 ${r.runs.secondsToEnd.p50.toFixed(1)} s, ` +
      `max ${r.runs.secondsToEnd.max.toFixed(1)} s; stages by worker ${JSON.stringify(r.runs.stagesByWorker)}`,
    ...r.runs.examples.map((e) => `  ${e}`),
    `wall time ${r.wallSeconds.toFixed(1)} s (first submission to last run ended)`,
    '',
    '| request (client side) | answers | p50 | p95 | p99 | max |',
    '| --- | --- | --- | --- | --- | --- |',
    ...[...r.reads, ...r.submits].map(row),
    '',
    r.eventLoop
      ? `API event-loop delay over the load: p50 ${ms(r.eventLoop.p50)}, p99 ${ms(r.eventLoop.p99)}, ` +
        `max ${ms(r.eventLoop.max)} ms; API resident memory at the end ${r.apiMemoryMb?.toFixed(0)} MB`
      : 'API event-loop delay: /metrics did not answer',
  ];
  lines.push(
    `${r.cleanupProblems.length ? 'made for the load test (not all removed: see below)' : 'removed afterwards'}: the database ${r.resources.database}, the Redis keys under ${r.resources.redisPrefix}:, ` +
      `the folder ${r.resources.folder}`,
  );
  lines.push(r.failures.length ? `FAILED:\n${r.failures.map((f) => `  - ${f}`).join('\n')}` : 'passed');
  return lines.join('\n');
}

function row(route: RouteLatency): string {
  const errors = Object.entries(route.errors).map(([status, n]) => `${n} x ${status}`);
  const answers = errors.length ? `${route.count} (${errors.join(', ')})` : String(route.count);
  return `| \`${route.route}\` | ${answers} | ${ms(route.p50)} | ${ms(route.p95)} | ${ms(route.p99)} | ${ms(route.max)} |`;
}

const ms = (x: number) => x.toFixed(1);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
