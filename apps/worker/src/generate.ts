/**
 * The generate job behind POST /v1/generate. A long-lived child process (generate-child.ts)
 * keeps the most recently used models loaded, so a second request to the same model skips
 * loading it; generation runs there and never blocks this process's lock renewals. The
 * child is started on the first request and again if it dies.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { UnrecoverableError, type Job } from 'bullmq';
import type { GenerateJob, GenerateResult } from '@miniglm/core/service';
import type { GenerateChildReply, GenerateChildRequest } from './child-protocol.ts';
import { forkModule } from './child.ts';
import type { WorkerContext } from './context.ts';
import { checkpointFile } from './materialize.ts';

const CHILD_FILE = fileURLToPath(new URL('./generate-child.ts', import.meta.url));

export class Generator {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (r: GenerateChildReply) => void; reject: (e: Error) => void }
  >();

  constructor(private readonly ctx: WorkerContext) {}

  async run(job: GenerateJob): Promise<GenerateResult> {
    const file = await checkpointFile(this.ctx, job.checkpointId);
    const id = this.nextId++;
    const reply = await new Promise<GenerateChildReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const request: GenerateChildRequest = {
        id,
        job,
        file,
        cacheSize: this.ctx.settings.generateCacheSize,
        backend: this.ctx.settings.backend,
      };
      this.process().send(request);
    });
    if (!reply.ok) throw new Error(reply.message);
    const { ok: _ok, id: _id, ...result } = reply;
    return { checkpointId: job.checkpointId, workerId: this.ctx.workerId, ...result };
  }

  private process(): ChildProcess {
    if (this.child?.connected) return this.child;
    const child = forkModule(CHILD_FILE);
    child.on('message', (reply: GenerateChildReply) => {
      this.pending.get(reply.id)?.resolve(reply);
      this.pending.delete(reply.id);
    });
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      for (const { reject } of this.pending.values())
        reject(new Error(`the generation process exited (${signal ?? `code ${code}`})`));
      this.pending.clear();
    });
    this.child = child;
    return child;
  }

  close(): void {
    this.child?.kill();
    this.child = undefined;
  }
}

export async function processGenerate(
  ctx: WorkerContext,
  generator: Generator,
  job: Job<GenerateJob>,
): Promise<GenerateResult> {
  const exists = await ctx.db.prisma.checkpoint.findUnique({
    where: { id: job.data.checkpointId },
    select: { id: true },
  });
  if (!exists) throw new UnrecoverableError(`checkpoint ${job.data.checkpointId} does not exist`);
  return generator.run(job.data);
}
