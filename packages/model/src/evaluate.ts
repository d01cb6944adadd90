/**
 * Evaluation as the report did it: perplexity on held-out data, and ROUGE-L of generated
 * answers against reference answers on a held-out Q&A set.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Batch, Tokenizer } from '@miniglm/data';
import { generate } from './generate.ts';
import type { DecodeState, DecodeWeights, LanguageModel } from './model.ts';
import { meanRouge, rougeL, type RougeScore } from './rouge.ts';
import { evaluateLoss } from './trainer.ts';

/** exp(mean cross-entropy) over the counted positions of the batches. */
export function perplexity(model: LanguageModel, batches: Iterable<Batch>): { loss: number; perplexity: number } {
  const loss = evaluateLoss(model, batches);
  return { loss, perplexity: Math.exp(loss) };
}

/** Rows decoded together: at most what the native decoder serves from its reduced weights. */
const DECODE_ROWS = 8;

/**
 * Perplexity as sampling sees it: every window fed one token at a time through the decoder
 * (the KV cache), with the decoding weights given (on native: float32, float16 or int8 copies;
 * elsewhere the same as perplexity()). What weight reduction costs in quality, measured.
 */
export function decodedPerplexity(
  model: LanguageModel,
  batches: Iterable<Batch>,
  weights: DecodeWeights,
): { loss: number; perplexity: number } {
  const states = new Map<number, DecodeState>(); // one per group size, reused across groups
  let sum = 0;
  let weight = 0;
  try {
    for (const b of batches) {
      const T = b.blockSize;
      for (let r0 = 0; r0 < b.batchSize; r0 += DECODE_ROWS) {
        const rows = Math.min(DECODE_ROWS, b.batchSize - r0);
        let state = states.get(rows);
        if (state) model.restartDecoding(state);
        else states.set(rows, (state = model.startDecoding(rows, { weights })));
        for (let t = 0; t < T; t++) {
          const at = (r: number) => (r0 + r) * T + t;
          const ids = Array.from({ length: rows }, (_, r) => [b.x[at(r)]!]);
          const logits = tf.tidy(() => model.decode(tf.tensor2d(ids, [rows, 1], 'int32'), state!));
          const values = logits.dataSync();
          logits.dispose();
          const V = values.length / rows;
          for (let r = 0; r < rows; r++) {
            const w = b.mask ? b.mask[at(r)]! : 1;
            if (w === 0) continue;
            const row = values.subarray(r * V, (r + 1) * V);
            let max = -Infinity;
            for (const v of row) max = v > max ? v : max;
            let total = 0;
            for (const v of row) total += Math.exp(v - max);
            sum += w * (max + Math.log(total) - row[b.y[at(r)]!]!);
            weight += w;
          }
        }
      }
    }
  } finally {
    for (const state of states.values()) model.disposeDecoding(state);
  }
  const loss = weight > 0 ? sum / weight : NaN;
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
  options: { maxNewTokens: number; weights?: DecodeWeights },
): { mean: RougeScore; items: QaItem[]; exact: number } {
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
      weights: options.weights,
    });
    const generated = tokenizer.decode(tokens[0]!);
    items.push({ question, reference: answer, generated, rouge: rougeL(generated, answer) });
  }
  // Exact answers: the whole reference and nothing else, up to surrounding white space.
  const exact = items.filter((i) => i.generated.trim() === i.reference.trim()).length;
  return { mean: meanRouge(items.map((i) => i.rouge)), items, exact };
}
