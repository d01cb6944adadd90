/**
 * `npm run bench`: training and sampling throughput of our GPT next to the PyTorch
 * reference (../shared/bench/torch_ref.py) on the same machine and config.
 *
 *   training   vocab 4096, 4 layers, 4 heads, dim 128, block 128, batch 16 (torch_ref's
 *              defaults, with biases as torch's nn.Linear has them); 3 warm-up + 20 steps
 *   sampling   64 new tokens from one start token, one sample, with and without KV cache
 *   answer     512 new tokens from the default demo model (examples/poetry-curriculum.yaml)
 *
 * Options: --steps N, --no-torch, --backend NAME. Prints a table and one JSON line.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { createRng, type Batch, type BatchSampler, type SamplerState } from '@miniglm/data';
import { parseCurriculum } from '@miniglm/core';
import {
  createModel,
  generate,
  initBackend,
  parameterCount,
  resolveModelConfig,
  trainStage,
  type LanguageModel,
} from '@miniglm/model';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '20' },
    'no-torch': { type: 'boolean', default: false },
    backend: { type: 'string' },
  },
});
const STEPS = Number(args.steps);
const WARMUP = 3;
const REF = { vocab: 4096, layers: 4, heads: 4, dim: 128, block: 128, batch: 16 };

/** Uniform random tokens, as torch_ref trains on: throughput does not depend on the data. */
function randomSampler(vocab: number, batchSize: number, blockSize: number): BatchSampler {
  const rng = createRng(0);
  let drawn = 0;
  const ids = () => Int32Array.from({ length: batchSize * blockSize }, () => rng.int(vocab));
  return {
    batchSize,
    blockSize,
    next: (): Batch => (drawn++, { batchSize, blockSize, x: ids(), y: ids() }),
    getState: (): SamplerState => ({ kind: 'pretrain', rng: rng.getState(), drawn }),
    setState: (s) => rng.setState(s.rng),
  };
}

async function benchTraining(): Promise<{ tokensPerSec: number; params: number }> {
  const config = resolveModelConfig({
    kind: 'gpt',
    vocabSize: REF.vocab,
    blockSize: REF.block,
    layers: REF.layers,
    heads: REF.heads,
    dim: REF.dim,
    bias: true,
  });
  const model = createModel(config, 0);
  const sampler = randomSampler(REF.vocab, REF.batch, REF.block);
  const rates: number[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-bench-'));
  try {
    await trainStage({
      model,
      tokenizer: { name: 'char' },
      sampler,
      valBatches: () => [],
      // torch_ref's AdamW (lr 1e-3, weight decay 0.01); the rest as a curriculum stage's defaults.
      options: {
        iterations: WARMUP + STEPS,
        gradAccum: 1,
        lr: 1e-3,
        minLr: 1e-4,
        warmup: 100,
        weightDecay: 0.01,
        beta1: 0.9,
        beta2: 0.99,
        gradClip: 1,
        evalEvery: 1e9,
        checkpointEvery: 1e9,
      },
      checkpointPath: path.join(dir, 'bench.ckpt'),
      onMetrics: (m) => m.step > WARMUP && rates.push(m.tokensPerSec),
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const params = parameterCount(model);
  model.dispose();
  // Harmonic mean = total tokens / total time, as torch_ref measures it.
  return { tokensPerSec: rates.length / rates.reduce((s, r) => s + 1 / r, 0), params };
}

function sampleRate(
  model: LanguageModel,
  newTokens: number,
  useCache: boolean,
): { tokensPerSec: number; seconds: number } {
  // eotId -1 never matches, so every run produces exactly newTokens tokens.
  const run = () =>
    generate(model, [0], {
      maxNewTokens: newTokens,
      temperature: 1,
      topK: 0,
      topP: 1,
      samples: 1,
      seed: 1,
      eotId: -1,
      useCache,
    });
  run(); // warm-up: first calls compile kernels and grow the wasm heap
  const r = run();
  return { tokensPerSec: r.tokensPerSec, seconds: r.seconds };
}

function demoModel(): LanguageModel {
  const file = path.join(root, 'examples/poetry-curriculum.yaml');
  const parsed = parseCurriculum(parseYaml(fs.readFileSync(file, 'utf8')));
  if (!parsed.ok) throw new Error(`${file}: ${parsed.error}`);
  const m = parsed.value.model;
  // The demo's compact char vocabulary has a few thousand ids; 4096 rows is its size class.
  return createModel(resolveModelConfig({ ...m, vocabSize: 4096 }), 0);
}

function torchReference(): Record<string, number | string> | string {
  const script = process.env.TORCH_REF ?? path.resolve(root, '../shared/bench/torch_ref.py');
  if (!fs.existsSync(script)) return `torch_ref.py not found at ${script} (set TORCH_REF)`;
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync('/usr/bin/python3', [script], { env, encoding: 'utf8' });
  if (r.status !== 0)
    return `torch_ref.py failed (needs: apt-get install -y python3-torch libopenblas0-pthread): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number | string>;
}

const backend = await initBackend(args.backend);
const training = await benchTraining();
const refModel = createModel(
  resolveModelConfig({
    kind: 'gpt',
    vocabSize: REF.vocab,
    blockSize: REF.block,
    layers: REF.layers,
    heads: REF.heads,
    dim: REF.dim,
    bias: true,
  }),
  0,
);
const sampleCached = sampleRate(refModel, 64, true);
const sampleUncached = sampleRate(refModel, 64, false);
refModel.dispose();
const demo = demoModel();
const answer = sampleRate(demo, 512, true);
demo.dispose();
const torch = args['no-torch'] ? 'skipped (--no-torch)' : torchReference();

const rows: [string, string, string][] = [
  [
    'train tokens/s',
    training.tokensPerSec.toFixed(0),
    typeof torch === 'object' ? String(torch.train_tokens_per_s) : '-',
  ],
  ['sample tokens/s (KV cache)', sampleCached.tokensPerSec.toFixed(1), '-'],
  [
    'sample tokens/s (no cache)',
    sampleUncached.tokensPerSec.toFixed(1),
    typeof torch === 'object' ? String(torch.sample_tokens_per_s_no_cache) : '-',
  ],
  ['512-token answer, demo model (s)', answer.seconds.toFixed(2), '-'],
];
console.log(
  `backend ${backend}, ${os.cpus().length} cpus, params ${training.params}, steps ${STEPS} after ${WARMUP} warm-up`,
);
console.log(['metric'.padEnd(34), 'miniglm'.padStart(10), 'pytorch'.padStart(10)].join(''));
for (const [k, ours, theirs] of rows) console.log(k.padEnd(34) + ours.padStart(10) + theirs.padStart(10));
const ratio = typeof torch === 'object' ? training.tokensPerSec / Number(torch.train_tokens_per_s) : undefined;
if (ratio !== undefined) console.log(`training throughput ratio miniglm/pytorch: ${ratio.toFixed(2)}x`);
else console.log(`pytorch: ${torch}`);
console.log(
  JSON.stringify({
    backend,
    trainTokensPerSec: Math.round(training.tokensPerSec),
    sampleTokensPerSecCached: +sampleCached.tokensPerSec.toFixed(1),
    sampleTokensPerSecUncached: +sampleUncached.tokensPerSec.toFixed(1),
    answer512Seconds: +answer.seconds.toFixed(2),
    torch: typeof torch === 'object' ? torch : null,
    ratio: ratio === undefined ? null : +ratio.toFixed(3),
  }),
);
