/** `miniglm compare A B ...`: final metrics of runs side by side, and what differs in their configs. */
import { api, apiUrl, type CompareView } from '../api-client.ts';
import { parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';
import { duration, num, table } from '../table.ts';

const HELP = `usage: miniglm compare --runs ID,ID[,...] [--api URL] [--json]`;

export async function compare(argv: string[]): Promise<void> {
  const f = parseCommandArgs(
    'compare',
    argv,
    { runs: { type: 'string' }, api: { type: 'string' }, json: { type: 'boolean', default: false } },
    HELP,
  );
  const ids = (f.runs ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (ids.length < 2) throw new UsageError('compare: give at least two run ids, as --runs A,B');
  const view = await api<CompareView>(
    apiUrl(f.api),
    'GET',
    `/v1/compare?runs=${ids.map(encodeURIComponent).join(',')}`,
  );
  console.log(f.json ? JSON.stringify(view, null, 2) : formatCompare(view));
}

export function formatCompare(view: CompareView): string {
  const metrics = table(
    ['run', 'status', 'val loss', 'perplexity', 'ROUGE-L F', 'params', 'tok/s', 'wall'],
    view.runs.map((r) => [
      r.name,
      r.status,
      num(r.finalValLoss),
      num(r.perplexity, 1),
      num(r.rouge, 3),
      r.params === null ? '-' : r.params.toLocaleString('en-US'),
      num(r.tokensPerSec, 0),
      duration(r.wallSeconds),
    ]),
  );
  if (view.differences.length === 0) return `${metrics}\n\nconfigs: identical`;
  const differences = table(
    ['config field', ...view.runs.map((r) => r.name)],
    view.differences.map((d) => [d.path, ...view.runs.map((r) => describeValue(d.values[r.id]))]),
  );
  return `${metrics}\n\nconfig fields that differ:\n${differences}`;
}

/** A setting as a table cell; a whole stage (present in only some runs) as a short summary. */
function describeValue(value: unknown): string {
  if (value === null || value === undefined) return '-';
  const stage = value as { kind?: string; iterations?: number; dataset?: { source?: string } };
  if (typeof value === 'object' && stage.kind && stage.iterations !== undefined)
    return `${stage.kind}, ${stage.iterations} it on ${stage.dataset?.source ?? '?'}`;
  return JSON.stringify(value);
}
