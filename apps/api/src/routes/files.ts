/**
 * Corpus uploads. A stage on the service cannot name a path on the API's disk (workers run
 * elsewhere), so a corpus is uploaded here and named "file:<id>" in a curriculum.
 *
 * The body is spooled to a temporary file as it arrives (never held whole in memory), then
 * read through once with the same readers training uses: a file that is not what its
 * extension says is refused here, with the reader's message (which names the line), instead
 * of failing a prepare job later. Only then are its bytes stored.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { asyncBufferFromFile, parquetMetadataAsync, parquetSchema } from 'hyparquet';
import { FILE_FORMATS, readRecords, type FileFormat } from '@miniglm/data';
import {
  FILE_SOURCE_PREFIX,
  deleteFile,
  isUuid,
  quotaRefusal,
  writeWithinQuotas,
  type QuotaAsk,
  type QuotaOwner,
} from '@miniglm/core/service';
import type { DbModels, Prisma, PrismaClient } from '@miniglm/core/db';
import { ownerOf, ownerScope, spareQuotas } from '../auth.ts';
import type { Api, ApiContext } from '../context.ts';
import { HttpError, HttpTooManyRequests, badRequest, fromService, notFound } from '../errors.ts';
import { FileList, FileView, NoContent, errors, tooManyRequests } from '../responses.ts';
import { decodeCursor, olderThan, toPage } from '../pagination.ts';
import { IdParams, ListFilesQuery, UploadBody, UploadQuery } from '../schemas.ts';
import { stringProblem } from '../input-checks.ts';
import { validateAllButBody } from '../validation.ts';

export const MAX_UPLOAD_BYTES = 256 * 1024 * 1024;
// Only a type a browser cannot send cross-site without a preflight (cross-site.ts): not text/plain.
const UPLOAD_TYPES = ['application/octet-stream'];
const EXTENSIONS = Object.keys(FILE_FORMATS).join(' ');

/** What the content-type parser hands the route: where the body was spooled. */
interface Spooled {
  kind: 'spooled-upload';
  dir: string;
  file: string;
  size: number;
  /** Of the bytes, hashed as they arrive: the quota check knows a file the key holds already. */
  sha256: string;
}
const isSpooled = (body: unknown): body is Spooled => (body as Spooled | undefined)?.kind === 'spooled-upload';

export function formatOf(name: string): FileFormat {
  const ext = path.extname(name).toLowerCase() as keyof typeof FILE_FORMATS;
  const format = FILE_FORMATS[ext];
  if (!format)
    throw badRequest(
      `query string /name: "${name}" has ${ext ? `the extension ${ext}` : 'no extension'}; the formats that can be uploaded are ${EXTENSIONS}`,
    );
  return format;
}

async function spool(request: FastifyRequest, payload: NodeJS.ReadableStream): Promise<Spooled> {
  // Refuse what we can before receiving the bytes: a wrong name, a declared size over the limit.
  const { name } = request.query as { name?: unknown };
  if (typeof name !== 'string' || name === '')
    throw badRequest(
      'query string /name: required: the file name, e.g. ?name=corpus.jsonl (its extension decides the format)',
    );
  formatOf(name);
  const declared = Number(request.headers['content-length']);
  if (declared > MAX_UPLOAD_BYTES) throw tooLarge();

  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'miniglm-upload-'));
  const file = path.join(dir, `upload${path.extname(name).toLowerCase()}`);
  let size = 0;
  const hash = createHash('sha256');
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      hash.update(chunk);
      done(size > MAX_UPLOAD_BYTES ? tooLarge() : null, chunk);
    },
  });
  try {
    await pipeline(payload, count, fs.createWriteStream(file));
  } catch (error) {
    await fs.promises.rm(dir, { recursive: true, force: true });
    throw error;
  }
  return { kind: 'spooled-upload', dir, file, size, sha256: hash.digest('hex') };
}

