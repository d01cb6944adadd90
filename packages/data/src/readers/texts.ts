/**
 * Every text a stage's dataset holds, whatever its kind. A curriculum trains one model, so
 * one tokenizer, across stages: a compact vocabulary must cover all of their corpora. Feed
 * the stages' texts (in turn) to collectCompactVocab, then build each dataset with that spec.
 */
import { readDocuments } from './documents.ts';
import { readQaPairs } from './qa.ts';
import { toDocumentSource, toQaSource, type DatasetSourceConfig } from './source.ts';

export async function* datasetTexts(
  config: DatasetSourceConfig | string,
  kind: 'pretrain' | 'sft',
  options: { baseDir?: string } = {},
): AsyncGenerator<string> {
  if (kind === 'pretrain') {
    yield* readDocuments(toDocumentSource(config, options));
    return;
  }
  for await (const pair of readQaPairs(toQaSource(config, options))) {
    yield pair.question;
    yield pair.answer;
  }
}
