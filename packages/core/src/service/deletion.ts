/**
 * Deleting runs, checkpoints and uploaded files (DELETE /v1/runs/:id, /v1/checkpoints/:id,
 * /v1/files/:id), then collecting the bytes nothing refers to any more (db/garbage.ts).
 *
 * What is refused, with a 409 that says why and what to do first:
 * - a run that is queued or running (cancel it first), or one of whose stages is still
 *   stopping after a cancel; a checkpoint of such a run (its retention policy manages those);
 * - a checkpoint named by an alias, or a run with such a checkpoint (move the alias first);
 * - a checkpoint a stage started from, in this run or another (initFrom), or a run with such
 *   a checkpoint, whether that stage is finished or not. Lineage is history: a stage's
 *   `parentCheckpointId` keeps pointing at a real checkpoint with its step and metrics. Keeping
 *   the row and deleting only its weights would leave a checkpoint that cannot be downloaded,
 *   branched from or resumed, which every reader would have to handle; one checkpoint per
 *   branch is a small price. Delete the runs that started from it first;
 * - a checkpoint an evaluation was measured on (it is its run's result; delete the run);
 * - a file that a queued or running run trains on ("file:<id>").
 *
 * Each delete is one statement that checks its conditions again (another request may have
 * named an alias or started a branch since the checks): refused or deleted whole, never half.
 * Deleting a run removes its stages, checkpoints, metric points, evaluations and events with
 * it (the schema's cascades); its prepared datasets go too once no other stage trains on them.
 */
import type { ArtifactStore, Collected, Db, Prisma, PrismaClient } from '../db/index.ts';
import { collectArtifacts, collectDatasets, isForeignKeyViolation } from '../db/index.ts';
import { isUuid } from './ids.ts';
import { FILE_SOURCE_PREFIX } from './sources.ts';
import { FINAL_STATUSES } from './states.ts';
import type { ServiceResult } from './submit.ts';

export interface DeleteDeps {
  db: Pick<Db, 'prisma' | 'sql'>;
  /** The caller's artifact store, whose local copies of collected artifacts go too. */
  store?: ArtifactStore;
  /** A member's key: only its own runs, checkpoints and files can be deleted (others are not found). */
  owner?: string;
}

const refuse = (status: 404 | 409, error: string) => ({ ok: false, status, error }) as const;
const FINAL = [...FINAL_STATUSES];
const UNFINISHED = ['queued', 'running'] as const;
/** How many blockers a message names before "and N more". */
const NAMED = 3;

/** Names a list: "a", "a and b", "a, b and 3 more". */
function listed(items: string[], total = items.length): string {
  const shown = items.slice(0, NAMED);
  const more = total - shown.length;
  if (more > 0) return `${shown.join(', ')} and ${more} more`;
  return shown.length > 1 ? `${shown.slice(0, -1).join(', ')} and ${shown.at(-1)}` : (shown[0] ?? '');
}

// ---------------------------------------------------------------------------- runs

export async function deleteRun(deps: DeleteDeps, runId: string): Promise<ServiceResult<Collected>> {
  const { prisma } = deps.db;
  const owned = deps.owner ? { ownerId: deps.owner } : {};
  const run = isUuid(runId)
    ? await prisma.run.findUnique({
        where: { id: runId, ...owned },
        include: { stages: { select: { datasetId: true } } },
      })
    : null;
  if (!run) return refuse(404, `no run with id "${runId}" (GET /v1/runs lists them)`);
  const blocker = await runBlocker(prisma, run);
  if (blocker) return refuse(409, blocker);
  const artifacts = await prisma.checkpoint.findMany({ where: { stage: { runId } }, select: { artifactSha256: true } });
  const deleted = await deleteOrBlocker(
    () =>
      prisma.run.deleteMany({
        where: {
          id: runId,
          status: { in: FINAL },
          stages: { none: { status: { in: [...UNFINISHED] } } },
          // Pinned from outside: an alias, or another run's stage that started from one of its checkpoints.
          NOT: {
            stages: {
              some: {
                checkpoints: {
                  some: { OR: [{ aliases: { some: {} } }, { childStages: { some: { runId: { not: runId } } } }] },
                },
              },
            },
          },
        },
      }),
    () => runBlocker(prisma, run),
  );
  if (!deleted.ok) return deleted;
  const datasets = run.stages.map((s) => s.datasetId).filter((id): id is string => id !== null);
  const fromDatasets = await collectDatasets(deps.db, datasets, { cache: deps.store });
  const fromCheckpoints = await collectArtifacts(
    deps.db,
    artifacts.map((c) => c.artifactSha256),
    { cache: deps.store },
  );
  return {
    ok: true,
    value: {
      artifacts: fromDatasets.artifacts + fromCheckpoints.artifacts,
      bytes: fromDatasets.bytes + fromCheckpoints.bytes,
      datasets: fromDatasets.datasets,
    },
  };
}

