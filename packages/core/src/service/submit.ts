/**
 * Accepting a run: validate everything a user can get wrong, write the Run and its Stage
 * rows, then queue its flow. Nothing is written unless the whole curriculum is valid and the
 * owner is within its quotas (checked in the transaction that writes the rows: quotas.ts).
 */
import { randomUUID } from 'node:crypto';
import type { FlowProducer } from 'bullmq';
import { curriculumOf, parseCurriculum, type Curriculum } from '../curriculum.ts';
import { isForeignKeyViolation, type Prisma, type PrismaClient } from '../db/index.ts';
import { initFromMismatch } from '../init-from.ts';
import { isUuid } from './ids.ts';
import { checkRunLimits, ownerRunLimits, type Capacity } from './capacity.ts';
import { writeWithinQuotas, type OwnerQuotas } from './quotas.ts';
import { runFlow } from './queues.ts';
import { checkSources } from './sources.ts';
import { isFinal } from './states.ts';
import { markRunCancelled, withdrawUnqueuedRun } from './status.ts';

/** An error a client can act on, with the HTTP status that says whose fault it is. */
export interface ServiceError {
  status: 400 | 404 | 409 | 429 | 503;
  error: string;
}
export type ServiceResult<T> = { ok: true; value: T } | ({ ok: false } & ServiceError);

const fail = (status: ServiceError['status'], error: string): { ok: false } & ServiceError => ({
  ok: false,
  status,
  error,
});

export interface SubmitDeps {
  prisma: PrismaClient;
  flows: FlowProducer;
  /**
   * What a run may ask (the service's limits; the owner's key may have its own) and what the
   * workers hold (capacity.ts); absent: not checked.
   */
  capacity?: Capacity;
  /** The API key submitting the run, recorded as its owner (null or absent: submitted without keys). */
  ownerId?: string | null;
  /**
   * The default quotas of the owner (quotas.ts; its key's own limits are read with its usage):
   * a submission past one is a 429 and writes nothing. Absent: not checked (an admin key).
   */
  quotas?: OwnerQuotas;
  /** When set, the curriculum may name only files and checkpoints of this key (a member's submission). */
  visibleTo?: string;
}

export interface SubmittedRun {
  id: string;
  name: string;
  status: 'queued';
  stages: { id: string; index: number; name: string }[];
  curriculum: Curriculum;
  initFrom: { checkpointId: string; alias?: string } | null;
}

/**
 * A checkpoint named by id or by alias. With `visibleTo` (a member's key), only a checkpoint
 * of its own runs, named by id or by one of its own aliases, is found.
 */
export async function resolveCheckpointRef(
  prisma: PrismaClient,
  ref: string,
  visibleTo?: string,
): Promise<{ checkpointId: string; alias?: string } | undefined> {
  const ownRun = visibleTo ? { stage: { run: { ownerId: visibleTo } } } : {};
  if (isUuid(ref)) {
    const found = await prisma.checkpoint.findUnique({ where: { id: ref, ...ownRun }, select: { id: true } });
    if (found) return { checkpointId: found.id };
  }
  const alias = await prisma.alias.findUnique({
    where: { name: ref, ...(visibleTo ? { ownerId: visibleTo, checkpoint: ownRun } : {}) },
  });
  return alias ? { checkpointId: alias.checkpointId, alias: alias.name } : undefined;
}

