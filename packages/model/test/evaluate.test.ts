/**
 * Evaluation (src/evaluate.ts): perplexity = exp(mean CE) with the mean computed here in
 * plain JS from the model's logits (only masked positions when a mask is given); the
 * question-answering evaluation's prompt and greedy answers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Batch, Tokenizer } from '../../data/src/types.ts';
import {
  createModel,
  evaluateLoss,
  evaluateQa,
  generate,
  perplexity,
  qaPrompt,
  rougeL,
  trainStage,
  type LanguageModel,
} from '../src/index.ts';
import {
  cycleCorpus,
  gptConfig,
  logSumExp,
  lstmConfig,
  TOKENIZER,
  trainOptions,
  useTempDir,
  useWasm,
  WindowSampler,
} from './helpers.ts';
import path from 'node:path';

useWasm();
const tmp = useTempDir('eval');

const VOCAB = 32;
const corpus = cycleCorpus(VOCAB, 20, 300);

/** Sum of CE over counted positions and their count, from logits read out of the model. */
function plainCrossEntropy(model: LanguageModel, batches: Batch[]): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (const b of batches) {
    const logits = tf.tidy(() =>
      model.logits(tf.tensor2d(b.x, [b.batchSize, b.blockSize], 'int32'), { training: false }).dataSync(),
    );
    for (let i = 0; i < b.y.length; i++) {
      const w = b.mask ? b.mask[i]! : 1;
      if (w === 0) continue;
      const row = Array.from(logits.subarray(i * VOCAB, (i + 1) * VOCAB));
      sum += w * (logSumExp(row) - row[b.y[i]!]!);
      count += w;
    }
  }
  return { sum, count };
}

describe.each([
  [
    'gpt',
    () => createModel(gptConfig({ vocabSize: VOCAB, blockSize: 8, layers: 1, dim: 16, heads: 2, dropout: 0.3 }), 2),
  ],
  ['lstm', () => createModel(lstmConfig({ vocabSize: VOCAB, blockSize: 8, layers: 1, dim: 16, dropout: 0.3 }), 2)],
] as const)('perplexity (%s)', (kind, make) => {
  let model: LanguageModel;
  let batches: Batch[];
  beforeAll(async () => {
    model = make();
    // A few training steps, so the model is not near-uniform and positions differ.
    await trainStage({
      model,
      tokenizer: TOKENIZER,
      sampler: new WindowSampler(corpus, 4, 8, 1),
      valBatches: () => [],
      options: trainOptions({ iterations: 8, lr: 1e-2, weightDecay: 0 }),
      checkpointPath: path.join(tmp(), `${kind}.ckpt`),
    });
    const sampler = new WindowSampler(corpus, 3, 8, 5);
    batches = [sampler.next(), sampler.next(), sampler.next()];
  });
  afterAll(() => model.dispose());

  it('equals exp(mean CE) computed independently from the logits', () => {
    const { sum, count } = plainCrossEntropy(model, batches);
    expect(count).toBe(3 * 3 * 8);
    const result = perplexity(model, batches);
    expect(Math.abs(result.loss - sum / count)).toBeLessThan(1e-5);
    expect(Math.abs(result.perplexity - Math.exp(sum / count)) / Math.exp(sum / count)).toBeLessThan(1e-5);
    // Trained a little: better than uniform, worse than perfect.
    expect(result.perplexity).toBeLessThan(VOCAB);
    expect(result.perplexity).toBeGreaterThan(1);
    // Evaluation never applies dropout: the same number twice.
    expect(perplexity(model, batches).loss).toBe(result.loss);
  });

  it('with a mask, counts only masked positions (batches of different weight)', () => {
    const masks = [
      Float32Array.from({ length: 24 }, (_, i) => (i % 8 >= 3 ? 1 : 0)), // 15 positions
      Float32Array.from({ length: 24 }, (_, i) => (i === 5 ? 1 : 0)), // 1 position
      new Float32Array(24), // none: contributes nothing
    ];
    const masked = batches.map((b, i) => ({ ...b, mask: masks[i] }));
    const { sum, count } = plainCrossEntropy(model, masked);
    expect(count).toBe(16);
    const result = perplexity(model, masked);
    expect(Math.abs(result.loss - sum / count)).toBeLessThan(1e-5);
    expect(Math.abs(result.perplexity - Math.exp(sum / count)) / Math.exp(sum / count)).toBeLessThan(1e-5);
    // The mask matters: the unmasked perplexity is another number.
    expect(Math.abs(result.loss - perplexity(model, batches).loss)).toBeGreaterThan(1e-4);
  });

  it('is NaN when no position counts', () => {
    const none = batches.map((b) => ({ ...b, mask: new Float32Array(24) }));
    expect(Number.isNaN(perplexity(model, none).perplexity)).toBe(true);
    expect(Number.isNaN(evaluateLoss(model, []))).toBe(true);
  });
});

