/**
 * Reads the bundled chinese-poetry collections as poems, and poems as documents.
 *
 * Document format (one per poem): the title, a newline, then the poem's lines (its
 * "paragraphs", usually one couplet each) joined with newlines. A work without a title is
 * just its lines. The author is not part of the document; Q&A generation uses it.
 *
 * The files differ in shape (paragraphs / para / content, title / rhythmic / chapter, works
 * nested in volumes), so one tolerant walk normalizes every record to {title, author, lines}.
 */
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { DataError, describeError } from '../errors.ts';
import { POETRY_COLLECTION_NAMES, poetryCollection, type PoetryCollection } from './poetry-collections.ts';

export interface Poem {
  title: string;
  /** Empty when the record names no author. */
  author: string;
  lines: string[];
}

let poetryRoot: string | undefined;

/** The chinese-poetry package's data folder (node_modules/chinese-poetry/dist). */
export function poetryDataDir(): string {
  if (!poetryRoot) {
    let pkg: string;
    try {
      pkg = createRequire(import.meta.url).resolve('chinese-poetry/package.json');
    } catch {
      throw new DataError('the chinese-poetry package is not installed; run npm install in the repository root');
    }
    poetryRoot = path.join(path.dirname(pkg), 'dist');
  }
  return poetryRoot;
}

export function getCollection(name: string): PoetryCollection {
  const collection = poetryCollection(name);
  if (!collection) {
    throw new DataError(
      `unknown collection "poetry:${name}"; valid: ${POETRY_COLLECTION_NAMES.map((n) => `poetry:${n}`).join(', ')}`,
    );
  }
  return collection;
}

/** The collection's files in reading order: by the number in the name, then by name. */
async function collectionFiles(collection: PoetryCollection): Promise<string[]> {
  const dir = path.join(poetryDataDir(), collection.dir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    throw new DataError(`poetry:${collection.name}: folder not found: ${dir} (is chinese-poetry 2.x installed?)`);
  }
  const number = (n: string) => Number(/\.(\d+)\.json$/.exec(n)?.[1] ?? -1);
  return names
    .filter((n) => collection.match.test(n))
    .sort((a, b) => number(a) - number(b) || (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => path.join(dir, n));
}

export async function* readPoems(name: string): AsyncGenerator<Poem> {
  const collection = getCollection(name);
  for (const file of await collectionFiles(collection)) {
    let data: unknown;
    try {
      data = JSON.parse(await readFile(file, 'utf8'));
    } catch (error) {
      throw new DataError(`poetry:${name}: cannot read ${file}: ${describeError(error)}`);
    }
    yield* extractPoems(data, collection.defaultAuthor ?? '');
  }
}

/** The document text of a poem (see the format at the top of this file). */
export function poemText(poem: Poem): string {
  return poem.title ? `${poem.title}\n${poem.lines.join('\n')}` : poem.lines.join('\n');
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() ? v.trim() : undefined);
const strings = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;

/** "（唐）孟浩然" -> "孟浩然": 千家诗 prefixes the dynasty. */
const cleanAuthor = (a: string | undefined) => a?.replace(/^[（(][^）)]*[）)]\s*/, '').trim() || undefined;

/** First clause of a line, "明月几时有，把酒问青天。" -> "明月几时有". */
const firstClause = (line: string) => line.split(/[，。、？！；：,.?!;:]/)[0]!.trim();

function* extractPoems(value: unknown, inheritedAuthor: string): Generator<Poem> {
  if (Array.isArray(value)) {
    for (const item of value) yield* extractPoems(item, inheritedAuthor);
    return;
  }
  if (!value || typeof value !== 'object') return;
  const record = value as Record<string, unknown>;
  const author = cleanAuthor(str(record.author)) ?? inheritedAuthor;
  const rawLines =
    strings(record.paragraphs) ??
    strings(record.para) ??
    strings(record.content) ??
    (str(record.content) ? [record.content as string] : undefined);
  if (rawLines) {
    const lines = rawLines.map((l) => l.trim()).filter((l) => l.length > 0);
    if (lines.length === 0) return;
    let title = str(record.title) ?? '';
    const tune = str(record.rhythmic);
    // Song ci records name only the tune, which hundreds of lyrics share; the usual way to
    // tell them apart is tune·first phrase ("水调歌头·明月几时有").
    if (!title && tune) title = `${tune}·${firstClause(lines[0]!)}`;
    if (!title) title = str(record.chapter) ?? '';
    yield { title, author, lines };
    return;
  }
  // A volume or section: its works are nested under "content" and inherit its author.
  if (Array.isArray(record.content)) yield* extractPoems(record.content, author);
}
