/**
 * The worker's generation process: it keeps the most recently used models loaded and
 * answers one request at a time. Generation is synchronous TensorFlow.js work that may last
 * many seconds (2048 tokens × 20 samples); in the worker's own process it would block the
 * lock renewal of the stage it is training, so it lives here. It exits with its parent.
 */
import { createTokenizer, type Tokenizer } from '@miniglm/data';
import { generate, initBackend, qaPrompt, readCheckpoint, restoreModel, type LanguageModel } from '@miniglm/model';
import type { GenerateChildReply, GenerateChildRequest } from './child-protocol.ts';

interface Loaded {
  model: LanguageModel;
  tokenizer: Tokenizer;
}

const models = new Map<string, Loaded>();
let backend: Promise<string> | undefined;

process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => process.exit(0));

// One request at a time, in order.
let queue: Promise<void> = Promise.resolve();
process.on('message', (request: GenerateChildRequest) => {
  queue = queue.then(() => answer(request));
});

async function answer(request: GenerateChildRequest): Promise<void> {
  let reply: GenerateChildReply;
  try {
    const { loaded, warm } = await load(request);
    const { model, tokenizer } = loaded;
    const g = request.job;
    const prompt =
      g.mode === 'answer'
        ? qaPrompt(tokenizer, g.prompt, model.config.blockSize)
        : tokenizer.encode(g.prompt).slice(-model.config.blockSize);
    const r = generate(model, prompt.length > 0 ? prompt : [tokenizer.eotId], {
      maxNewTokens: g.maxTokens,
      temperature: g.temperature,
      topK: g.topK,
      topP: g.topP,
      samples: g.samples,
      seed: g.seed ?? Math.floor(Math.random() * 2 ** 31),
      eotId: tokenizer.eotId,
    });
    reply = {
      id: request.id,
      ok: true,
      outputs: r.tokens.map((t) => tokenizer.decode(t)),
      tokens: r.tokens.reduce((n, t) => n + t.length, 0),
      tokensPerSec: r.tokensPerSec,
      seconds: r.seconds,
      warm,
    };
  } catch (error) {
    reply = { id: request.id, ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  process.send?.(reply);
}

/** The model of a checkpoint, from the cache (most recently used last) or from its file. */
async function load(request: GenerateChildRequest): Promise<{ loaded: Loaded; warm: boolean }> {
  const id = request.job.checkpointId;
  const hit = models.get(id);
  if (hit) {
    models.delete(id);
    models.set(id, hit);
    return { loaded: hit, warm: true };
  }
  backend ??= initBackend(request.backend);
  await backend;
  const ckpt = await readCheckpoint(request.file);
  const loaded = { model: restoreModel(ckpt), tokenizer: createTokenizer(ckpt.header.tokenizer) };
  models.set(id, loaded);
  while (models.size > request.cacheSize) {
    const [oldest, value] = models.entries().next().value!;
    value.model.dispose();
    models.delete(oldest);
  }
  return { loaded, warm: false };
}