describe('question answering evaluation', () => {
  /** A tokenizer over 'a'..'z' (ids 2..27), eot 0 and sep 1. */
  const tokenizer: Tokenizer = {
    spec: TOKENIZER,
    vocabSize: VOCAB,
    eotId: 0,
    sepId: 1,
    encode: (text) => [...text].map((c) => c.charCodeAt(0) - 95),
    decode: (ids) => Array.from(ids, (i) => (i >= 2 && i < 28 ? String.fromCharCode(i + 95) : '')).join(''),
    tokenToString: (id) => (id === 0 ? '[EOT]' : id === 1 ? '[SEP]' : String.fromCharCode(id + 95)),
  };

  it('qaPrompt is question + [SEP], keeping the last blockSize − 1 tokens', () => {
    expect(qaPrompt(tokenizer, 'abc', 8)).toEqual([2, 3, 4, 1]);
    expect(qaPrompt(tokenizer, 'abcdefghij', 8)).toEqual([6, 7, 8, 9, 10, 11, 1]);
    expect(qaPrompt(tokenizer, 'abc', 1)).toEqual([1]);
  });

  it('answers greedily and scores each answer with ROUGE-L', () => {
    const model = createModel(gptConfig({ vocabSize: VOCAB, blockSize: 8, layers: 1, dim: 16, heads: 2 }), 9);
    const pairs = [
      { question: 'abc', answer: 'd e f' },
      { question: 'xyz', answer: 'q' },
    ];
    const { mean, items } = evaluateQa(model, tokenizer, pairs, { maxNewTokens: 5 });
    expect(items).toHaveLength(2);
    for (const [i, item] of items.entries()) {
      const greedy = generate(model, qaPrompt(tokenizer, pairs[i]!.question, 8), {
        maxNewTokens: 5,
        temperature: 0,
        topK: 0,
        topP: 1,
        samples: 1,
        seed: 123,
        eotId: 0,
      });
      expect(item.generated).toBe(tokenizer.decode(greedy.tokens[0]!));
      expect(item.rouge).toEqual(rougeL(item.generated, item.reference));
    }
    expect(mean.f).toBeCloseTo((items[0]!.rouge.f + items[1]!.rouge.f) / 2, 12);
    model.dispose();
  });

  it('counts the answers that are the whole reference and nothing else', () => {
    const model = createModel(gptConfig({ vocabSize: VOCAB, blockSize: 8, layers: 1, dim: 16, heads: 2 }), 9);
    const question = 'abc';
    const answer = evaluateQa(model, tokenizer, [{ question, answer: 'x' }], { maxNewTokens: 3 }).items[0]!.generated;
    // The model's own greedy answer as the reference (padded: white space does not count), a
    // longer one, and a wrong one.
    const pairs = [
      { question, answer: ` ${answer} ` },
      { question, answer: `${answer}z` },
      { question, answer: 'q' },
    ];
    const { exact } = evaluateQa(model, tokenizer, pairs, { maxNewTokens: 3 });
    expect(exact).toBe(answer === 'q' ? 2 : 1);
    model.dispose();
  });
});
