/**
 * Evaluation as the report did it: perplexity on held-out data, and ROUGE-L of generated
 * answers against reference answers on a held-out Q&A set.
 */
import type { Batch, Tokenizer } from '@miniglm/data';
import { generate } from './generate.ts';
import type { LanguageModel } from './model.ts';
import { meanRouge, rougeL, type RougeScore } from './rouge.ts';
import { evaluateLoss } from './trainer.ts';

/** exp(mean cross-entropy) over the counted positions of the batches. */
export function perplexity(model: LanguageModel, batches: Iterable<Batch>): { loss: number; perplexity: number } {
  const loss = evaluateLoss(model, batches);
  return { loss, perplexity: Math.exp(loss) };
}

export interface QaItem {
  question: string;
  reference: string;
  generated: string;
  rouge: RougeScore;
}

/** The prompt of a question-answering model: `question [SEP]`, cropped to fit the block. */
export function qaPrompt(tokenizer: Tokenizer, question: string, blockSize: number): number[] {
  const ids = [...tokenizer.encode(question), tokenizer.sepId];
  return ids.slice(-Math.max(1, blockSize - 1));
}

/**
 * Answers each question greedily (temperature 0, so scores are reproducible) and scores
 * the answer against the reference with ROUGE-L.
 */
export function evaluateQa(
  model: LanguageModel,
  tokenizer: Tokenizer,
  pairs: Iterable<{ question: string; answer: string }>,
  options: { maxNewTokens: number },
): { mean: RougeScore; items: QaItem[] } {
  const items: QaItem[] = [];
  for (const { question, answer } of pairs) {
    const { tokens } = generate(model, qaPrompt(tokenizer, question, model.config.blockSize), {
      maxNewTokens: options.maxNewTokens,
      temperature: 0,
      topK: 0,
      topP: 1,
      samples: 1,
      seed: 0,
      eotId: tokenizer.eotId,
    });
    const generated = tokenizer.decode(tokens[0]!);
    items.push({ question, reference: answer, generated, rouge: rougeL(generated, answer) });
  }
  return { mean: meanRouge(items.map((i) => i.rouge)), items };
}
