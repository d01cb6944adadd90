/**
 * The life of a stage and of a run. Their statuses are written only by the functions in
 * status.ts, each along one of these edges with a conditional update (`status in from`), so
 * two processes that disagree about a stage or a run cannot both win: the loser's update
 * touches no row and it stops.
 *
 * A stage:
 *
 *   queued ──start──> running ──finish──> succeeded
 *     │  ^               │ ├──fail────> failed
 *     │  └──hand back────┘ └──cancel──> cancelled
 *     └──────────cancel─────────────────> cancelled
 *
 * "Hand back" is a worker stopping on SIGTERM (or dying): the stage waits for the next worker,
 * which resumes it from its last checkpoint; "start" from running is a worker resuming a stage
 * whose worker died without handing it back.
 *
 * A run:
 *
 *   queued ──start──> running ──finish──> succeeded
 *     │                  ├──fail────> failed
 *     │                  └──cancel──> cancelled
 *     └──fail, cancel────────────────> failed, cancelled
 *
 * It starts with its first job, succeeds when its evaluation is written, fails when one of
 * its jobs fails for good (or its flow cannot be queued), and is cancelled by request.
 */
export type StageStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type RunStatus = StageStatus;

export const STAGE_TRANSITIONS = {
  start: { from: ['queued', 'running'], to: 'running' },
  handBack: { from: ['running'], to: 'queued' },
  finish: { from: ['running'], to: 'succeeded' },
  fail: { from: ['queued', 'running'], to: 'failed' },
  cancel: { from: ['queued', 'running'], to: 'cancelled' },
} as const satisfies Record<string, { from: readonly StageStatus[]; to: StageStatus }>;
export type StageTransition = keyof typeof STAGE_TRANSITIONS;

export const RUN_TRANSITIONS = {
  start: { from: ['queued'], to: 'running' },
  finish: { from: ['running'], to: 'succeeded' },
  fail: { from: ['queued', 'running'], to: 'failed' },
  cancel: { from: ['queued', 'running'], to: 'cancelled' },
} as const satisfies Record<string, { from: readonly RunStatus[]; to: RunStatus }>;
export type RunTransition = keyof typeof RUN_TRANSITIONS;

/** A stage or run in one of these states will not change again. */
export const FINAL_STATUSES: readonly StageStatus[] = ['succeeded', 'failed', 'cancelled'];

export function isFinal(status: StageStatus): boolean {
  return FINAL_STATUSES.includes(status);
}

export function canMove(from: StageStatus, transition: StageTransition): boolean {
  return (STAGE_TRANSITIONS[transition].from as readonly StageStatus[]).includes(from);
}

/**
 * Progress numbers the API shows for a stage: fraction done and, while it runs, the time
 * left at its current speed (iterations left × seconds per iteration).
 */
export function stageProgress(stage: {
  status: StageStatus;
  step: number;
  iterations: number;
  tokensPerSec: number | null;
  tokensPerStep: number;
}): { progress: number; etaSeconds: number | null } {
  const progress = stage.iterations > 0 ? Math.min(1, stage.step / stage.iterations) : 0;
  if (stage.status !== 'running' || !stage.tokensPerSec || stage.tokensPerSec <= 0)
    return { progress, etaSeconds: stage.status === 'succeeded' ? 0 : null };
  const secondsPerStep = stage.tokensPerStep / stage.tokensPerSec;
  return { progress, etaSeconds: Math.max(0, (stage.iterations - stage.step) * secondsPerStep) };
}
