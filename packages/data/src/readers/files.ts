/**
 * Streaming record readers, one per file format. Each yields the raw record (an object, or
 * a string for .txt paragraphs) with `where`, the place an error message should point at
 * ("data.jsonl:12", "data.csv:7", "data.json item 3", "data.parquet row 41").
 * Only .json is read whole (a JSON array cannot be streamed without a streaming parser).
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parse as parseCsv } from 'csv-parse';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { DataError, describeError } from '../errors.ts';
import type { FileFormat } from './source.ts';

export interface SourceRecord {
  value: unknown;
  where: string;
}

export async function checkFile(file: string): Promise<void> {
  let info;
  try {
    info = await stat(file);
  } catch {
    throw new DataError(`file not found: ${file}`);
  }
  if (!info.isFile()) throw new DataError(`not a file: ${file}`);
}

/** Lines of a text file, streamed, with 1-based line numbers; a leading BOM is dropped. */
async function* lines(file: string): AsyncGenerator<[line: string, lineNo: number]> {
  const input = createReadStream(file, { encoding: 'utf8' });
  // crlfDelay: a \r\n pair is one line break even when split across chunks.
  const reader = createInterface({ input, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const line of reader) {
      lineNo++;
      yield [lineNo === 1 ? line.replace(/^\uFEFF/, '') : line, lineNo];
    }
  } finally {
    reader.close();
    input.destroy();
  }
}

/**
 * A document longer than this is cut into pieces at line ends: a multi-GB novel with no
 * blank line must not become one string (V8 caps strings near 512M characters) or fill memory.
 */
export const MAX_TXT_DOCUMENT_CHARS = 1 << 20;

/** .txt: documents are separated by one or more blank (or whitespace-only) lines. */
async function* txtRecords(file: string): AsyncGenerator<SourceRecord> {
  let buffer: string[] = [];
  let chars = 0;
  let startLine = 1;
  for await (const [line, lineNo] of lines(file)) {
    if (line.trim() === '' || chars >= MAX_TXT_DOCUMENT_CHARS) {
      if (buffer.length) yield { value: buffer.join('\n'), where: `${file}:${startLine}` };
      buffer = [];
      chars = 0;
      if (line.trim() === '') continue;
    }
    if (!buffer.length) startLine = lineNo;
    buffer.push(line);
    chars += line.length + 1;
  }
  if (buffer.length) yield { value: buffer.join('\n'), where: `${file}:${startLine}` };
}

/** .jsonl: one JSON value per line; blank lines are skipped. */
async function* jsonlRecords(file: string): AsyncGenerator<SourceRecord> {
  for await (const [line, lineNo] of lines(file)) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new DataError(`${file}:${lineNo}: not valid JSON (${describeError(error)})`);
    }
    yield { value, where: `${file}:${lineNo}` };
  }
}

/** .json: an array of strings or of objects. */
async function* jsonRecords(file: string): AsyncGenerator<SourceRecord> {
  let data: unknown;
  try {
    data = JSON.parse((await readFile(file, 'utf8')).replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new DataError(`${file}: not valid JSON (${describeError(error)})`);
  }
  if (!Array.isArray(data)) {
    throw new DataError(`${file}: expected a JSON array of strings or objects, got ${typeOf(data)}`);
  }
  for (let i = 0; i < data.length; i++) yield { value: data[i], where: `${file} item ${i + 1}` };
}

/** .csv: a header row names the columns; quoted fields may span lines. */
async function* csvRecords(file: string): AsyncGenerator<SourceRecord> {
  const input = createReadStream(file);
  const parser = input.pipe(
    parseCsv({ columns: true, bom: true, info: true, skip_empty_lines: true, relax_column_count: true }),
  );
  try {
    for await (const item of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
      yield { value: item.record, where: `${file}:${item.info.lines}` };
    }
  } catch (error) {
    if (error instanceof DataError) throw error;
    const line = (error as { lines?: number }).lines;
    throw new DataError(`${file}${line ? `:${line}` : ''}: cannot parse CSV (${describeError(error)})`);
  } finally {
    input.destroy();
  }
}

/** .parquet: one row group at a time, reading only the columns asked for. */
async function* parquetRecords(file: string, columns: string[]): AsyncGenerator<SourceRecord> {
  let buffer;
  let metadata;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (error) {
    throw new DataError(`${file}: not a readable parquet file (${describeError(error)})`);
  }
  const available = parquetSchema(metadata).children.map((c) => c.element.name);
  for (const column of columns) {
    if (!available.includes(column)) {
      throw new DataError(`${file}: column "${column}" not found; columns are: ${available.join(', ')}`);
    }
  }
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows;
    try {
      rows = await parquetReadObjects({ file: buffer, metadata, columns, rowStart, rowEnd });
    } catch (error) {
      throw new DataError(`${file}: cannot read rows ${rowStart + 1}-${rowEnd} (${describeError(error)})`);
    }
    for (let i = 0; i < rows.length; i++) yield { value: rows[i], where: `${file} row ${rowStart + i + 1}` };
    rowStart = rowEnd;
  }
}

/**
 * Records of a file. `fields` are the record fields the caller needs (parquet reads only
 * those columns; the other formats read whole records anyway).
 */
export async function* readRecords(file: string, format: FileFormat, fields: string[]): AsyncGenerator<SourceRecord> {
  await checkFile(file);
  switch (format) {
    case 'txt':
      yield* txtRecords(file);
      return;
    case 'jsonl':
      yield* jsonlRecords(file);
      return;
    case 'json':
      yield* jsonRecords(file);
      return;
    case 'csv':
      yield* csvRecords(file);
      return;
    case 'parquet':
      yield* parquetRecords(file, fields);
      return;
  }
}

export function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * A text field of a record. A record that is itself a string counts as its text when the
 * caller allows it (arrays of strings in .json, string lines in .jsonl).
 */
export function textField(record: SourceRecord, field: string, allowBareString: boolean): string {
  const { value, where } = record;
  if (typeof value === 'string' && allowBareString) return value;
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new DataError(`${where}: expected an object with field "${field}", got ${typeOf(value)}`);
  }
  const text = (value as Record<string, unknown>)[field];
  if (text === undefined) {
    const keys = Object.keys(value);
    throw new DataError(
      `${where}: field "${field}" missing${keys.length ? ` (fields: ${keys.slice(0, 10).join(', ')})` : ''}`,
    );
  }
  if (text === null) return '';
  if (typeof text !== 'string') throw new DataError(`${where}: field "${field}" must be text, got ${typeOf(text)}`);
  return text;
}
