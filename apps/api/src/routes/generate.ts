/**
 * Text generation. The API holds no models: it queues a generate job, which a worker (that
 * keeps recently used models loaded) answers, and waits for the answer.
 *
 * The model is named by exactly one of `checkpoint` (a checkpoint id) or `alias` (an alias
 * name): two fields rather than one that accepts both, so a typo in an alias can never be
 * read as an id, and the error says which kind of name was not found.
 */
import { QUEUE, isUuid, type GenerateJob, type GenerateResult } from '@miniglm/core/service';
import { ownerScope } from '../auth.ts';
import { REDIS_DEADLINE_MS, deadline, requireRedis, type Api, type ApiContext } from '../context.ts';
import { HttpError, badRequest, notFound } from '../errors.ts';
import { GenerateView, errors } from '../responses.ts';
import { GenerateBody } from '../schemas.ts';

export const DEFAULT_GENERATE_TIMEOUT_MS = 120_000;

/** The model to sample from; `owner` (a member's key): only a checkpoint of its own runs, or its own alias. */
async function resolveModel(
  ctx: ApiContext,
  body: GenerateBody,
  owner: string | undefined,
): Promise<{ checkpointId: string; kind: 'pretrain' | 'sft' }> {
  const ownRun = owner ? { stage: { run: { ownerId: owner } } } : {};
  if ((body.checkpoint === undefined) === (body.alias === undefined))
    throw badRequest(
      '/checkpoint: name the model with exactly one of "checkpoint" (a checkpoint id) or "alias" (an alias name)',
    );
  const stage = { select: { stage: { select: { kind: true } } } } as const;
  if (body.checkpoint !== undefined) {
    const found = isUuid(body.checkpoint)
      ? await ctx.prisma.checkpoint.findUnique({ where: { id: body.checkpoint, ...ownRun }, ...stage })
      : null;
    if (!found)
      throw notFound(
        `/checkpoint: no checkpoint with id "${body.checkpoint}" (GET /v1/checkpoints lists them; use "alias" for a name)`,
      );
    return { checkpointId: body.checkpoint, kind: found.stage.kind };
  }
  const alias = await ctx.prisma.alias.findUnique({
    where: { name: body.alias!, ...(owner ? { ownerId: owner, checkpoint: ownRun } : {}) },
    select: { checkpointId: true, checkpoint: stage },
  });
  if (!alias) throw notFound(`/alias: no alias "${body.alias}" (GET /v1/aliases lists them)`);
  return { checkpointId: alias.checkpointId, kind: alias.checkpoint.stage.kind };
}

export function generateRoutes(app: Api, ctx: ApiContext): void {
  app.post(
    '/v1/generate',
    {
      schema: {
        tags: ['generate'],
        summary: 'Sample text from a checkpoint (answered by a worker)',
        body: GenerateBody,
        response: { 200: GenerateView, ...errors(400, 404, 413, 415, 502, 503) },
      },
    },
    async (request) => {
      const body = request.body;
      const model = await resolveModel(ctx, body, ownerScope(request));
      const data: GenerateJob = {
        checkpointId: model.checkpointId,
        prompt: body.prompt,
        // An SFT model was trained on "question [SEP] answer": by default it answers.
        mode: body.mode ?? (model.kind === 'sft' ? 'answer' : 'completion'),
        // The schema's defaults, filled in by the validator.
        temperature: body.temperature,
        topK: body.topK,
        topP: body.topP,
        maxTokens: body.maxTokens,
        samples: body.samples,
        ...(body.seed !== undefined ? { seed: body.seed } : {}),
      };

      // Listen before adding: the answer cannot come before we are listening for it.
      requireRedis(ctx);
      const events = await deadline(ctx.generateEvents(), REDIS_DEADLINE_MS, 'listening for answers');
      const queue = ctx.queues[QUEUE.generate];
      const job = await deadline(
        queue.add('generate', data, { removeOnComplete: true, removeOnFail: true }),
        REDIS_DEADLINE_MS,
        'queueing the request',
      );
      const timeoutMs = ctx.generateTimeoutMs;
      const started = Date.now();
      try {
        return (await job.waitUntilFinished(events, timeoutMs)) as GenerateResult;
      } catch (error) {
        if (Date.now() - started >= timeoutMs) {
          // Nobody took it (or nobody finished it): do not leave it for a worker that starts
          // an hour later. A job a worker holds is locked and stays; its answer is dropped.
          await job.remove().catch(() => {});
          throw new HttpError(
            503,
            `no worker answered within ${Number((timeoutMs / 1000).toFixed(1))} s; is a worker running?`,
          );
        }
        // The worker tried and failed; its message says why (a prompt the tokenizer cannot
        // take, a checkpoint whose bytes are missing, ...).
        throw new HttpError(
          502,
          `the worker could not generate: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    },
  );
}
