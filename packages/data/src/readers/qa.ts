/**
 * readQaPairs: the question/answer pairs of an SFT source, streamed. Pairs whose question or
 * answer is empty after trimming are skipped: they cannot teach the answer-then-stop the
 * mask trains for.
 */
import type { QaPair } from './qa-types.ts';
import { readRecords, textField } from './files.ts';
import { readPoetryQa } from './poetry-qa.ts';
import { DEFAULT_ANSWER_FIELD, DEFAULT_QUESTION_FIELD, toQaSource, type QaSource } from './source.ts';

export async function* readQaPairs(source: QaSource | string): AsyncGenerator<QaPair> {
  const src = typeof source === 'string' ? toQaSource(source) : source;
  const limit = src.limit ?? Infinity;
  if (limit <= 0) return;
  let count = 0;
  for await (const pair of qaPairs(src)) {
    if (pair.question.trim() === '' || pair.answer.trim() === '') continue;
    yield pair;
    if (++count >= limit) return;
  }
}

async function* qaPairs(src: QaSource): AsyncGenerator<QaPair> {
  if (src.kind === 'poetry-qa') {
    yield* readPoetryQa(src.collection);
    return;
  }
  const questionField = src.questionField ?? DEFAULT_QUESTION_FIELD;
  const answerField = src.answerField ?? DEFAULT_ANSWER_FIELD;
  for await (const record of readRecords(src.path, src.format, [questionField, answerField])) {
    yield {
      question: textField(record, questionField, false),
      answer: textField(record, answerField, false),
    };
  }
}