/** Why the run cannot be deleted now, or undefined. */
async function runBlocker(
  prisma: PrismaClient,
  run: { id: string; name: string; status: string },
): Promise<string | undefined> {
  const what = `run "${run.name}" (${run.id})`;
  const current = await prisma.run.findUnique({ where: { id: run.id }, select: { status: true } });
  if (!current) return undefined; // deleted meanwhile: nothing is in the way any more
  if (!FINAL.includes(current.status))
    return `${what} is ${current.status}: cancel it first (POST /v1/runs/${run.id}/cancel), then delete it`;
  const stopping = await prisma.stage.findFirst({
    where: { runId: run.id, status: { in: [...UNFINISHED] } },
    select: { name: true, status: true },
  });
  if (stopping)
    return `${what} is ${current.status}, but its stage "${stopping.name}" is still ${stopping.status} (a worker is stopping it); try again in a few seconds`;
  const inRun = { stage: { runId: run.id } };
  const aliases = await aliasBlocker(prisma, { checkpoint: inRun }, `${what} has a checkpoint`);
  if (aliases) return aliases;
  const others = { parentCheckpoint: inRun, runId: { not: run.id } };
  return childBlocker(prisma, others, { what, from: 'one of its checkpoints' });
}

// ---------------------------------------------------------------------------- checkpoints

export async function deleteCheckpoint(deps: DeleteDeps, checkpointId: string): Promise<ServiceResult<Collected>> {
  const { prisma } = deps.db;
  const ownRun = deps.owner ? { stage: { run: { ownerId: deps.owner } } } : {};
  const checkpoint = isUuid(checkpointId)
    ? await prisma.checkpoint.findUnique({
        where: { id: checkpointId, ...ownRun },
        select: {
          id: true,
          step: true,
          artifactSha256: true,
          stage: { select: { name: true, run: { select: { id: true, name: true, status: true } } } },
        },
      })
    : null;
  if (!checkpoint) return refuse(404, `no checkpoint with id "${checkpointId}" (GET /v1/checkpoints lists them)`);
  const blocker = await checkpointBlocker(prisma, checkpoint);
  if (blocker) return refuse(409, blocker);
  const deleted = await deleteOrBlocker(
    () =>
      prisma.checkpoint.deleteMany({
        where: {
          id: checkpointId,
          stage: { run: { status: { in: FINAL } } },
          aliases: { none: {} },
          childStages: { none: {} },
          evaluations: { none: {} },
        },
      }),
    () => checkpointBlocker(prisma, checkpoint),
  );
  if (!deleted.ok) return deleted;
  return { ok: true, value: await collectArtifacts(deps.db, [checkpoint.artifactSha256], { cache: deps.store }) };
}

/** Why the checkpoint cannot be deleted now, or undefined. */
async function checkpointBlocker(
  prisma: PrismaClient,
  checkpoint: { id: string; step: number; stage: { name: string; run: { id: string; name: string } } },
): Promise<string | undefined> {
  const { run } = checkpoint.stage;
  const what = `checkpoint ${checkpoint.id} (run "${run.name}", stage "${checkpoint.stage.name}", step ${checkpoint.step})`;
  const current = await prisma.run.findUnique({ where: { id: run.id }, select: { status: true } });
  if (current && !FINAL.includes(current.status))
    return `${what} belongs to a run that is ${current.status}: while a run trains, its retention policy (the curriculum's "retention") decides which checkpoints go; delete it once the run has ended (or cancel the run: POST /v1/runs/${run.id}/cancel)`;
  const aliases = await aliasBlocker(prisma, { checkpointId: checkpoint.id }, `${what} is`);
  if (aliases) return aliases;
  const children = await childBlocker(
    prisma,
    { parentCheckpointId: checkpoint.id },
    { what, from: 'it', ownRun: run.id },
  );
  if (children) return children;
  const evaluated = await prisma.evaluation.count({ where: { checkpointId: checkpoint.id } });
  if (evaluated > 0)
    return `${what} is the model run "${run.name}" was evaluated on: it is that run's result; delete the whole run instead (DELETE /v1/runs/${run.id})`;
  return undefined;
}

// ---------------------------------------------------------------------------- files

