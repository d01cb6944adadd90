/**
 * Q&A pairs generated from the metadata of a bundled collection, standing in for the
 * report's domain Q&A set. For each work with a title and an author, in collection order:
 *
 *   《T》的作者是谁？            -> A。
 *   《T》的第一句是什么？        -> first line
 *   「line i」的下一句是什么？   -> line i+1          (for every consecutive pair of lines)
 *   「first line」出自哪首诗？   -> A的《T》。        (诗 / 词 / 曲 / 篇 by collection)
 *   请背诵A的《T》。             -> the whole text    (works of at most 8 lines only)
 *
 * Works with a missing title or author are skipped, and so are works whose title is a
 * placeholder shared by thousands ("句", "无题"), since "《句》的作者是谁？" has no one answer.
 */
import { DataError } from '../errors.ts';
import type { QaPair } from './qa-types.ts';
import { getCollection, readPoems, type Poem } from './poetry.ts';

const PLACEHOLDER_TITLES = new Set([
  '句',
  '失題',
  '失题',
  '無題',
  '无题',
  '題',
  '题',
  '闕題',
  '阙题',
  '逸句',
  '殘句',
  '残句',
]);
const MAX_RECITE_LINES = 8;

export function poemQaPairs(poem: Poem, noun: string): QaPair[] {
  const { title, author, lines } = poem;
  if (!title || !author || lines.length === 0 || PLACEHOLDER_TITLES.has(title)) return [];
  const pairs: QaPair[] = [
    { question: `《${title}》的作者是谁？`, answer: `${author}。` },
    { question: `《${title}》的第一句是什么？`, answer: lines[0]! },
  ];
  for (let i = 0; i + 1 < lines.length; i++) {
    pairs.push({ question: `「${lines[i]}」的下一句是什么？`, answer: lines[i + 1]! });
  }
  pairs.push({ question: `「${lines[0]}」出自哪首${noun}？`, answer: `${author}的《${title}》。` });
  if (lines.length <= MAX_RECITE_LINES) {
    pairs.push({ question: `请背诵${author}的《${title}》。`, answer: lines.join('\n') });
  }
  return pairs;
}

export async function* readPoetryQa(name: string): AsyncGenerator<QaPair> {
  const collection = getCollection(name);
  if (!collection.qa) {
    throw new DataError(
      `poetry-qa:${name}: its records carry no authors, so no Q&A can be generated; use it with poetry:${name} for pretraining`,
    );
  }
  for await (const poem of readPoems(name)) yield* poemQaPairs(poem, collection.noun);
}
