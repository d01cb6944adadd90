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
 * metric point of a step) holds the same values the new attempt writes for that step. The
 * fence also refuses every write once the run is cancelled (or failed): a cancel ends the
 * child at once, and nothing of the run lands after the cancel is recorded.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { TokenizerSpec } from '@miniglm/data';
import type { StepMetrics } from '@miniglm/model';
import { curriculumOf, retentionOf, type Curriculum, type RetentionConfig } from '@miniglm/core';
import { collectArtifacts, isForeignKeyViolation, type DbModels } from '@miniglm/core/db';
import {
  applyRetention,
  cancelStageOfEndedRun,
  claimStage,
  markRunRunning,
  moveHeldStage,
  writeHeldStage,
  type HeldStage,
  type TrainStageJob,
} from '@miniglm/core/service';
import type { ActiveTasks, StopReason } from './active.ts';
import { startTaskChild, type TaskChild } from './child.ts';
import type { ChildMessage } from './child-protocol.ts';
import type { WorkerContext } from './context.ts';
import { checkpointFile, datasetDir } from './materialize.ts';
import { failRun, moveStage, runIsOver, RunEndedError, StageLostError } from './run-state.ts';

export interface TrainStageResult {
  stageId: string;
  step: number;
  checkpointId: string;
  trainLoss?: number;
  valLoss?: number;
}

const METRIC_KEYS = ['trainLoss', 'valLoss', 'lr', 'gradNorm', 'tokensPerSec'] as const;
const FLUSH_MS = 1000;

/** A stage this worker has claimed, and what training it needs. */
interface ClaimedStage {
  runId: string;
  stageIndex: number;
  name: string;
  held: HeldStage;
  curriculum: Curriculum;
  tokenizer: TokenizerSpec;
  datasetId: string;
  /** The weights it starts from: the previous stage's last checkpoint, or the run's initFrom. */
  parentCheckpointId: string | null;
  /** The stage's own last checkpoint, which this attempt resumes from. */
  resumeFrom: DbModels.Checkpoint | null;
}

/** The claimed stage's inputs, as files on this machine (named as the training child's task names them). */
interface StageInputs {
  /** This attempt's folder: only the checkpoint it resumes from; removed when training ends. */
  dir: string;
  datasetDir: string;
  parentCheckpoint?: { id: string; file: string };
}

/**
 * How training ended: the training child's last report and why it was asked to stop, if it
 * was; or the run ended under it (cancelled or failed), with the last step the fence let
 * through.
 */
type TrainingEnd =
  { last: Awaited<TaskChild['done']>; stopReason?: StopReason } | { runEnded: 'cancelled' | 'failed'; step: number };

export async function processTrainStage(
  ctx: WorkerContext,
  active: ActiveTasks,
  job: Job<TrainStageJob>,
  token: string | undefined,
): Promise<TrainStageResult> {
  const claimed = await claimTrainStage(ctx, job.data);
  if (claimed === 'succeeded') return finishedResult(ctx, job.data.stageId);
  const inputs = await materializeInputs(ctx, claimed);
  const end = await superviseTraining(ctx, active, claimed, inputs);
  return settleStage(ctx, job, token, claimed, end);
}

/**
 * Claims the stage for one more attempt of this worker, once it is sure the stage should train:
 * its run is not over, the stage has not ended, its data is prepared and the stage before it
 * has finished. The attempt resumes from the stage's last checkpoint, so metric points past it
 * are deleted. 'succeeded' when an earlier attempt already finished the stage.
 */
async function claimTrainStage(
  ctx: WorkerContext,
  { runId, stageId, stageIndex }: TrainStageJob,
): Promise<ClaimedStage | 'succeeded'> {
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
  if (stage.status === 'succeeded') return 'succeeded';
  if (stage.status === 'failed' || stage.status === 'cancelled')
    throw new UnrecoverableError(`stage ${stage.name} is ${stage.status}`);
  if (!run.tokenizer || !stage.datasetId)
    throw new Error(`stage ${stage.name}: its data is not prepared (the prepare job has not finished)`);
  const curriculum = curriculumOf(run);
  const parentCheckpointId =
    stageIndex > 0 ? await previousStageCheckpoint(ctx, runId, stageIndex, stage.name) : stage.parentCheckpointId;

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
  const tokenizer = run.tokenizer as unknown as TokenizerSpec;
  const { name, datasetId } = stage;
  return { runId, stageIndex, name, held, curriculum, tokenizer, datasetId, parentCheckpointId, resumeFrom: latest };
}

