/**
 * The tasks this worker is running now, so that a cancel message or a shutdown can reach
 * them. A task is told why it should stop; what it does then is its own business.
 */
export type StopReason = 'cancel' | 'shutdown';

export interface ActiveTask {
  runId: string;
  stop(reason: StopReason): void;
}

export class ActiveTasks {
  private readonly tasks = new Set<ActiveTask>();
  shuttingDown = false;

  add(task: ActiveTask): () => void {
    this.tasks.add(task);
    if (this.shuttingDown) task.stop('shutdown');
    return () => this.tasks.delete(task);
  }

  cancelRun(runId: string): number {
    let n = 0;
    for (const t of this.tasks) {
      if (t.runId !== runId) continue;
      t.stop('cancel');
      n++;
    }
    return n;
  }

  shutdown(): void {
    this.shuttingDown = true;
    for (const t of this.tasks) t.stop('shutdown');
  }
}
