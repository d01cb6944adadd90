/** Checkpoints (read, download) and aliases (stable names for checkpoints). */
import type { Static } from '@sinclair/typebox';
import type { PrismaClient } from '@miniglm/core/db';
import { deleteCheckpoint, isUuid, resolveCheckpointRef } from '@miniglm/core/service';
import { ownerOf, ownerScope } from '../auth.ts';
import type { Api, ApiContext } from '../context.ts';
import { HttpError, fromService, notFound } from '../errors.ts';
import {
  AliasList,
  AliasSet,
  AliasView,
  CheckpointBytes,
  CheckpointList,
  CheckpointView,
  NoContent,
  errors,
} from '../responses.ts';
import { decodeCursor, toPage } from '../pagination.ts';
import { AliasParams, IdParams, ListAliasesQuery, ListCheckpointsQuery, PutAliasBody } from '../schemas.ts';

const checkpointInclude = {
  stage: { select: { id: true, name: true, index: true, kind: true, run: { select: { id: true, name: true } } } },
  artifact: { select: { sha256: true, size: true } },
  aliases: { select: { name: true }, orderBy: { name: 'asc' } },
} as const;

/** A checkpoint by id; `owner` (a member's key): only one of its own runs', else not found. */
async function findCheckpoint(prisma: PrismaClient, id: string, owner: string | undefined) {
  const found = isUuid(id)
    ? await prisma.checkpoint.findUnique({ where: { id, ...ownRun(owner) }, include: checkpointInclude })
    : null;
  if (!found) throw notFound(`no checkpoint with id "${id}" (GET /v1/checkpoints lists them)`);
  return found;
}

/** A checkpoint `where` part: of the member's own runs, or (no owner) any. */
const ownRun = (owner: string | undefined) => (owner ? { stage: { run: { ownerId: owner } } } : {});

/** A stored alias that belongs to another key: it is there (names are unique) but not this key's to change. */
const notYours = (name: string) =>
  new HttpError(
    403,
    `the alias "${name}" belongs to another key: only that key or an admin can move or delete it; choose another name`,
  );

function checkpointView(c: Awaited<ReturnType<typeof findCheckpoint>>): Static<typeof CheckpointView> {
  const { run, ...stage } = c.stage;
  return {
    id: c.id,
    step: c.step,
    stage,
    run,
    metrics: c.metrics,
    // BigInt does not serialize to JSON; a checkpoint is far below 2^53 bytes.
    artifact: { sha256: c.artifact.sha256, size: Number(c.artifact.size) },
    aliases: c.aliases.map((a) => a.name),
    createdAt: c.createdAt,
  };
}

/** A file name made of the run, stage and step, safe in a Content-Disposition header. */
export function checkpointFileName(run: string, stage: string, step: number): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, '_');
  return `${safe(run)}-${safe(stage)}-${step}.ckpt`;
}

