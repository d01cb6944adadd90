/**
 * A progress bar per stage on a terminal; on a pipe or in CI, a plain line every few
 * percent instead of redrawn bars.
 */
import cliProgress from 'cli-progress';
import type { StageConfig } from '@miniglm/core';
import type { StageOutcome, StepMetrics } from '@miniglm/model';

export class StageProgress {
  private bar?: cliProgress.SingleBar;
  private stage?: StageConfig;
  private lastVal = '-';
  private lastPrinted = -1;
  private readonly tty = Boolean(process.stdout.isTTY);

  note(message: string): void {
    if (this.bar) this.bar.stop();
    console.log(message);
    this.bar = undefined;
  }

  start(stage: StageConfig, index: number, total: number, fromStep: number): void {
    this.stage = stage;
    this.lastVal = '-';
    this.lastPrinted = -1;
    const title = `[${index + 1}/${total}] ${stage.name} (${stage.kind})`;
    if (fromStep >= stage.iterations) {
      console.log(`${title}: already finished (${fromStep} steps), kept`);
      return;
    }
    if (fromStep > 0) console.log(`${title}: resuming at step ${fromStep}`);
    if (!this.tty) {
      console.log(`${title}: ${stage.iterations} iterations`);
      return;
    }
    this.bar = new cliProgress.SingleBar(
      {
        format: `${title} {bar} {value}/{total} | loss {loss} | val {val} | {tps} tok/s | ETA {eta_formatted}`,
        hideCursor: true,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(stage.iterations, fromStep, { loss: '-', val: '-', tps: '-' });
  }

  update(m: StepMetrics): void {
    if (m.valLoss !== undefined) this.lastVal = m.valLoss.toFixed(4);
    const payload = { loss: m.trainLoss.toFixed(4), val: this.lastVal, tps: m.tokensPerSec.toFixed(0) };
    if (this.bar) {
      this.bar.update(m.step, payload);
      return;
    }
    const total = this.stage?.iterations ?? m.step;
    const every = Math.max(1, Math.round(total / 10));
    if (m.step === total || m.step - this.lastPrinted >= every || m.valLoss !== undefined) {
      console.log(
        `  step ${m.step}/${total}  loss ${payload.loss}  val ${payload.val}  lr ${m.lr.toExponential(2)}  |g| ${m.gradNorm.toFixed(2)}  ${payload.tps} tok/s`,
      );
      this.lastPrinted = m.step;
    }
  }

  finish(outcome: StageOutcome): void {
    this.stop();
    if (outcome.status === 'diverged') console.log(`  ${outcome.message}`);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
