/**
 * readDocuments: the documents of a pretraining source, streamed one at a time.
 * Empty and whitespace-only documents are skipped (they would add nothing but an eot).
 */
import { DEFAULT_TEXT_FIELD, toDocumentSource, type DocumentSource } from './source.ts';
import { readRecords, textField } from './files.ts';
import { poemText, readPoems } from './poetry.ts';

export async function* readDocuments(source: DocumentSource | string): AsyncGenerator<string> {
  const src = typeof source === 'string' ? toDocumentSource(source) : source;
  const limit = src.limit ?? Infinity;
  if (limit <= 0) return;
  let count = 0;
  for await (const text of documentTexts(src)) {
    if (text.trim() === '') continue;
    yield text;
    if (++count >= limit) return;
  }
}

async function* documentTexts(src: DocumentSource): AsyncGenerator<string> {
  if (src.kind === 'poetry') {
    for await (const poem of readPoems(src.collection)) yield poemText(poem);
    return;
  }
  const field = src.field ?? DEFAULT_TEXT_FIELD;
  for await (const record of readRecords(src.path, src.format, [field])) {
    // .txt paragraphs are bare strings; so may be the items of a .json array or .jsonl lines.
    yield textField(record, field, src.format !== 'csv' && src.format !== 'parquet');
  }
}
