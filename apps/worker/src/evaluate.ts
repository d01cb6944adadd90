/**
 * The evaluate job, last in a run's flow: perplexity on every stage's held-out split,
 * ROUGE-L on the last SFT stage's held-out questions, and sample outputs, computed in a
 * child process from the last stage's final checkpoint and stored as an Evaluation row.
 * The run succeeds when it is written.
 */
import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { TokenizerSpec } from '@miniglm/data';
import { curriculumOf } from '@miniglm/core';
import { markRunSucceeded, type EvaluateJob } from '@miniglm/core/service';
import type { ActiveTasks } from './active.ts';
import { startTaskChild } from './child.ts';
import type { WorkerContext } from './context.ts';
import { checkpointFile, datasetDir } from './materialize.ts';
import { failRun, runIsOver } from './run-state.ts';

export async function processEvaluate(
  ctx: WorkerContext,
  active: ActiveTasks,
  job: Job<EvaluateJob>,
  token: string | undefined,
): Promise<{ evaluationId: string }> {
  const { runId } = job.data;
  const prisma = ctx.db.prisma;
  const over = await runIsOver(ctx, runId);
  if (over) throw new UnrecoverableError(`run ${runId} is ${over.status}`);
  const run = await prisma.run.findUniqueOrThrow({
    where: { id: runId },
    include: { stages: { orderBy: { index: 'asc' }, include: { dataset: true } } },
  });
  const lastStage = run.stages.at(-1)!;
  const final = await prisma.checkpoint.findFirst({ where: { stageId: lastStage.id }, orderBy: { step: 'desc' } });
  if (!final || lastStage.status !== 'succeeded') throw new Error(`run ${run.name}: its last stage has not finished`);
  // A retried job whose evaluation was already written (the worker died just after): keep it.
  const existing = await prisma.evaluation.findFirst({ where: { runId, checkpointId: final.id } });
  if (existing) {
    await markRunSucceeded(prisma, runId);
    return { evaluationId: existing.id };
  }
  const datasetDirs: string[] = [];
  for (const s of run.stages) datasetDirs.push(await datasetDir(ctx, s.dataset!));

  let shutdown = false;
  const child = startTaskChild(
    {
      kind: 'evaluate',
      curriculum: curriculumOf(run),
      checkpointFile: await checkpointFile(ctx, final.id),
      datasetDirs,
      tokenizer: run.tokenizer as unknown as TokenizerSpec,
      backend: ctx.settings.backend,
    },
    () => {},
  );
  // An evaluation has no checkpoint to stop at: a cancel or a shutdown ends it at once.
  const unregister = active.add({
    runId,
    stop: (reason) => {
      shutdown = reason === 'shutdown';
      child.kill();
    },
  });
  let last;
  try {
    last = await child.done.catch((error: Error) => ({ type: 'killed' as const, message: error.message }));
  } finally {
    unregister();
  }
  if (shutdown) {
    await job.moveToWait(token);
    throw new WaitingError();
  }
  if (await runIsOver(ctx, runId)) throw new UnrecoverableError(`run ${runId} was cancelled`);
  if (last.type === 'failed' && last.userError) throw await failRun(ctx, runId, `evaluation: ${last.message}`);
  if (last.type !== 'evaluated')
    throw new Error(`evaluation of run ${run.name}: ${'message' in last ? last.message : last.type}`);

  const e = last.evaluation;
  const lastPerplexity = e.perplexity.at(-1);
  const row = await prisma.evaluation.create({
    data: {
      runId,
      checkpointId: final.id,
      perplexity: lastPerplexity?.perplexity,
      valLoss: lastPerplexity?.loss,
      perStage: e.perplexity,
      rouge: e.rouge ? (e.rouge as object) : undefined,
      samples: e.samples,
    },
  });
  await markRunSucceeded(prisma, runId);
  return { evaluationId: row.id };
}
