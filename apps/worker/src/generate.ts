/**
 * The generate job behind POST /v1/generate. Loading a checkpoint costs more than a short
 * answer, so the worker keeps the most recently used models loaded (an LRU of a few).
 * Generation runs in the worker's own process: an answer takes a second or two, well
 * inside the job lock, and the model stays warm for the next request.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import { createTokenizer, type Tokenizer } from '@miniglm/data';
import { generate, initBackend, qaPrompt, readCheckpoint, restoreModel, type LanguageModel } from '@miniglm/model';
import type { GenerateJob, GenerateResult } from '@miniglm/core/service';
import type { WorkerContext } from './context.ts';
import { checkpointFile } from './materialize.ts';

interface Loaded {
  model: LanguageModel;
  tokenizer: Tokenizer;
}

export class ModelCache {
  private readonly models = new Map<string, Loaded>();
  private backendReady: Promise<string> | undefined;

  constructor(
    private readonly ctx: WorkerContext,
    private readonly size: number,
  ) {}

  async get(checkpointId: string): Promise<{ loaded: Loaded; warm: boolean }> {
    const hit = this.models.get(checkpointId);
    if (hit) {
      // Map order is insertion order: re-inserting marks it most recently used.
      this.models.delete(checkpointId);
      this.models.set(checkpointId, hit);
      return { loaded: hit, warm: true };
    }
    this.backendReady ??= initBackend(this.ctx.settings.backend);
    await this.backendReady;
    const ckpt = await readCheckpoint(await checkpointFile(this.ctx, checkpointId));
    const loaded = { model: restoreModel(ckpt), tokenizer: createTokenizer(ckpt.header.tokenizer) };
    this.models.set(checkpointId, loaded);
    while (this.models.size > this.size) {
      const [oldest, value] = this.models.entries().next().value!;
      value.model.dispose();
      this.models.delete(oldest);
    }
    return { loaded, warm: false };
  }

  dispose(): void {
    for (const { model } of this.models.values()) model.dispose();
    this.models.clear();
  }
}

export async function processGenerate(ctx: WorkerContext, cache: ModelCache, job: Job<GenerateJob>): Promise<GenerateResult> {
  const g = job.data;
  const exists = await ctx.db.prisma.checkpoint.findUnique({ where: { id: g.checkpointId }, select: { id: true } });
  if (!exists) throw new UnrecoverableError(`checkpoint ${g.checkpointId} does not exist`);
  const { loaded, warm } = await cache.get(g.checkpointId);
  const { model, tokenizer } = loaded;
  const prompt = g.mode === 'answer' ? qaPrompt(tokenizer, g.prompt, model.config.blockSize) : tokenizer.encode(g.prompt).slice(-model.config.blockSize);
  const r = generate(model, prompt.length > 0 ? prompt : [tokenizer.eotId], {
    maxNewTokens: g.maxTokens,
    temperature: g.temperature,
    topK: g.topK,
    topP: g.topP,
    samples: g.samples,
    seed: g.seed ?? Math.floor(Math.random() * 2 ** 31),
    eotId: tokenizer.eotId,
  });
  return {
    checkpointId: g.checkpointId,
    outputs: r.tokens.map((t) => tokenizer.decode(t)),
    tokens: r.tokens.reduce((n, t) => n + t.length, 0),
    tokensPerSec: r.tokensPerSec,
    seconds: r.seconds,
    workerId: ctx.workerId,
    warm,
  };
}
