/**
 * Dataset sources as the service accepts them. Workers may run on other machines, so a
 * stage cannot name a path on the API's disk: it names a bundled collection
 * ("poetry:tang", "poetry-qa:tangshi300") or a file uploaded through POST /v1/files
 * ("file:<id>"), whose bytes live in the artifact store.
 */
import path from 'node:path';
import { DataError, toDocumentSource, toQaSource } from '@miniglm/data';
import type { Curriculum, DatasetConfig, StageConfig } from '../curriculum.ts';
import type { PrismaClient } from '../db/index.ts';
import { isUuid } from './ids.ts';

export const FILE_SOURCE_PREFIX = 'file:';

export interface UploadedFile {
  id: string;
  name: string;
  format: string;
  fields: string[];
  artifactSha256: string;
}

export function uploadedFileId(source: string): string | undefined {
  return source.startsWith(FILE_SOURCE_PREFIX) ? source.slice(FILE_SOURCE_PREFIX.length).trim() : undefined;
}

/** Where a worker keeps an uploaded file: its extension must stay, it decides the format. */
export function uploadedFileName(file: Pick<UploadedFile, 'artifactSha256' | 'name'>): string {
  return `${file.artifactSha256}${path.extname(file.name).toLowerCase()}`;
}

/** The stage's dataset config with `file:<id>` replaced by the file's local path. */
export function localDataset(
  dataset: DatasetConfig,
  files: ReadonlyMap<string, UploadedFile>,
  filesDir: string,
): DatasetConfig {
  const id = uploadedFileId(dataset.source);
  if (id === undefined) return dataset;
  const file = files.get(id);
  if (!file) throw new DataError(`uploaded file ${id} is gone`);
  return { ...dataset, source: path.join(filesDir, uploadedFileName(file)) };
}

export type SourceCheck =
  { ok: true; files: Map<string, UploadedFile> } | { ok: false; error: string; notFound?: boolean };

/**
 * Checks every stage's source before anything is written: the collection exists and suits
 * the stage kind, the uploaded file exists, has a format the stage can read and the fields
 * the stage names. Errors name the field ("/stages/1/dataset/source: ...").
 */
export async function checkSources(
  prisma: PrismaClient,
  curriculum: Curriculum,
  /** When set, only files this API key uploaded can be named (a member's submission). */
  visibleTo?: string,
): Promise<SourceCheck> {
  const files = new Map<string, UploadedFile>();
  for (const [i, stage] of curriculum.stages.entries()) {
    const at = `/stages/${i}/dataset`;
    const id = uploadedFileId(stage.dataset.source);
    if (id === undefined) {
      if (!/^(poetry|poetry-qa):/.test(stage.dataset.source))
        return {
          ok: false,
          error: `${at}/source: "${stage.dataset.source}" is not a source the service can read: upload the file with POST /v1/files and name it "file:<id>", or use a bundled collection (poetry:<name>, poetry-qa:<name>)`,
        };
      const problem = kindProblem(stage, stage.dataset);
      if (problem) return { ok: false, error: `${at}/source: ${problem}` };
      continue;
    }
    const row = isUuid(id)
      ? await prisma.datasetFile.findUnique({ where: { id, ...(visibleTo ? { ownerId: visibleTo } : {}) } })
      : null;
    if (!row)
      return {
        ok: false,
        notFound: true,
        error: `${at}/source: no uploaded file with id "${id}" (GET /v1/files lists them)`,
      };
    const file: UploadedFile = {
      id: row.id,
      name: row.name,
      format: row.format,
      fields: row.fields,
      artifactSha256: row.artifactSha256,
    };
    files.set(id, file);
    // Check the kind against a stand-in path with the file's extension: no bytes needed.
    const problem = kindProblem(stage, { ...stage.dataset, source: `/uploads/${file.name}` });
    if (problem)
      return {
        ok: false,
        error: `${at}/source: ${problem.replace(`/uploads/${file.name}`, `file:${id} (${file.name})`)}`,
      };
    if (file.format !== 'txt') {
      const wanted =
        stage.kind === 'sft'
          ? ([
              ['questionField', stage.dataset.questionField],
              ['answerField', stage.dataset.answerField],
            ] as const)
          : ([['field', stage.dataset.field ?? 'text']] as const);
      for (const [key, name] of wanted) {
        if (file.fields.length > 0 && !file.fields.includes(name))
          return {
            ok: false,
            error: `${at}/${key}: "${name}" is not a field of ${file.name} (its fields: ${file.fields.join(', ')})`,
          };
      }
    }
  }
  return { ok: true, files };
}

function kindProblem(stage: StageConfig, dataset: DatasetConfig): string | undefined {
  try {
    if (stage.kind === 'pretrain') toDocumentSource(dataset);
    else toQaSource(dataset);
    return undefined;
  } catch (error) {
    if (error instanceof DataError) return error.message;
    throw error;
  }
}
