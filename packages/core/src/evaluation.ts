/**
 * Evaluating a trained model as the report did: perplexity on each stage's held-out split,
 * ROUGE-L of generated answers on the held-out Q&A pairs of the last SFT stage, and a few
 * sampled outputs per prompt for people to read.
 */
import { loadHeldOutQa, type Tokenizer } from '@miniglm/data';
import {
  evaluateQa,
  generate,
  perplexity,
  qaPrompt,
  type LanguageModel,
  type QaItem,
  type RougeScore,
} from '@miniglm/model';
import { evaluationOf, type Curriculum } from './curriculum.ts';
import type { PreparedDataset } from './datasets.ts';
import { openStageData } from './stage-data.ts';

export interface Evaluation {
  perplexity: { stage: string; loss: number; perplexity: number }[];
  /** ROUGE-L of the answers to held-out questions; `exact`: how many were answered word for word. */
  rouge?: { stage: string; pairs: number; mean: RougeScore; items: QaItem[]; exact: number };
  samples: { prompt: string; mode: 'completion' | 'answer'; outputs: string[]; tokensPerSec: number }[];
}

export async function evaluateModel(
  model: LanguageModel,
  tokenizer: Tokenizer,
  curriculum: Curriculum,
  datasets: PreparedDataset[],
): Promise<Evaluation> {
  const e = evaluationOf(curriculum);
  const seed = curriculum.seed;
  const result: Evaluation = { perplexity: [], samples: [] };

  for (const [i, stage] of curriculum.stages.entries()) {
    const data = await openStageData(datasets[i]!, {
      blockSize: model.config.blockSize,
      batchSize: stage.batchSize,
      seed,
      evalBatches: e.valBatches,
    });
    result.perplexity.push({ stage: stage.name, ...perplexity(model, data.valBatches) });
  }

  const lastSft = [...curriculum.stages.keys()].reverse().find((i) => curriculum.stages[i]!.kind === 'sft');
  let heldOut: { question: string; answer: string }[] = [];
  if (lastSft !== undefined) {
    heldOut = await loadHeldOutQa(datasets[lastSft]!.dir);
    const pairs = heldOut.slice(0, e.rougeSamples);
    if (pairs.length > 0) {
      const qa = evaluateQa(model, tokenizer, pairs, { maxNewTokens: e.maxNewTokens });
      result.rouge = { stage: curriculum.stages[lastSft]!.name, pairs: pairs.length, ...qa };
    }
  }

  // The final model answers questions if the last stage was SFT, else it completes text.
  const answers = curriculum.stages.at(-1)!.kind === 'sft';
  const prompts = e.prompts?.length ? e.prompts : answers ? heldOut.slice(0, 2).map((p) => p.question) : [''];
  for (const prompt of prompts) {
    const ids = answers ? qaPrompt(tokenizer, prompt, model.config.blockSize) : tokenizer.encode(prompt);
    const r = generate(model, ids, {
      maxNewTokens: e.maxNewTokens,
      temperature: e.temperature,
      topK: e.topK,
      topP: e.topP,
      samples: e.samples,
      seed,
      eotId: tokenizer.eotId,
    });
    result.samples.push({
      prompt,
      mode: answers ? 'answer' : 'completion',
      outputs: r.tokens.map((t) => tokenizer.decode(t)),
      tokensPerSec: r.tokensPerSec,
    });
  }
  return result;
}