/** The checkpoint a later stage starts from: the last one of the stage before it, once that has finished. */
async function previousStageCheckpoint(
  ctx: WorkerContext,
  runId: string,
  stageIndex: number,
  name: string,
): Promise<string> {
  const prisma = ctx.db.prisma;
  const previous = await prisma.stage.findUnique({ where: { runId_index: { runId, index: stageIndex - 1 } } });
  const parent =
    previous && (await prisma.checkpoint.findFirst({ where: { stageId: previous.id }, orderBy: { step: 'desc' } }));
  if (previous?.status !== 'succeeded' || !parent)
    throw new Error(`stage ${name}: the previous stage has not finished`);
  return parent.id;
}

/** Brings the claimed stage's checkpoint to resume from, its dataset and its parent's weights onto this machine. */
async function materializeInputs(ctx: WorkerContext, claimed: ClaimedStage): Promise<StageInputs> {
  const dir = path.join(ctx.workDir, 'stages', claimed.held.id);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  if (claimed.resumeFrom)
    fs.copyFileSync(await checkpointFile(ctx, claimed.resumeFrom.id), path.join(dir, 'model.ckpt'));
  const dataset = await ctx.db.prisma.dataset.findUniqueOrThrow({ where: { id: claimed.datasetId } });
  const parent = claimed.parentCheckpointId;
  return {
    dir,
    datasetDir: await datasetDir(ctx, dataset),
    parentCheckpoint: parent ? { id: parent, file: await checkpointFile(ctx, parent) } : undefined,
  };
}

/**
 * Trains in a child process and records what it reports, until it exits. A shutdown asks it
 * to stop after its iteration, with a checkpoint; a cancel, a lost stage or a failed write
 * kills it at once (after a cancel the fence would refuse that checkpoint anyway). The
 * attempt's folder is removed however training ends.
 */
async function superviseTraining(
  ctx: WorkerContext,
  active: ActiveTasks,
  claimed: ClaimedStage,
  inputs: StageInputs,
): Promise<TrainingEnd> {
  const { runId, curriculum, stageIndex, tokenizer } = claimed;
  const resumed = (claimed.resumeFrom?.metrics ?? {}) as Partial<StepMetrics>;
  const recorder = new StageRecorder(
    ctx,
    runId,
    claimed.held,
    resumed,
    claimed.resumeFrom?.step ?? 0,
    retentionOf(curriculum),
  );
  let stopReason: StopReason | undefined;
  let child: TaskChild | undefined;
  const onMessage = (m: ChildMessage) =>
    recorder.handle(m).catch((error: unknown) => {
      child?.kill(); // lost the stage, or the database is gone: stop training at once
      throw error;
    });
  const { backend, minCheckpointSeconds } = ctx.settings;
  const task = { kind: 'train' as const, curriculum, stageIndex, tokenizer, backend, minCheckpointSeconds };
  child = startTaskChild({ ...task, ...inputs }, onMessage);
  const stop = (reason: StopReason) => {
    stopReason ??= reason;
    if (reason === 'cancel') child.kill();
    else child.stop();
  };
  const unregister = active.add({ runId, stop });
  const flusher = flushEverySecond(ctx, runId, recorder, stop, () => child.kill());
  try {
    // A cancel that came between our first look and registering would have found no task.
    if (await runIsOver(ctx, runId)) stop('cancel');
    const last = await child.done;
    await recorder.flush();
    return { last, stopReason };
  } catch (error) {
    child.kill();
    const reason = flusher.error() ?? error;
    // Killed by a cancel, or refused by the fence: the run has ended, the stage ends with it.
    const over = reason instanceof RunEndedError ? reason.runStatus : (await runIsOver(ctx, runId))?.status;
    if (over === 'cancelled' || over === 'failed') return { runEnded: over, step: recorder.writtenStep };
    throw reason;
  } finally {
    flusher.stop();
    unregister();
    fs.rmSync(inputs.dir, { recursive: true, force: true });
  }
}

/**
 * Every second: write the metrics, and look at the run. A cancel whose message this worker
 * missed (its subscriber was reconnecting) still stops the stage within a second or so. A
 * failed write kills the child; `error` is the first, the reason training ended.
 */
