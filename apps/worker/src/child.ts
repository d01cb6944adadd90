/**
 * Starting a task child (task-child.ts) and following its messages from the worker.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, ChildTask } from './child-protocol.ts';

const CHILD_FILE = fileURLToPath(new URL('./task-child.ts', import.meta.url));
// Children are TypeScript too: load them through tsx, as the worker itself is.
const TSX = import.meta.resolve('tsx');

/** A child process of this worker running one of its TypeScript modules, with an IPC channel. */
export function forkModule(file: string): ChildProcess {
  return fork(file, [], { execArgv: ['--import', TSX], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

export interface TaskChild {
  /** Resolves with the child's last message (trained, evaluated or failed). */
  done: Promise<Extract<ChildMessage, { type: 'trained' | 'evaluated' | 'failed' }>>;
  /** Asks it to stop after the current iteration, with a checkpoint. */
  stop(): void;
  /** Ends it at once (a lost stage, a worker shutting down an evaluation). */
  kill(): void;
  readonly process: ChildProcess;
}

export function startTaskChild(task: ChildTask, onMessage: (m: ChildMessage) => void | Promise<void>): TaskChild {
  const child = forkModule(CHILD_FILE);
  // Messages are handled one at a time, in order: a checkpoint upload finishes before
  // the metrics after it, and the final message is answered only after everything else.
  let queue: Promise<void> = Promise.resolve();
  const done = new Promise<Extract<ChildMessage, { type: 'trained' | 'evaluated' | 'failed' }>>((resolve, reject) => {
    let last: Extract<ChildMessage, { type: 'trained' | 'evaluated' | 'failed' }> | undefined;
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'trained' || m.type === 'evaluated' || m.type === 'failed') last = m;
      queue = queue.then(async () => {
        await onMessage(m);
        // The child waits for this before it trains on (see ParentMessage).
        if (m.type === 'checkpoint' && child.connected) child.send({ type: 'stored', seq: m.seq });
      });
      // A failed message (a refused write) is reported by `done` when the child exits.
      queue.catch(() => {});
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      queue.then(
        () =>
          last
            ? resolve(last)
            : reject(
                new Error(
                  `the ${task.kind === 'train' ? 'training' : 'evaluation'} process exited (${signal ?? `code ${code}`}) before it finished`,
                ),
              ),
        reject,
      );
    });
  });
  child.send({ type: 'task', task });
  return {
    done,
    process: child,
    stop: () => {
      if (child.connected) child.send({ type: 'stop' });
    },
    kill: () => {
      child.kill('SIGKILL');
    },
  };
}
