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
import { evaluateQa, initBackend, perplexity, readCheckpoint, restoreModel } from '@miniglm/model';
import { numberFlag, parseCommandArgs, requireFlag } from '../args.ts';
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
  --backend         wasm | cpu | tensorflow | tensorflow-gpu
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
      backend: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    HELP,
  );
  const file = requireFlag('checkpoint', f.checkpoint);
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
    result.perplexity = perplexity(
      model,
      evalBatches(dataset, 'val', { batches, batchSize, blockSize: model.config.blockSize }),
    );
    if (dataset.manifest.kind === 'sft') pairs = await loadHeldOutQa(f.dataset);
  }
  if (f.qa) {
    pairs = [];
    for await (const p of readQaPairs(toQaSource({ source: f.qa, limit: maxPairs }))) pairs.push(p);
  }
  if (pairs.length > 0) {
    const qa = evaluateQa(model, createTokenizer(ckpt.header.tokenizer), pairs.slice(0, maxPairs), { maxNewTokens });
    result.rouge = { pairs: qa.items.length, ...qa.mean };
    result.examples = qa.items.slice(0, 5);
  }
  model.dispose();
  if (f.json) {
    console.log(JSON.stringify(result));
    return;
  }
  const ppl = result.perplexity as { loss: number; perplexity: number } | undefined;
  if (ppl) console.log(`held-out loss ${ppl.loss.toFixed(4)}, perplexity ${ppl.perplexity.toFixed(3)}`);
  const rouge = result.rouge as { pairs: number; precision: number; recall: number; f: number } | undefined;
  if (rouge)
    console.log(
      `ROUGE-L over ${rouge.pairs} pairs: P ${rouge.precision.toFixed(3)} R ${rouge.recall.toFixed(3)} F ${rouge.f.toFixed(3)}`,
    );
}