function flushEverySecond(
  ctx: WorkerContext,
  runId: string,
  recorder: StageRecorder,
  stop: (reason: StopReason) => void,
  kill: () => void,
): { stop(): void; error(): unknown } {
  let flushError: unknown;
  const timer = setInterval(() => {
    recorder
      .flush()
      .then(async () => {
        if (await runIsOver(ctx, runId)) stop('cancel');
      })
      .catch((error: unknown) => {
        flushError ??= error;
        kill();
      });
  }, FLUSH_MS);
  return { stop: () => clearInterval(timer), error: () => flushError };
}

/**
 * Ends the attempt as the child's last report says: the stage finished; it failed (a user's
 * error or a diverged loss fails the run, other errors are retried); it was cancelled; or the
 * worker is shutting down and hands it back to the queue.
 */
async function settleStage(
  ctx: WorkerContext,
  job: Job<TrainStageJob>,
  token: string | undefined,
  { runId, name, held }: ClaimedStage,
  end: TrainingEnd,
): Promise<TrainStageResult> {
  if ('runEnded' in end) {
    // The stage stops where its last accepted write left it. Not moved when markRunFailed has
    // already closed it.
    const message = end.runEnded === 'cancelled' ? 'cancelled by request' : 'the run failed';
    const event = { type: 'cancelled' as const, workerId: ctx.workerId, step: end.step, message };
    await moveHeldStage(ctx.db.prisma, held, 'cancel', event, { finishedAt: new Date(), step: end.step });
    throw new UnrecoverableError(`run ${runId} was ${end.runEnded}`);
  }
  const { last, stopReason } = end;
  if (last.type === 'failed') {
    if (last.userError) throw await failRun(ctx, runId, `stage ${name}: ${last.message}`);
    throw new Error(`stage ${name}: ${last.message}`);
  }
  if (last.type !== 'trained')
    throw new Error(`stage ${name}: unexpected answer ${last.type} from the training process`);
  const { outcome } = last;
  if (outcome.status === 'diverged') throw await failRun(ctx, runId, `stage ${name} diverged: ${outcome.message}`);
  const step = outcome.step;
  if (outcome.status === 'stopped') {
    if (stopReason === 'cancel') {
      const event = { type: 'cancelled' as const, step, message: 'cancelled by request' };
      await moveStage(ctx, held, 'cancel', event, { finishedAt: new Date(), step });
      throw new UnrecoverableError(`run ${runId} was cancelled`);
    }
    // Shutting down: the checkpoint is saved; give the job back for the next worker.
    const event = { type: 'queued' as const, step, message: `handed back by ${ctx.workerId} on shutdown` };
    await moveStage(ctx, held, 'handBack', event, { step });
    await job.moveToWait(token);
    throw new WaitingError();
  }
  const valLoss = outcome.valLoss !== undefined ? `, val loss ${outcome.valLoss.toFixed(4)}` : '';
  const message = `train loss ${outcome.trainLoss.toFixed(4)}${valLoss}`;
  await moveStage(ctx, held, 'finish', { type: 'finished', step, message }, { finishedAt: new Date(), step });
  return finishedResult(ctx, held.id);
}

async function finishedResult(ctx: WorkerContext, stageId: string): Promise<TrainStageResult> {
  const ckpt = await ctx.db.prisma.checkpoint.findFirstOrThrow({ where: { stageId }, orderBy: { step: 'desc' } });
  const m = ckpt.metrics as { trainLoss?: number; valLoss?: number };
  return { stageId, step: ckpt.step, checkpointId: ckpt.id, trainLoss: m.trainLoss, valLoss: m.valLoss };
}

/**
 * Writes what the training child reports, in order, through the write fence: nothing once
 * another attempt holds the stage (StageLostError) or the run has ended (RunEndedError).
 */
class StageRecorder {
  private points: { key: string; step: number; value: number }[] = [];
  private latest: Partial<StepMetrics>;
  private lastValLoss: number | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** The step of the last progress the fence let through (where a cancelled stage stopped). */
  writtenStep: number;

