/** `miniglm runs`: the runs a service knows, newest first; `miniglm runs delete <id>` deletes one. */
import { api, apiUrl, type RunListItem } from '../api-client.ts';
import { parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';
import { duration, num, table } from '../table.ts';

const HELP = `usage: miniglm runs [--status S] [--tag T] [--limit N] [--cursor C | --all] [--api URL] [--json]
       miniglm runs delete <id> [--api URL]

  --limit    runs per page (the API's default 50, at most 500)
  --cursor   the page after the one that printed this cursor
  --all      every page, following the API's cursors

delete: removes a finished run with its stages, checkpoints, metrics, evaluation and events,
and the stored bytes nothing else uses. Refused while the run is queued or running (cancel it
first), while an alias names one of its checkpoints, or while another run started from one.`;

export async function runs(argv: string[]): Promise<void> {
  if (argv[0] === 'delete') return deleteRun(argv.slice(1));
  const f = parseCommandArgs(
    'runs',
    argv,
    {
      status: { type: 'string' },
      tag: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      all: { type: 'boolean', default: false },
      api: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    HELP,
  );
  const query = new URLSearchParams();
  if (f.status) query.set('status', f.status);
  if (f.tag) query.set('tag', f.tag);
  if (f.limit) query.set('limit', f.limit);
  if (f.cursor) query.set('cursor', f.cursor);
  const list: RunListItem[] = [];
  let next: string | null = null;
  do {
    if (next) query.set('cursor', next);
    const body = await api<RunListItem[] | { runs: RunListItem[]; nextCursor?: string | null }>(
      apiUrl(f.api),
      'GET',
      `/v1/runs${query.size ? `?${query}` : ''}`,
    );
    // An API from before pagination answered a bare array, then { runs } without a cursor.
    list.push(...(Array.isArray(body) ? body : body.runs));
    next = Array.isArray(body) ? null : (body.nextCursor ?? null);
  } while (f.all && next);
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
  // On stderr, so that the table stays what stdout holds.
  if (next) console.error(`more runs: the same command with --cursor ${next} (or --all for every page)`);
}

/** `miniglm runs delete <id>`: DELETE /v1/runs/:id; a refusal is the API's one-line reason. */
async function deleteRun(argv: string[]): Promise<void> {
  const [id, ...rest] = argv;
  if (!id || id.startsWith('-')) throw new UsageError('runs delete: name the run, e.g. miniglm runs delete <id>');
  const f = parseCommandArgs('runs delete', rest, { api: { type: 'string' } }, HELP);
  await api(apiUrl(f.api), 'DELETE', `/v1/runs/${encodeURIComponent(id)}`);
  console.log(`deleted run ${id}`);
}
