/**
 * The train-stage job. The worker claims the stage, brings its inputs onto this machine
 * (dataset, parent checkpoint, the stage's own last checkpoint when resuming), trains in a
 * child process, and records what the child reports: metric points, checkpoints (bytes in
 * the artifact store, a Checkpoint row, an event) and the outcome.
 *
 * Resuming is exact: metric points past the checkpoint the stage resumes from are deleted
 * before training goes on, and training from a checkpoint replays the same batches, so a
 * stage interrupted any number of times ends with one point per step, like an undisturbed one.
 * Every write of an attempt is fenced by its attempt number; and because training is
 * deterministic, the one write a just-superseded attempt may still land (a checkpoint or a
 * metric point of a step) holds the same values the new attempt writes for that step.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { TokenizerSpec } from '@miniglm/data';
import type { StepMetrics } from '@miniglm/model';
import { curriculumOf } from '@miniglm/core';
import {
  cancelStageOfEndedRun,
  claimStage,
  markRunRunning,
  updateHeldStage,
  type HeldStage,
  type TrainStageJob,
} from '@miniglm/core/service';
import type { ActiveTasks, StopReason } from './active.ts';
import { startTaskChild, type TaskChild } from './child.ts';
import type { ChildMessage } from './child-protocol.ts';
import type { WorkerContext } from './context.ts';
import { checkpointFile, datasetDir } from './materialize.ts';
import { failRun, moveStage, runIsOver, StageLostError } from './run-state.ts';

export interface TrainStageResult {
  stageId: string;
  step: number;
  checkpointId: string;
  trainLoss?: number;
  valLoss?: number;
}

const METRIC_KEYS = ['trainLoss', 'valLoss', 'lr', 'gradNorm', 'tokensPerSec'] as const;
const FLUSH_MS = 1000;

export async function processTrainStage(
  ctx: WorkerContext,
  active: ActiveTasks,
  job: Job<TrainStageJob>,
  token: string | undefined,
): Promise<TrainStageResult> {
  const { runId, stageId, stageIndex } = job.data;
  const prisma = ctx.db.prisma;
  const over = await runIsOver(ctx, runId);
  if (over) {
    // Cancelled while no worker held the stage (its worker died): close it here.
    await cancelStageOfEndedRun(prisma, stageId, ctx.workerId, `the run is ${over.status}`);
    throw new UnrecoverableError(`run ${runId} is ${over.status}`);
  }
  const run = await prisma.run.findUnique({ where: { id: runId } });
  const stage = await prisma.stage.findUnique({ where: { id: stageId } });
  if (!run || !stage) throw new UnrecoverableError(`stage ${stageId} of run ${runId} does not exist`);
  if (stage.status === 'succeeded') return finishedResult(ctx, stageId);
  if (stage.status === 'failed' || stage.status === 'cancelled')
    throw new UnrecoverableError(`stage ${stage.name} is ${stage.status}`);
  if (!run.tokenizer || !stage.datasetId)
    throw new Error(`stage ${stage.name}: its data is not prepared (the prepare job has not finished)`);
  const curriculum = curriculumOf(run);

  // The weights it starts from: the previous stage's last checkpoint, or the run's initFrom.
  let parentCheckpointId = stage.parentCheckpointId;
  if (stageIndex > 0) {
    const previous = await prisma.stage.findUnique({ where: { runId_index: { runId, index: stageIndex - 1 } } });
    const parent =
      previous && (await prisma.checkpoint.findFirst({ where: { stageId: previous.id }, orderBy: { step: 'desc' } }));
    if (previous?.status !== 'succeeded' || !parent)
      throw new Error(`stage ${stage.name}: the previous stage has not finished`);
    parentCheckpointId = parent.id;
  }

  // Claim the stage: one attempt more than the last one, from where its last checkpoint is.
  const latest = await prisma.checkpoint.findFirst({ where: { stageId }, orderBy: { step: 'desc' } });
  const resumeStep = latest?.step ?? 0;
  const held = await claimStage(prisma, stage, { workerId: ctx.workerId, parentCheckpointId, resumeStep });
  if (!held) {
    const now = await runIsOver(ctx, runId);
    if (now) throw new UnrecoverableError(`run ${runId} is ${now.status}`);
    throw new Error(`stage ${stage.name} was claimed by another worker`);
  }
  await markRunRunning(prisma, runId);
  await prisma.metricPoint.deleteMany({ where: { stageId, step: { gt: resumeStep } } });

  // This attempt's stage folder: only the checkpoint it resumes from.
  const dir = path.join(ctx.workDir, 'stages', stageId);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  if (latest) fs.copyFileSync(await checkpointFile(ctx, latest.id), path.join(dir, 'model.ckpt'));
  const dataset = await prisma.dataset.findUniqueOrThrow({ where: { id: stage.datasetId } });

  const recorder = new StageRecorder(ctx, runId, held, (latest?.metrics ?? {}) as Partial<StepMetrics>);
  let stopReason: StopReason | undefined;
  let child: TaskChild | undefined;
  const onMessage = async (m: ChildMessage) => {
    try {
      await recorder.handle(m);
    } catch (error) {
      child?.kill(); // lost the stage, or the database is gone: stop training at once
      throw error;
    }
  };
  const inputs = {
    datasetDir: await datasetDir(ctx, dataset),
    parentCheckpoint: parentCheckpointId
      ? { id: parentCheckpointId, file: await checkpointFile(ctx, parentCheckpointId) }
      : undefined,
  };
  child = startTaskChild(
    {
      kind: 'train',
      curriculum,
      stageIndex,
      datasetDir: inputs.datasetDir,
      tokenizer: run.tokenizer as unknown as TokenizerSpec,
      parentCheckpoint: inputs.parentCheckpoint,
      dir,
      backend: ctx.settings.backend,
    },
    onMessage,
  );
  const stop = (reason: StopReason) => {
    stopReason ??= reason;
    child.stop();
  };
  const unregister = active.add({ runId, stop });
  // Every second: write the metrics, and look at the run. A cancel whose message this worker
  // missed (its subscriber was reconnecting) still stops the stage within a second or so.
  let flushError: unknown;
  const flusher = setInterval(() => {
    recorder
      .flush()
      .then(async () => {
        if (await runIsOver(ctx, runId)) stop('cancel');
      })
      .catch((error: unknown) => {
        flushError ??= error;
        child.kill();
      });
  }, FLUSH_MS);
  let last;
  try {
    // A cancel that came between our first look and registering would have found no task.
    if (await runIsOver(ctx, runId)) stop('cancel');
    last = await child.done;
    await recorder.flush();
  } catch (error) {
    child.kill();
    throw flushError ?? error;
  } finally {
    clearInterval(flusher);
    unregister();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  if (last.type === 'failed') {
    if (last.userError) throw await failRun(ctx, runId, `stage ${stage.name}: ${last.message}`);
    throw new Error(`stage ${stage.name}: ${last.message}`);
  }
  if (last.type !== 'trained')
    throw new Error(`stage ${stage.name}: unexpected answer ${last.type} from the training process`);
  const { outcome } = last;
  if (outcome.status === 'diverged')
    throw await failRun(ctx, runId, `stage ${stage.name} diverged: ${outcome.message}`);
  if (outcome.status === 'stopped') {
    if (stopReason === 'cancel') {
      await moveStage(
        ctx,
        held,
        'cancel',
        { type: 'cancelled', step: outcome.step, message: 'cancelled by request' },
        { finishedAt: new Date(), step: outcome.step },
      );
      throw new UnrecoverableError(`run ${runId} was cancelled`);
    }
    // Shutting down: the checkpoint is saved; give the job back for the next worker.
    await moveStage(
      ctx,
      held,
      'handBack',
      { type: 'queued', step: outcome.step, message: `handed back by ${ctx.workerId} on shutdown` },
      { step: outcome.step },
    );
    await job.moveToWait(token);
    throw new WaitingError();
  }
  await moveStage(
    ctx,
    held,
    'finish',
    {
      type: 'finished',
      step: outcome.step,
      message: `train loss ${outcome.trainLoss.toFixed(4)}${outcome.valLoss !== undefined ? `, val loss ${outcome.valLoss.toFixed(4)}` : ''}`,
    },
    { finishedAt: new Date(), step: outcome.step },
  );
  return finishedResult(ctx, stageId);
}

async function finishedResult(ctx: WorkerContext, stageId: string): Promise<TrainStageResult> {
  const ckpt = await ctx.db.prisma.checkpoint.findFirstOrThrow({ where: { stageId }, orderBy: { step: 'desc' } });
  const m = ckpt.metrics as { trainLoss?: number; valLoss?: number };
  return { stageId, step: ckpt.step, checkpointId: ckpt.id, trainLoss: m.trainLoss, valLoss: m.valLoss };
}

/** Writes what the training child reports, in order, fenced by the attempt. */
class StageRecorder {
  private points: { key: string; step: number; value: number }[] = [];
  private latest: Partial<StepMetrics>;
  private lastValLoss: number | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: WorkerContext,
    private readonly runId: string,
    private readonly stage: HeldStage,
    /** The metrics of the checkpoint it resumes from, until training reports newer ones. */
    resumedMetrics: Partial<StepMetrics>,
  ) {
    this.latest = resumedMetrics;
    this.lastValLoss = resumedMetrics.valLoss;
  }

  async handle(m: ChildMessage): Promise<void> {
    const prisma = this.ctx.db.prisma;
    if (m.type === 'started') {
      await this.fenced({ backend: m.backend });
    } else if (m.type === 'metrics') {
      const metrics = m.metrics;
      this.latest = metrics;
      if (metrics.valLoss !== undefined) this.lastValLoss = metrics.valLoss;
      for (const key of METRIC_KEYS) {
        const value = metrics[key];
        if (typeof value === 'number' && Number.isFinite(value)) this.points.push({ key, step: metrics.step, value });
      }
    } else if (m.type === 'checkpoint') {
      await this.flush();
      try {
        const { sha256 } = await this.ctx.store.put(fs.createReadStream(m.file), 'checkpoint');
        const metrics = {
          trainLoss: this.latest.trainLoss,
          valLoss: this.lastValLoss,
          lr: this.latest.lr,
          tokensPerSec: this.latest.tokensPerSec,
          backend: this.latest.backend,
        };
        await this.fenced({ step: m.step });
        await prisma.checkpoint.upsert({
          where: { stageId_step: { stageId: this.stage.id, step: m.step } },
          create: { stageId: this.stage.id, step: m.step, artifactSha256: sha256, metrics },
          update: { artifactSha256: sha256, metrics },
        });
        await prisma.stageEvent.create({
          data: { stageId: this.stage.id, type: 'checkpointed', workerId: this.ctx.workerId, step: m.step },
        });
      } finally {
        fs.rmSync(m.file, { force: true });
      }
    }
  }

  /** Writes the buffered metric points and the stage's progress. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.points.length === 0) return;
      const points = this.points;
      this.points = [];
      // Fence first: an attempt that has lost the stage writes nothing more.
      await this.fenced({ step: this.latest.step, tokensPerSec: this.latest.tokensPerSec });
      await this.ctx.db.prisma.metricPoint.createMany({
        data: points.map((p) => ({ runId: this.runId, stageId: this.stage.id, ...p })),
        skipDuplicates: true,
      });
    });
    return this.flushing;
  }

  private async fenced(progress: { step?: number; tokensPerSec?: number; backend?: string }): Promise<void> {
    if (!(await updateHeldStage(this.ctx.db.prisma, this.stage, progress)))
      throw new StageLostError(
        `stage ${this.stage.id} is no longer held by this worker (attempt ${this.stage.attempt})`,
      );
  }
}
