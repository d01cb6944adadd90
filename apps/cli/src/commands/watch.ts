/** `miniglm watch RUN`: follow a run's stages until it ends. */
import { isFinal } from '@miniglm/core/service';
import { api, apiUrl, type RunView } from '../api-client.ts';
import { parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';
import { duration, num } from '../table.ts';

const HELP = `usage: miniglm watch --run ID [--api URL] [--interval SECONDS]

Prints a line whenever a stage moves, until the run succeeds, fails or is cancelled.
Exit status: 0 succeeded, 1 failed or cancelled.`;

export async function watch(argv: string[]): Promise<void> {
  const f = parseCommandArgs(
    'watch',
    argv,
    { run: { type: 'string' }, api: { type: 'string' }, interval: { type: 'string' } },
    HELP,
  );
  if (!f.run) throw new UsageError('watch: missing --run ID');
  const interval = f.interval ? Number(f.interval) : 1;
  if (!(interval > 0 && interval <= 60))
    throw new UsageError(`--interval must be between 0 and 60 seconds, got ${f.interval}`);
  const status = await watchRun(apiUrl(f.api), f.run, interval * 1000);
  if (status !== 'succeeded') process.exitCode = 1;
}

/**
 * Prints a run's progress: at once when its state or stage changes, otherwise at most every
 * few seconds, so a log (or CI output) gets a readable line rate.
 */
export class ProgressPrinter {
  private readonly last = new Map<string, { key: string; at: number }>();

  constructor(
    private readonly print: (line: string) => void = console.log,
    private readonly everyMs = 5000,
  ) {}

  show(run: RunView): void {
    const current = run.stages.find((s) => s.status === 'running') ?? run.stages.find((s) => s.status === 'queued');
    const key = `${run.status}/${current?.index}/${current?.status}`;
    const before = this.last.get(run.id);
    if (before && before.key === key && Date.now() - before.at < this.everyMs) return;
    this.print(describeRun(run));
    this.last.set(run.id, { key, at: Date.now() });
  }
}

/** Follows a run until it ends; returns its final status. */
export async function watchRun(
  base: string,
  runId: string,
  intervalMs = 1000,
  print: (line: string) => void = console.log,
): Promise<string> {
  const printer = new ProgressPrinter(print);
  for (;;) {
    const run = await api<RunView>(base, 'GET', `/v1/runs/${encodeURIComponent(runId)}`);
    printer.show(run);
    if (isFinal(run.status)) {
      if (run.error) print(`${run.name}: ${run.error}`);
      return run.status;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function describeRun(run: RunView): string {
  const current = run.stages.find((s) => s.status === 'running') ?? run.stages.find((s) => s.status === 'queued');
  if (!current || isFinal(run.status)) return `${run.name}: ${run.status}`;
  const m = current.metrics ?? {};
  const pct = Math.round(current.progress * 100);
  return (
    `${run.name} [${current.index + 1}/${run.stages.length}] ${current.name} ${current.status} ` +
    `${current.step}/${current.iterations} (${pct}%) loss ${num(m.trainLoss)} val ${num(m.valLoss)} ` +
    `${num(current.tokensPerSec, 0)} tok/s ETA ${duration(current.etaSeconds)}`
  );
}