export async function deleteFile(deps: DeleteDeps, fileId: string): Promise<ServiceResult<Collected>> {
  const { prisma } = deps.db;
  const owned = deps.owner ? { ownerId: deps.owner } : {};
  const file = isUuid(fileId) ? await prisma.datasetFile.findUnique({ where: { id: fileId, ...owned } }) : null;
  if (!file) return refuse(404, `no uploaded file with id "${fileId}" (GET /v1/files lists them)`);
  const users = await runsTrainingOn(deps.db, fileId);
  if (users.length > 0) {
    const runs = listed(users.map((r) => `"${r.name}" (${r.id}, ${r.status})`));
    return refuse(
      409,
      `uploaded file ${fileId} (${file.name}) is named as "${FILE_SOURCE_PREFIX}${fileId}" by ${users.length === 1 ? 'run' : 'runs'} ${runs}, which ${users.length === 1 ? 'has' : 'have'} not finished: cancel ${users.length === 1 ? 'it' : 'them'} or wait for the end, then delete the file`,
    );
  }
  await prisma.datasetFile.deleteMany({ where: { id: fileId } });
  // Datasets prepared from the file keep their own (tokenized) bytes: finished runs stay readable.
  return { ok: true, value: await collectArtifacts(deps.db, [file.artifactSha256], { cache: deps.store }) };
}

/** Queued or running runs with a stage whose source is "file:<id>" (the curriculum is where a run names it). */
async function runsTrainingOn(db: Pick<Db, 'sql'>, fileId: string) {
  return db.sql.query<{ id: string; name: string; status: string }>(
    `SELECT r."id", r."name", r."status"::text AS status FROM "Run" r
     WHERE r."status" IN ('queued', 'running')
       AND EXISTS (
         SELECT 1 FROM jsonb_array_elements(r."curriculum"->'stages') s
         WHERE s->'dataset'->>'source' LIKE $1 AND btrim(substr(s->'dataset'->>'source', $2)) = $3
       )
     ORDER BY r."createdAt"
     LIMIT ${NAMED + 1}`,
    [`${FILE_SOURCE_PREFIX}%`, FILE_SOURCE_PREFIX.length + 1, fileId],
  );
}

// ---------------------------------------------------------------------------- shared

/** "<subject> named by the alias "a": ..." when an alias names a checkpoint `where` matches. */
async function aliasBlocker(
  prisma: PrismaClient,
  where: Prisma.AliasWhereInput,
  subject: string,
): Promise<string | undefined> {
  const [aliases, total] = await Promise.all([
    prisma.alias.findMany({ where, select: { name: true }, orderBy: { name: 'asc' }, take: NAMED }),
    prisma.alias.count({ where }),
  ]);
  if (total === 0) return undefined;
  const names = listed(
    aliases.map((a) => `"${a.name}"`),
    total,
  );
  return `${subject} named by the ${total === 1 ? 'alias' : 'aliases'} ${names}: an alias keeps its model; move or delete ${total === 1 ? 'it' : 'them'} first (DELETE /v1/aliases/${encodeURIComponent(aliases[0]!.name)})`;
}

/**
 * "<what>: run ... started from <from>" when a stage `where` matches starts from the
 * checkpoint(s) in question. `ownRun`: the checkpoint's own run (deleting the whole run is
 * the way to go when one of its own later stages started from it).
 */
async function childBlocker(
  prisma: PrismaClient,
  where: Prisma.StageWhereInput,
  { what, from, ownRun }: { what: string; from: string; ownRun?: string },
): Promise<string | undefined> {
  const children = await prisma.stage.findMany({
    where,
    select: { name: true, status: true, run: { select: { id: true, name: true, status: true } } },
    orderBy: { createdAt: 'asc' },
    take: NAMED + 1,
  });
  if (children.length === 0) return undefined;
  const unfinished = children.find((s) => !FINAL.includes(s.status));
  if (unfinished) {
    const { run } = unfinished;
    return `${what}: stage "${unfinished.name}" of run "${run.name}" (${run.id}) starts from ${from} and is ${unfinished.status}: cancel that run or wait for its end, then delete it first`;
  }
  const same = children.find((s) => s.run.id === ownRun);
  if (same)
    return `${what}: stage "${same.name}" of the same run started from ${from}, and the run's lineage must stay readable; delete the whole run instead (DELETE /v1/runs/${same.run.id})`;
  const runs = listed(
    children.map((s) => `"${s.run.name}" (${s.run.id})`),
    children.length,
  );
  return `${what}: ${children.length === 1 ? 'run' : 'runs'} ${runs} started from ${from}; a checkpoint a stage started from is kept as long as that stage exists, so that its lineage stays readable: delete ${children.length === 1 ? 'that run' : 'those runs'} first`;
}

/**
 * Runs the conditional delete; when it deletes nothing (a condition changed since the checks)
 * or a foreign key refuses it (an alias or a branch appeared meanwhile), answers 409 with the
 * reason as it is now.
 */
async function deleteOrBlocker(
  remove: () => Promise<{ count: number }>,
  blocker: () => Promise<string | undefined>,
): Promise<{ ok: true } | ReturnType<typeof refuse>> {
  try {
    if ((await remove()).count > 0) return { ok: true };
  } catch (error) {
    if (!isForeignKeyViolation(error)) throw error;
  }
  return refuse(409, (await blocker()) ?? 'another request changed it while it was being deleted; try again');
}