const tooLarge = () =>
  new HttpError(413, `the file is larger than ${MAX_UPLOAD_BYTES / 1024 / 1024} MiB, the most POST /v1/files takes`);

/** Column names of a parquet file (readRecords reads only the columns it is given). */
async function parquetColumns(file: string): Promise<string[]> {
  try {
    const metadata = await parquetMetadataAsync(await asyncBufferFromFile(file));
    return parquetSchema(metadata).children.map((c) => c.element.name);
  } catch (error) {
    throw badRequest(`not a readable parquet file (${error instanceof Error ? error.message : String(error)})`);
  }
}

/** Reads every record once; the count and the first record's field names are kept. */
async function inspect(
  upload: Spooled,
  name: string,
  format: FileFormat,
): Promise<{ records: number; fields: string[] }> {
  const columns = format === 'parquet' ? await parquetColumns(upload.file) : [];
  let records = 0;
  let fields: string[] = [];
  try {
    for await (const record of readRecords(upload.file, format, columns)) {
      if (records === 0 && format !== 'txt') {
        const v = record.value;
        fields = v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v) : [];
      }
      records++;
    }
  } catch (error) {
    // The readers name the place ("<path>:12: not valid JSON"): show it with the uploaded name.
    const message = (error instanceof Error ? error.message : String(error)).replaceAll(upload.file, name);
    throw badRequest(`${name} is not a valid ${format} file: ${message}`);
  }
  if (records === 0) throw badRequest(`${name} holds no records: an empty corpus cannot train anything`);
  // Field names are stored as text: one Postgres cannot hold is refused here, before any write.
  for (const field of fields) {
    const problem = stringProblem(field);
    if (problem) throw badRequest(`${name}: the first record's field name ${JSON.stringify(field)} ${problem}`);
  }
  return { records, fields };
}

function fileView(row: DbModels.DatasetFile): Static<typeof FileView> {
  return {
    id: row.id,
    name: row.name,
    format: row.format,
    size: Number(row.size),
    records: row.records,
    fields: row.fields,
    sha256: row.artifactSha256,
    source: `${FILE_SOURCE_PREFIX}${row.id}`,
    createdAt: row.createdAt,
  };
}

const uploadAsk = (bytes: number, sha256: string): QuotaAsk => ({ kind: 'upload', bytes, sha256 });

/**
 * Inserts an uploaded file's row; with a quota, only within it, checked under the owner's
 * lock so that two uploads at the edge cannot both pass (a 429 otherwise).
 */
async function createFile(
  prisma: PrismaClient,
  quota: QuotaOwner | undefined,
  { data }: { data: Prisma.DatasetFileUncheckedCreateInput },
): Promise<DbModels.DatasetFile> {
  if (!quota) return prisma.datasetFile.create({ data });
  const ask = uploadAsk(Number(data.size), data.artifactSha256);
  const written = await writeWithinQuotas(prisma, quota, ask, (tx) => tx.datasetFile.create({ data }));
  if (!written.ok) throw new HttpTooManyRequests(written.error);
  return written.value;
}