  constructor(
    private readonly ctx: WorkerContext,
    private readonly runId: string,
    private readonly stage: HeldStage,
    /** The metrics of the checkpoint it resumes from, until training reports newer ones. */
    resumedMetrics: Partial<StepMetrics>,
    resumeStep: number,
    /** Which of the stage's checkpoints to keep as new ones land (retention.ts). */
    private readonly retention: RetentionConfig,
  ) {
    this.latest = resumedMetrics;
    this.lastValLoss = resumedMetrics.valLoss;
    this.writtenStep = resumeStep;
  }

  async handle(m: ChildMessage): Promise<void> {
    if (m.type === 'started') {
      const { backendChange } = m;
      await this.fenced({ backend: m.backend }, async (tx) => {
        // Allowed, and said where the stage's history is read.
        if (backendChange)
          await tx.stageEvent.create({
            data: {
              stageId: this.stage.id,
              type: 'started',
              workerId: this.ctx.workerId,
              step: m.fromStep,
              message: backendChange,
            },
          });
      });
    } else if (m.type === 'metrics') {
      const metrics = m.metrics;
      this.latest = metrics;
      if (metrics.valLoss !== undefined) this.lastValLoss = metrics.valLoss;
      for (const key of METRIC_KEYS) {
        const value = metrics[key];
        if (typeof value === 'number' && Number.isFinite(value)) this.points.push({ key, step: metrics.step, value });
      }
    } else if (m.type === 'checkpoint') {
      try {
        await this.flush(); // fenced too: a run that has ended stores no more bytes
        const metrics = {
          trainLoss: this.latest.trainLoss,
          valLoss: this.lastValLoss,
          lr: this.latest.lr,
          tokensPerSec: this.latest.tokensPerSec,
          backend: this.latest.backend,
        };
        const { id: stageId } = this.stage;
        const open = () => fs.createReadStream(m.file);
        await this.ctx.store.putReferenced(open, 'checkpoint', ({ sha256 }) =>
          this.fenced({ step: m.step }, async (tx) => {
            await tx.checkpoint.upsert({
              where: { stageId_step: { stageId, step: m.step } },
              create: { stageId, step: m.step, artifactSha256: sha256, metrics },
              update: { artifactSha256: sha256, metrics },
            });
            await tx.stageEvent.create({
              data: { stageId, type: 'checkpointed', workerId: this.ctx.workerId, step: m.step },
            });
          }),
        );
        await this.applyRetention(m.step);
      } finally {
        fs.rmSync(m.file, { force: true });
      }
    }
  }

  /**
   * Deletes the stage's checkpoints its run's retention policy no longer keeps, through the
   * fence (nothing is deleted once the run has ended), then their bytes unless shared.
   */
  private async applyRetention(step: number): Promise<void> {
    let artifacts: string[] = [];
    try {
      await this.fenced({ step }, async (tx) => {
        ({ artifacts } = await applyRetention(tx, this.stage.id, this.retention));
      });
    } catch (error) {
      // An alias or a branch named one of them just as it was deleted: nothing was deleted;
      // the next checkpoint applies the policy again.
      if (isForeignKeyViolation(error)) return;
      throw error;
    }
    if (artifacts.length > 0) await collectArtifacts(this.ctx.db, artifacts, { cache: this.ctx.store });
  }

  /** Writes the buffered metric points and the stage's progress. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.points.length === 0) return;
      const points = this.points;
      this.points = [];
      const data = points.map((p) => ({ runId: this.runId, stageId: this.stage.id, ...p }));
      await this.fenced({ step: this.latest.step, tokensPerSec: this.latest.tokensPerSec }, (tx) =>
        tx.metricPoint.createMany({ data, skipDuplicates: true }),
      );
    });
    return this.flushing;
  }

  /** Writes progress and then `write` in one transaction, only while the fence lets this attempt write. */
  private async fenced(
    progress: { step?: number; tokensPerSec?: number; backend?: string },
    write: (tx: DbModels.Prisma.TransactionClient) => Promise<unknown> = async () => {},
  ): Promise<void> {
    const written = await writeHeldStage(this.ctx.db.prisma, this.stage, progress, write);
    if (written.ok) {
      if (progress.step !== undefined) this.writtenStep = progress.step;
      return;
    }
    if (written.refused === 'run-ended') throw new RunEndedError(this.runId, written.runStatus);
    throw new StageLostError(`stage ${this.stage.id} is no longer held by this worker (attempt ${this.stage.attempt})`);
  }
}
