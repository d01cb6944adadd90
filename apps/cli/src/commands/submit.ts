/** `miniglm submit FILE`: send a curriculum (YAML or JSON) to a running API. */
import { loadCurriculumFile } from '@miniglm/core';
import { api, apiUrl } from '../api-client.ts';
import { parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';
import { watchRun } from './watch.ts';

const HELP = `usage: miniglm submit --config FILE [--api URL] [--watch] [--json]

  --config   a curriculum (.yaml or .json); dataset sources must be poetry:<name>,
             poetry-qa:<name> or file:<id> (upload files with POST /v1/files)
  --api      the API (default MINIGLM_API_URL, then http://127.0.0.1:8080)
  --watch    follow the run until it ends
  --json     print the API's answer as JSON`;

export async function submit(argv: string[]): Promise<void> {
  const f = parseCommandArgs(
    'submit',
    argv,
    {
      config: { type: 'string' },
      api: { type: 'string' },
      watch: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
    HELP,
  );
  if (!f.config) throw new UsageError('submit: missing --config FILE');
  const base = apiUrl(f.api);
  // Validated here too, so a typo is reported with the file's name before any request.
  const curriculum = await loadCurriculumFile(f.config);
  const run = await api<{ id: string; name: string; stages: { name: string }[] }>(base, 'POST', '/v1/runs', curriculum);
  if (f.json) console.log(JSON.stringify(run, null, 2));
  else console.log(`submitted run ${run.name}: ${run.id} (${run.stages.length} stages)`);
  if (f.watch) await watchRun(base, run.id);
}
