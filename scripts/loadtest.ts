/**
 * `npm run loadtest [-- options]`: issue 10's load check. The service is started on this
 * machine in processes of its own (scripts/loadtest/services.ts), loaded with tiny runs from
 * several keys while reads are timed (traffic.ts), and judged (report.ts); `--help` lists the
 * knobs. Exit status: 0 passed, 1 failed, 2 bad options, 130 interrupted (after cleaning up).
 */
import { HELP, parseLoadTestArgs } from './loadtest/options.ts';
import { formatReport } from './loadtest/report.ts';
import { runLoadTest } from './loadtest/run.ts';

const parsed = parseLoadTestArgs(process.argv.slice(2));
if (!parsed.ok) {
  console.error(`loadtest: ${parsed.error}\n\n${HELP}`);
  process.exit(2);
}
if ('help' in parsed) {
  console.log(HELP);
  process.exit(0);
}

// Ctrl-C (or SIGTERM) stops the load and cleans up; a second one leaves at once.
const interrupt = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    if (interrupt.signal.aborted) process.exit(130);
    console.error(`loadtest: ${signal}: stopping the services and removing the database and Redis keys`);
    interrupt.abort();
  });

const { options } = parsed;
console.log(
  `loadtest: starting the API and ${options.workers} worker(s) on a database and Redis prefix of their own ...`,
);
try {
  const report = await runLoadTest(options, interrupt.signal, ({ apiUrl, workers, resources }) =>
    console.log(
      `loadtest: the API at ${apiUrl} and ${workers.length} workers are up (database ${resources.database}, ` +
        `Redis prefix ${resources.redisPrefix}, logs in ${resources.folder}); submitting ${options.runs} runs`,
    ),
  );
  console.log(formatReport(report));
  process.exitCode = report.failures.length ? 1 : 0;
} catch (error) {
  if (interrupt.signal.aborted) {
    console.error('loadtest: interrupted; cleaned up');
    process.exitCode = 130;
  } else {
    console.error(`loadtest: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}
