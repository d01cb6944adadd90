/**
 * The lineage graph of a run, across runs: where its weights came from and what was trained
 * from them.
 *
 * - Ancestors: a stage's parent checkpoint may belong to another run (initFrom); we follow
 *   parent links upwards until a stage that started from scratch.
 * - Descendants: stages (of any run) whose parent is one of the included checkpoints, and
 *   from them downwards again.
 * - Every included stage brings its dataset and its checkpoints.
 *
 * Edges: dataset → stage ("trained-on"), parent checkpoint → stage ("parent"), stage →
 * checkpoint ("produced"). Run nodes name the runs the stages belong to (stage nodes carry
 * runId) so a client can group them. Each direction is walked one level per query.
 */
import type { Static } from '@sinclair/typebox';
import type { PrismaClient } from '@miniglm/core/db';
import { isUuid } from '@miniglm/core/service';
import { notFound } from '../errors.ts';
import type { Lineage, LineageEdge, LineageNode } from '../responses.ts';

/** A guard against pathological graphs (a checkpoint branched into thousands of runs). */
const MAX_STAGES = 2000;

const stageSelect = {
  id: true,
  runId: true,
  index: true,
  name: true,
  kind: true,
  status: true,
  parentCheckpointId: true,
  datasetId: true,
  checkpoints: { select: { id: true, step: true, createdAt: true }, orderBy: { step: 'asc' } },
} as const;

/** `owner`: a member's key, which sees only its own runs: other runs' stages are left out of the graph. */
export async function runLineage(prisma: PrismaClient, runId: string, owner?: string): Promise<Static<typeof Lineage>> {
  const mine = owner ? { ownerId: owner } : {};
  const run = isUuid(runId)
    ? await prisma.run.findUnique({ where: { id: runId, ...mine }, select: { id: true } })
    : null;
  if (!run) throw notFound(`no run with id "${runId}" (GET /v1/runs lists them)`);

  type StageRow = Awaited<ReturnType<typeof loadStages>>[number];
  const loadStages = (where: object) => prisma.stage.findMany({ where, select: stageSelect });
  const stages = new Map<string, StageRow>();
  const add = (rows: StageRow[]) => rows.filter((s) => !stages.has(s.id) && stages.set(s.id, s));

  // The run itself.
  const own = add(await loadStages({ runId }));

  // Upwards: parents of the stages we have, until none is left outside the set.
  let frontier = own;
  while (frontier.length && stages.size < MAX_STAGES) {
    const parentIds = frontier.map((s) => s.parentCheckpointId).filter((id): id is string => id !== null);
    const missing = parentIds.filter((id) => ![...stages.values()].some((s) => s.checkpoints.some((c) => c.id === id)));
    frontier = missing.length ? add(await loadStages({ checkpoints: { some: { id: { in: missing } } } })) : [];
  }

  // Downwards: stages trained from this run's checkpoints, then from theirs.
  frontier = own;
  while (frontier.length && stages.size < MAX_STAGES) {
    const checkpointIds = frontier.flatMap((s) => s.checkpoints.map((c) => c.id));
    frontier = checkpointIds.length ? add(await loadStages({ parentCheckpointId: { in: checkpointIds } })) : [];
  }

  const runs = await prisma.run.findMany({
    where: { id: { in: [...new Set([...stages.values()].map((s) => s.runId))] }, ...mine },
    select: { id: true, name: true, status: true },
  });
  const shown = new Set(runs.map((r) => r.id));
  const all = [...stages.values()]
    .filter((s) => shown.has(s.runId))
    .sort((a, b) => (a.runId === b.runId ? a.index - b.index : a.runId.localeCompare(b.runId)));
  const datasets = await prisma.dataset.findMany({
    where: { id: { in: [...new Set(all.map((s) => s.datasetId).filter((id): id is string => id !== null))] } },
    select: { id: true, source: true, kind: true },
  });
  const runName = new Map(runs.map((r) => [r.id, r.name]));

  const nodes: Static<typeof LineageNode>[] = [];
  const edges: Static<typeof LineageEdge>[] = [];
  for (const r of runs) nodes.push({ id: r.id, type: 'run', label: r.name, runId: r.id, status: r.status });
  for (const d of datasets) nodes.push({ id: d.id, type: 'dataset', label: d.source, kind: d.kind });
  const known = new Set(all.flatMap((s) => s.checkpoints.map((c) => c.id)));
  for (const s of all) {
    nodes.push({
      id: s.id,
      type: 'stage',
      label: `${runName.get(s.runId)}/${s.name}`,
      runId: s.runId,
      status: s.status,
      kind: s.kind,
      index: s.index,
    });
    if (s.datasetId) edges.push({ from: s.datasetId, to: s.id, type: 'trained-on' });
    if (s.parentCheckpointId && known.has(s.parentCheckpointId))
      edges.push({ from: s.parentCheckpointId, to: s.id, type: 'parent' });
    for (const c of s.checkpoints) {
      nodes.push({
        id: c.id,
        type: 'checkpoint',
        label: `${s.name}@${c.step}`,
        runId: s.runId,
        stageId: s.id,
        step: c.step,
        createdAt: c.createdAt,
      });
      edges.push({ from: s.id, to: c.id, type: 'produced' });
    }
  }
  return { runId, nodes, edges, truncated: stages.size >= MAX_STAGES };
}
