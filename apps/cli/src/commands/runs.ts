/** `miniglm runs`: the runs a service knows, newest first. */
import { api, apiUrl, type RunListItem } from '../api-client.ts';
import { parseCommandArgs } from '../args.ts';
import { duration, num, table } from '../table.ts';

const HELP = `usage: miniglm runs [--status S] [--tag T] [--limit N] [--api URL] [--json]`;

export async function runs(argv: string[]): Promise<void> {
  const f = parseCommandArgs(
    'runs',
    argv,
    {
      status: { type: 'string' },
      tag: { type: 'string' },
      limit: { type: 'string' },
      api: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    HELP,
  );
  const query = new URLSearchParams();
  if (f.status) query.set('status', f.status);
  if (f.tag) query.set('tag', f.tag);
  if (f.limit) query.set('limit', f.limit);
  const body = await api<RunListItem[] | { runs: RunListItem[] }>(
    apiUrl(f.api),
    'GET',
    `/v1/runs${query.size ? `?${query}` : ''}`,
  );
  const list = Array.isArray(body) ? body : body.runs;
  if (f.json) return console.log(JSON.stringify(list, null, 2));
  if (list.length === 0) return console.log('no runs');
  console.log(
    table(
      ['id', 'name', 'status', 'stage', 'progress', 'tok/s', 'ETA', 'best val', 'tags'],
      list.map((r) => [
        r.id,
        r.name,
        r.status,
        r.stage ? `${r.stage.index + 1}:${r.stage.name}` : '-',
        r.stage ? `${r.stage.step}/${r.stage.iterations}` : '-',
        num(r.tokensPerSec, 0),
        duration(r.etaSeconds),
        num(r.bestValLoss),
        r.tags.join(','),
      ]),
    ),
  );
}