export async function submitRun(deps: SubmitDeps, body: unknown): Promise<ServiceResult<SubmittedRun>> {
  const parsed = parseCurriculum(body);
  if (!parsed.ok) return fail(400, parsed.error);
  const curriculum = parsed.value;
  if (deps.capacity) {
    const workers = await deps.capacity.workers();
    const { limits, source } = await ownerRunLimits(deps.prisma, deps.ownerId ?? null, deps.capacity.limits);
    const refused = checkRunLimits(curriculum, limits, workers, source);
    if (refused) return fail(400, refused);
  }
  const sources = await checkSources(deps.prisma, curriculum, deps.visibleTo);
  if (!sources.ok) return fail(sources.notFound ? 404 : 400, sources.error);

  let initFrom: SubmittedRun['initFrom'] = null;
  if (curriculum.initFrom) {
    const ref = await resolveCheckpointRef(deps.prisma, curriculum.initFrom, deps.visibleTo);
    if (!ref)
      return fail(
        404,
        `/initFrom: no checkpoint or alias "${curriculum.initFrom}" (GET /v1/checkpoints and GET /v1/aliases list them)`,
      );
    const mismatch = await storedInitFromMismatch(deps.prisma, ref.checkpointId, curriculum);
    if (mismatch) return fail(400, mismatch);
    initFrom = ref;
  }

  const runId = randomUUID();
  const stages = curriculum.stages.map((s, index) => ({
    id: randomUUID(),
    index,
    name: s.name,
    kind: s.kind,
    iterations: s.iterations,
  }));
  const write = async (tx: Prisma.TransactionClient) => {
    await tx.run.create({
      data: {
        id: runId,
        name: curriculum.name,
        curriculum: curriculum as object,
        seed: curriculum.seed,
        tags: curriculum.tags ?? [],
        ownerId: deps.ownerId ?? null,
      },
    });
    await tx.stage.createMany({
      data: stages.map((s) => ({
        ...s,
        runId,
        parentCheckpointId: s.index === 0 ? (initFrom?.checkpointId ?? null) : null,
      })),
    });
    await tx.stageEvent.createMany({ data: stages.map((s) => ({ stageId: s.id, type: 'queued' as const })) });
  };
  try {
    if (deps.quotas) {
      const owner = { ownerId: deps.ownerId ?? null, defaults: deps.quotas };
      const written = await writeWithinQuotas(deps.prisma, owner, { kind: 'run' }, write);
      if (!written.ok) return fail(429, written.error);
    } else await deps.prisma.$transaction(write);
  } catch (error) {
    // The only row a new run refers to is its initFrom checkpoint: deleted since it was
    // resolved above (by a DELETE, or by its run's retention policy as newer ones landed).
    if (initFrom && isForeignKeyViolation(error))
      return fail(
        409,
        `/initFrom: checkpoint ${initFrom.checkpointId} was deleted while this run was being submitted; ` +
          'name a checkpoint its run keeps (an alias pins one) and submit again',
      );
    throw error;
  }
  // Written first, so that a worker never finds a job whose rows are missing; taken back
  // when Redis does not take the flow, so that a refused submission leaves nothing behind.
  try {
    await deps.flows.add(
      runFlow(
        runId,
        stages.map((s) => s.id),
      ),
    );
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (await withdrawUnqueuedRun(deps.prisma, runId))
      return fail(503, `Redis did not take the run (${reason}); nothing was kept: submit it again once Redis answers`);
    // A worker has started it: the flow reached Redis after all, and the run is accepted.
  }
  return {
    ok: true,
    value: {
      id: runId,
      name: curriculum.name,
      status: 'queued',
      stages: stages.map(({ id, index, name }) => ({ id, index, name })),
      curriculum,
      initFrom,
    },
  };
}

/** initFromMismatch for a stored checkpoint: the run that wrote it says its model and tokenizer. */
async function storedInitFromMismatch(
  prisma: PrismaClient,
  checkpointId: string,
  curriculum: Curriculum,
): Promise<string | undefined> {
  const ckpt = await prisma.checkpoint.findUnique({
    where: { id: checkpointId },
    include: { stage: { include: { run: true } } },
  });
  if (!ckpt) return `/initFrom: checkpoint ${checkpointId} is gone`;
  const source = curriculumOf(ckpt.stage.run);
  return initFromMismatch(
    curriculum,
    { model: source.model, tokenizer: source.tokenizer.name },
    `run ${ckpt.stage.run.name}, stage ${ckpt.stage.name}`,
  );
}

export interface CancelDeps {
  prisma: PrismaClient;
  /** Tells every worker through Redis (the cancel channel). */
  publish: (runId: string) => Promise<unknown>;
  /** Removes the run's jobs that no worker holds yet, if any (best effort). */
  removeJobs?: (runId: string) => Promise<unknown>;
  /** How long the answer waits for Redis (default 1 s). */
  redisTimeoutMs?: number;
}

/**
 * Cancels a run. Postgres is the truth: the run and its queued stages are cancelled there,
 * and from that moment the write fence refuses every checkpoint and metric of the run. Redis
 * only makes the rest faster (the cancel message kills a training child at once, removed jobs
 * are never started), so it is told best effort, for at most `redisTimeoutMs`: a worker that
 * misses the message stops within a second anyway (it looks at the run), and a job left in
 * the queue ends at once when it starts. A Redis that hangs cannot hold the answer back.
 */
export async function cancelRun(
  deps: CancelDeps,
  runId: string,
): Promise<ServiceResult<{ id: string; status: 'cancelled' }>> {
  const run = isUuid(runId) ? await deps.prisma.run.findUnique({ where: { id: runId } }) : null;
  if (!run) return fail(404, `no run with id "${runId}"`);
  if (isFinal(run.status))
    return fail(409, `run ${runId} has already ${run.status === 'cancelled' ? 'been cancelled' : run.status}`);
  // A run that finished since we read it keeps its result (and the caller hears 409).
  if (!(await markRunCancelled(deps.prisma, runId))) return fail(409, `run ${runId} has already finished`);
  const tellRedis = Promise.allSettled([deps.publish(runId), deps.removeJobs?.(runId)]);
  await settledWithin(tellRedis, deps.redisTimeoutMs ?? 1000);
  return { ok: true, value: { id: runId, status: 'cancelled' } };
}

/** Waits for `promise` at most `ms` (the timer does not hold the process open). */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  await Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
