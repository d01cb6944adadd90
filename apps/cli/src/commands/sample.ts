/**
 * `miniglm sample`: N continuations of a prompt (completion models) or N answers to a
 * question (SFT models: the prompt becomes `question [SEP]`), with the generation speed.
 */
import { createTokenizer } from '@miniglm/data';
import { generate, initBackend, qaPrompt, readCheckpoint, restoreModel } from '@miniglm/model';
import { numberFlag, parseCommandArgs, requireFlag, weightsFlag } from '../args.ts';
import { UsageError } from '../errors.ts';

const HELP = `usage: miniglm sample --checkpoint FILE (--prompt TEXT | --question TEXT) [options]

  --checkpoint      a .ckpt file written by miniglm train
  --prompt          text to continue (completion)
  --question        a question for a Q&A (SFT) model; the prompt becomes "question [SEP]"
  --samples         number of samples (default 5)
  --max-new-tokens  tokens to generate per sample (default 128)
  --temperature     0 = greedy (default 0.8)
  --top-k           keep the k most likely tokens, 0 = all (default 0)
  --top-p           nucleus sampling threshold (default 1)
  --seed            random seed (default 1337)
  --no-cache        recompute the whole context for every token (slow; for checking)
  --weights         float32 | float16 | int8: the decoding weights (native backend: half or a
                    quarter of the bytes per token, slightly different logits; default float32)
  --backend         native | wasm | cpu | tensorflow | tensorflow-gpu (default: best available)
  --json            print one JSON object`;

export async function sample(argv: string[]): Promise<void> {
  const f = parseCommandArgs(
    'sample',
    argv,
    {
      checkpoint: { type: 'string' },
      prompt: { type: 'string' },
      question: { type: 'string' },
      samples: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      'no-cache': { type: 'boolean', default: false },
      weights: { type: 'string' },
      backend: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    HELP,
  );
  const file = requireFlag('checkpoint', f.checkpoint);
  if (f.prompt !== undefined && f.question !== undefined) throw new UsageError('give --prompt or --question, not both');
  const options = {
    samples: numberFlag('samples', f.samples, 5, { integer: true, min: 1, max: 256 }),
    maxNewTokens: numberFlag('max-new-tokens', f['max-new-tokens'], 128, { integer: true, min: 1, max: 100_000 }),
    temperature: numberFlag('temperature', f.temperature, 0.8, { min: 0, max: 100 }),
    topK: numberFlag('top-k', f['top-k'], 0, { integer: true, min: 0 }),
    topP: numberFlag('top-p', f['top-p'], 1, { min: 1e-6, max: 1 }),
    seed: numberFlag('seed', f.seed, 1337, { integer: true, min: 0 }),
    weights: weightsFlag(f.weights),
  };
  const backend = await initBackend(f.backend);
  const ckpt = await readCheckpoint(file);
  const tokenizer = createTokenizer(ckpt.header.tokenizer);
  const model = restoreModel(ckpt);
  const prompt =
    f.question !== undefined
      ? qaPrompt(tokenizer, f.question, model.config.blockSize)
      : tokenizer.encode(f.prompt ?? '');
  const result = generate(model, prompt, { ...options, eotId: tokenizer.eotId, useCache: !f['no-cache'] });
  const texts = result.tokens.map((t) => tokenizer.decode(t));
  model.dispose();
  if (f.json) {
    console.log(
      JSON.stringify({ backend, samples: texts, tokensPerSec: result.tokensPerSec, seconds: result.seconds }),
    );
    return;
  }
  const head = f.question ?? f.prompt ?? '';
  texts.forEach((text, i) => console.log(`[${i + 1}] ${f.question !== undefined ? '' : head}${text}`));
  console.log(
    `(${result.tokens.reduce((n, t) => n + t.length, 0)} tokens in ${result.seconds.toFixed(2)} s, ${result.tokensPerSec.toFixed(1)} tokens/s, backend ${backend})`,
  );
}
