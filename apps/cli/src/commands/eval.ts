/**
 * `miniglm eval --checkpoint model.ckpt`: perplexity on a prepared dataset's held-out split
 * and, for Q&A, ROUGE-L of the model's answers against the reference answers.
 */
import {
  createTokenizer,
  evalBatches,
  loadHeldOutQa,
  openDataset,
  readQaPairs,
  toQaSource,
  type QaPair,
} from '@miniglm/data';
import { decodedPerplexity, evaluateQa, initBackend, perplexity, readCheckpoint, restoreModel } from '@miniglm/model';
import { numberFlag, parseCommandArgs, requireFlag, weightsFlag } from '../args.ts';
import { UsageError } from '../errors.ts';

const HELP = `usage: miniglm eval --checkpoint FILE [--dataset DIR] [--qa SOURCE] [options]

  --checkpoint      a .ckpt file
  --dataset         a prepared dataset folder (runs/.datasets/...): perplexity on its val split,
                    and ROUGE-L on its held-out Q&A pairs when it is an SFT dataset
  --qa              Q&A pairs to score with ROUGE-L: a .jsonl file or poetry-qa:<name>
  --batches         validation batches for perplexity (default 20)
  --batch-size      rows per batch (default 16)
  --pairs           at most this many Q&A pairs (default 50)
  --max-new-tokens  answer length limit (default 64)
  --weights         float32 | float16 | int8: score through the sampler's decoder (KV cache, one
                    token at a time) with these weights, as sampling uses them (native backend;
                    elsewhere float32); default: the batched forward pass
  --backend         native | wasm | cpu | tensorflow | tensorflow-gpu (default: best available)
  --json            print one JSON object`;

export async function evaluate(argv: string[]): Promise<void> {
  const f = parseCommandArgs(
    'eval',
    argv,
    {
      checkpoint: { type: 'string' },
      dataset: { type: 'string' },
      qa: { type: 'string' },
      batches: { type: 'string' },
      'batch-size': { type: 'string' },
      pairs: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      weights: { type: 'string' },
      backend: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    HELP,
  );
  const file = requireFlag('checkpoint', f.checkpoint);
  const weights = weightsFlag(f.weights);
  if (!f.dataset && !f.qa) throw new UsageError('give --dataset DIR and/or --qa SOURCE to evaluate on');
  const batches = numberFlag('batches', f.batches, 20, { integer: true, min: 1, max: 100_000 });
  const batchSize = numberFlag('batch-size', f['batch-size'], 16, { integer: true, min: 1, max: 4096 });
  const maxPairs = numberFlag('pairs', f.pairs, 50, { integer: true, min: 1 });
  const maxNewTokens = numberFlag('max-new-tokens', f['max-new-tokens'], 64, { integer: true, min: 1, max: 100_000 });

  await initBackend(f.backend);
  const ckpt = await readCheckpoint(file);
  const model = restoreModel(ckpt);
  const result: Record<string, unknown> = { checkpoint: file };
  let pairs: QaPair[] = [];
  if (f.dataset) {
    const dataset = await openDataset(f.dataset);
    if (JSON.stringify(dataset.manifest.tokenizer) !== JSON.stringify(ckpt.header.tokenizer))
      throw new UsageError(`${f.dataset} was tokenized with a different tokenizer or vocabulary than ${file}`);
    const val = evalBatches(dataset, 'val', { batches, batchSize, blockSize: model.config.blockSize });
    result.perplexity = weights ? decodedPerplexity(model, val, weights) : perplexity(model, val);
    if (weights) result.weights = weights;
    if (dataset.manifest.kind === 'sft') pairs = await loadHeldOutQa(f.dataset);
  }
  if (f.qa) {
    pairs = [];
    for await (const p of readQaPairs(toQaSource({ source: f.qa, limit: maxPairs }))) pairs.push(p);
  }
  if (pairs.length > 0) {
    const qa = evaluateQa(model, createTokenizer(ckpt.header.tokenizer), pairs.slice(0, maxPairs), {
      maxNewTokens,
      weights,
    });
    result.rouge = { pairs: qa.items.length, exact: qa.exact, ...qa.mean };
    result.examples = qa.items.slice(0, 5);
  }
  model.dispose();
  if (f.json) {
    console.log(JSON.stringify(result));
    return;
  }
  const ppl = result.perplexity as { loss: number; perplexity: number } | undefined;
  const through = weights ? ` (decoded one token at a time, ${weights} weights)` : '';
  if (ppl) console.log(`held-out loss ${ppl.loss.toFixed(4)}, perplexity ${ppl.perplexity.toFixed(3)}${through}`);
  const rouge = result.rouge as
    { pairs: number; exact: number; precision: number; recall: number; f: number } | undefined;
  if (rouge)
    console.log(
      `ROUGE-L over ${rouge.pairs} pairs: P ${rouge.precision.toFixed(3)} R ${rouge.recall.toFixed(3)} F ${rouge.f.toFixed(3)}; ${rouge.exact} answered exactly`,
    );
}