export function fileRoutes(app: Api, ctx: ApiContext): void {
  const { prisma } = ctx;

  // An encapsulated scope: only here are raw bodies accepted, and JSON is not.
  app.register(async (scope: Api) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      UPLOAD_TYPES,
      { bodyLimit: MAX_UPLOAD_BYTES },
      (request: FastifyRequest, payload: NodeJS.ReadableStream) => spool(request, payload),
    );
    // The spooled file goes when the response has been sent, whatever happened.
    scope.addHook('onResponse', async (request) => {
      if (isSpooled(request.body)) await fs.promises.rm(request.body.dir, { recursive: true, force: true });
    });

    scope.post(
      '/v1/files',
      {
        bodyLimit: MAX_UPLOAD_BYTES,
        schema: {
          tags: ['files'],
          summary: 'Upload a corpus (raw bytes, application/octet-stream); name it "file:<id>" in a stage',
          querystring: UploadQuery,
          body: UploadBody,
          consumes: UPLOAD_TYPES,
          response: {
            201: FileView,
            ...errors(400, 413, 415),
            ...tooManyRequests(
              "The key's stored bytes quota (its files and its runs' checkpoints), or too many failed API-key checks from this address (with Retry-After)",
            ),
          },
        },
        // The body is the spooled file, checked by reading it; the schema only documents it.
        validatorCompiler: validateAllButBody,
      },
      async (request, reply) => {
        const upload = request.body;
        if (!isSpooled(upload)) throw new HttpError(415, `send the file's bytes as ${UPLOAD_TYPES.join(' or ')}`);
        const { name } = request.query;
        const format = formatOf(name);
        if (upload.size === 0) throw badRequest(`${name} is empty: send the file's bytes as the request body`);
        // The stored bytes quota (core's quotas.ts): checked here before the file is read
        // through and stored, and again under the owner's lock when its row is inserted.
        const quota = spareQuotas(request) ? undefined : { ownerId: ownerOf(request), defaults: ctx.quotas };
        const early = quota && (await quotaRefusal(prisma, quota, uploadAsk(upload.size, upload.sha256)));
        if (early) throw new HttpTooManyRequests(early);
        const { records, fields } = await inspect(upload, name, format);
        const open = () => fs.createReadStream(upload.file);
        const row = await ctx.artifacts.putReferenced(open, 'other', (stored) =>
          createFile(prisma, quota, {
            data: {
              name,
              format,
              size: BigInt(stored.size),
              records,
              fields,
              artifactSha256: stored.sha256,
              ownerId: ownerOf(request),
            },
          }).catch(async (error: unknown) => {
            // The quota refused the file under its lock, or the database failed: take back
            // the bytes that no row will name (unless another row does).
            if (stored.created) await ctx.artifacts.deleteIfUnreferenced(stored.sha256).catch(() => false);
            throw error;
          }),
        );
        return reply.status(201).header('location', `/v1/files/${row.id}`).send(fileView(row));
      },
    );
  });

  app.get(
    '/v1/files',
    {
      schema: {
        tags: ['files'],
        summary: 'Uploaded files, newest first, a page at a time (?limit=, ?cursor= from nextCursor)',
        querystring: ListFilesQuery,
        response: { 200: FileList, ...errors(400) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const list = '/v1/files';
      const after = cursor ? decodeCursor(cursor, list, ['date', 'uuid']) : undefined;
      const owner = ownerScope(request);
      const rows = await prisma.datasetFile.findMany({
        where: {
          ...(after ? olderThan(after[0] as Date, after[1] as string) : {}),
          ...(owner ? { ownerId: owner } : {}),
        },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: limit + 1,
      });
      const page = toPage(rows, limit, list, (f) => [f.createdAt, f.id]);
      return { files: page.items.map(fileView), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/v1/files/:id',
    {
      schema: {
        tags: ['files'],
        summary: 'One uploaded file',
        params: IdParams,
        response: { 200: FileView, ...errors(404) },
      },
    },
    async (request) => {
      const { id } = request.params;
      const owner = ownerScope(request);
      const row = isUuid(id)
        ? await prisma.datasetFile.findUnique({ where: { id, ...(owner ? { ownerId: owner } : {}) } })
        : null;
      if (!row) throw notFound(`no uploaded file with id "${id}" (GET /v1/files lists them)`);
      return fileView(row);
    },
  );

  app.delete(
    '/v1/files/:id',
    {
      schema: {
        tags: ['files'],
        summary:
          'Delete an uploaded file and collect its bytes unless another file shares them (409 while a queued or running run trains on it)',
        params: IdParams,
        response: { 204: NoContent, ...errors(404, 409) },
      },
    },
    async (request, reply) => {
      // A member deletes only its own files; another member's is not found.
      const deps = { db: ctx.db, store: ctx.artifacts, owner: ownerScope(request) };
      fromService(await deleteFile(deps, request.params.id));
      return reply.status(204).send();
    },
  );
}