export function checkpointRoutes(app: Api, ctx: ApiContext): void {
  const { prisma } = ctx;
  const aliasSelect = { name: true, checkpointId: true, createdAt: true, updatedAt: true } as const;

  app.get(
    '/v1/checkpoints',
    {
      schema: {
        tags: ['checkpoints'],
        summary:
          'Checkpoints, newest first (optionally of one run), a page at a time (?limit=, ?cursor= from nextCursor)',
        querystring: ListCheckpointsQuery,
        response: { 200: CheckpointList, ...errors(400, 404) },
      },
    },
    async (request) => {
      const { run, limit, cursor } = request.query;
      const owner = ownerScope(request);
      const list = '/v1/checkpoints';
      // Keyset on (createdAt, step, id) descending: the newest first, a stage's later step
      // first within one millisecond, the id to break what is left of a tie.
      const after = cursor ? decodeCursor(cursor, list, ['date', 'int', 'uuid']) : undefined;
      if (
        run !== undefined &&
        !(isUuid(run) && (await prisma.run.count({ where: { id: run, ...(owner ? { ownerId: owner } : {}) } })))
      )
        throw notFound(`query string /run: no run with id "${run}" (GET /v1/runs lists them)`);
      const [at, step, id] = (after ?? []) as [Date, number, string];
      const rows = await prisma.checkpoint.findMany({
        where: {
          ...(run || owner
            ? { stage: { ...(run ? { runId: run } : {}), ...(owner ? { run: { ownerId: owner } } : {}) } }
            : {}),
          ...(after
            ? {
                OR: [
                  { createdAt: { lt: at } },
                  { createdAt: at, step: { lt: step } },
                  { createdAt: at, step, id: { lt: id } },
                ],
              }
            : {}),
        },
        orderBy: [{ createdAt: 'desc' }, { step: 'desc' }, { id: 'desc' }],
        take: limit + 1,
        include: checkpointInclude,
      });
      const page = toPage(rows, limit, list, (c) => [c.createdAt, c.step, c.id]);
      return { checkpoints: page.items.map(checkpointView), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/v1/checkpoints/:id',
    {
      schema: {
        tags: ['checkpoints'],
        summary: 'A checkpoint with its stage, run, metrics, artifact and aliases',
        params: IdParams,
        response: { 200: CheckpointView, ...errors(404) },
      },
    },
    async (request) => checkpointView(await findCheckpoint(prisma, request.params.id, ownerScope(request))),
  );

  app.get(
    '/v1/checkpoints/:id/download',
    {
      schema: {
        tags: ['checkpoints'],
        summary: "The checkpoint's bytes (weights, optimizer and sampler state)",
        params: IdParams,
        response: { 200: CheckpointBytes, ...errors(404) },
      },
    },
    async (request, reply) => {
      const c = await findCheckpoint(prisma, request.params.id, ownerScope(request));
      const stream = await ctx.artifacts.stream(c.artifact.sha256);
      if (!stream)
        throw new HttpError(
          404,
          `the bytes of checkpoint ${c.id} are not stored (artifact ${c.artifact.sha256} is missing or incomplete)`,
        );
      // The store verifies the sha256 as it streams; a corrupt artifact ends the stream with
      // an error, which aborts the response instead of completing it with wrong bytes.
      return reply
        .type('application/octet-stream')
        .header('content-length', String(c.artifact.size))
        .header(
          'content-disposition',
          `attachment; filename="${checkpointFileName(c.stage.run.name, c.stage.name, c.step)}"`,
        )
        .header('x-sha256', c.artifact.sha256)
        .send(stream);
    },
  );

  app.delete(
    '/v1/checkpoints/:id',
    {
      schema: {
        tags: ['checkpoints'],
        summary:
          'Delete a checkpoint of a finished run and collect its bytes (409 while an alias names it, a stage started from it, or it was evaluated)',
        params: IdParams,
        response: { 204: NoContent, ...errors(404, 409) },
      },
    },
    async (request, reply) => {
      // A member deletes only the checkpoints of its own runs; another member's is not found.
      const deps = { db: ctx.db, store: ctx.artifacts, owner: ownerScope(request) };
      fromService(await deleteCheckpoint(deps, request.params.id));
      return reply.status(204).send();
    },
  );

  // ------------------------------------------------------------------ aliases

  app.get(
    '/v1/aliases',
    {
      schema: {
        tags: ['aliases'],
        summary: 'Aliases by name, a page at a time (?limit=, ?cursor= from nextCursor)',
        querystring: ListAliasesQuery,
        response: { 200: AliasList, ...errors(400) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const list = '/v1/aliases';
      // The name is the key: the next page starts after the last name sent.
      const after = cursor ? (decodeCursor(cursor, list, ['string'])[0] as string) : undefined;
      const owner = ownerScope(request);
      const rows = await prisma.alias.findMany({
        where: { ...(after === undefined ? {} : { name: { gt: after } }), ...(owner ? { ownerId: owner } : {}) },
        orderBy: { name: 'asc' },
        take: limit + 1,
        select: aliasSelect,
      });
      const page = toPage(rows, limit, list, (a) => [a.name]);
      return { aliases: page.items, nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/v1/aliases/:name',
    {
      schema: {
        tags: ['aliases'],
        summary: 'One alias',
        params: AliasParams,
        response: { 200: AliasView, ...errors(400, 404) },
      },
    },
    async (request) => {
      const owner = ownerScope(request);
      const alias = await prisma.alias.findUnique({
        where: { name: request.params.name, ...(owner ? { ownerId: owner } : {}) },
        select: aliasSelect,
      });
      if (!alias) throw notFound(`no alias "${request.params.name}" (GET /v1/aliases lists them)`);
      return alias;
    },
  );

  app.put(
    '/v1/aliases/:name',
    {
      schema: {
        tags: ['aliases'],
        summary: 'Point an alias at a checkpoint (creates or moves it)',
        params: AliasParams,
        body: PutAliasBody,
        response: { 200: AliasSet, ...errors(400, 403, 404, 413, 415) },
      },
    },
    async (request) => {
      const owner = ownerScope(request);
      const ref = await resolveCheckpointRef(prisma, request.body.checkpoint, owner);
      if (!ref)
        throw notFound(
          `/checkpoint: no checkpoint or alias "${request.body.checkpoint}" (GET /v1/checkpoints and GET /v1/aliases list them)`,
        );
      const { name } = request.params;
      const { checkpointId } = ref;
      if (!owner)
        // An admin (or keyless) moves any alias; the alias keeps its owner, a new one is the admin's.
        return prisma.alias.upsert({
          where: { name },
          create: { name, checkpointId, ownerId: ownerOf(request) },
          update: { checkpointId },
          select: { name: true, checkpointId: true },
        });
      // A member moves only its own alias. Update-then-create, so that two keys racing for a
      // new name cannot both win: the unique name decides, and the loser hears 403.
      const moved = await prisma.alias.updateMany({ where: { name, ownerId: owner }, data: { checkpointId } });
      if (moved.count === 0) {
        try {
          await prisma.alias.create({ data: { name, checkpointId, ownerId: owner } });
        } catch (error) {
          if ((error as { code?: string }).code === 'P2002') throw notYours(name);
          throw error;
        }
      }
      return { name, checkpointId };
    },
  );

  app.delete(
    '/v1/aliases/:name',
    {
      schema: {
        tags: ['aliases'],
        summary: 'Remove an alias (the checkpoint stays)',
        params: AliasParams,
        response: { 204: NoContent, ...errors(400, 403, 404) },
      },
    },
    async (request, reply) => {
      const owner = ownerScope(request);
      const { name } = request.params;
      const { count } = await prisma.alias.deleteMany({ where: { name, ...(owner ? { ownerId: owner } : {}) } });
      if (count === 0 && owner && (await prisma.alias.count({ where: { name } }))) throw notYours(name);
      if (count === 0) throw notFound(`no alias "${request.params.name}" (GET /v1/aliases lists them)`);
      return reply.status(204).send();
    },
  );
}
