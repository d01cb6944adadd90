/**
 * `npm run bench`: training and sampling throughput of our GPT next to the PyTorch
 * reference (../shared/bench/torch_ref.py) on the same machine and config, each PyTorch run
 * right after ours so that both see the same load.
 *
 *   training   torch_ref: vocab 4096, 4 layers, 4 heads, dim 128, block 128, batch 16 (torch_ref's
 *              defaults, with biases as torch's nn.Linear has them); 3 warm-up + 20 steps
 *              handout: vocab 8192, 6 layers, 8 heads, dim 512, block 256, batch 8 (the course
 *              handout's model); 3 warm-up + 5 steps
 *   sampling   64 new tokens from one start token, one sample, with and without KV cache
 *   answer     512 new tokens from the default demo model (examples/poetry-curriculum.yaml) and
 *              from the handout-size model (vocab 4096, a compact char vocabulary's size class),
 *              on native also with float16 and int8 weights, next to the floor that the
 *              measured memory read bandwidth sets (every weight read once per token)
 *
 * Options: --steps N, --handout-steps N (0: no handout row), --no-torch, --backend NAME.
 * Prints the backend and its thread count, a table, and one JSON line.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { parseCurriculum } from '@miniglm/core';
import {
  backendThreads,
  createModel,
  generate,
  initBackend,
  resolveModelConfig,
  type DecodeWeights,
  type LanguageModel,
} from '@miniglm/model';
import { loadNative } from '../packages/native/src/index.ts';
import { gptOf, HANDOUT, REF, trainOnRandomTokens, WARMUP, type BenchConfig } from './bench-training.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '20' },
    'handout-steps': { type: 'string', default: '5' },
    'no-torch': { type: 'boolean', default: false },
    backend: { type: 'string' },
  },
});
const STEPS = Number(args.steps);
const HANDOUT_STEPS = Number(args['handout-steps']);

async function benchTraining(c: BenchConfig, steps: number): Promise<{ tokensPerSec: number; params: number }> {
  const rates: number[] = [];
  const params = await trainOnRandomTokens(c, steps, (m) => m.step > WARMUP && rates.push(m.tokensPerSec));
  // Harmonic mean = total tokens / total time, as torch_ref measures it.
  return { tokensPerSec: rates.length / rates.reduce((s, r) => s + 1 / r, 0), params };
}

function sampleRate(
  model: LanguageModel,
  newTokens: number,
  useCache: boolean,
  weights: DecodeWeights = 'float32',
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
      weights,
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

/** torch_ref.py on the same config and thread count, or why it could not run. */
function torchReference(c: BenchConfig, steps: number, threads: number): Record<string, number | string> | string {
  const script = process.env.TORCH_REF ?? path.resolve(root, '../shared/bench/torch_ref.py');
  if (!fs.existsSync(script)) return `torch_ref.py not found at ${script} (set TORCH_REF)`;
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const kv = Object.entries({ ...c, steps, threads }).map(([k, v]) => `${k}=${v}`);
  const r = spawnSync('/usr/bin/python3', [script, ...kv], { env, encoding: 'utf8' });
  if (r.status !== 0)
    return `torch_ref.py failed (needs: apt-get install -y python3-torch libopenblas0-pthread): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number | string>;
}

const backend = await initBackend(args.backend);
const threads = backend === 'native' ? backendThreads() : os.availableParallelism();
const train: {
  name: string;
  config: BenchConfig;
  ours: { tokensPerSec: number; params: number };
  torch: Record<string, number | string> | string;
}[] = [];
for (const [name, config, steps] of [
  ['torch_ref', REF, STEPS],
  ['handout', HANDOUT, HANDOUT_STEPS],
] as const) {
  if (!(steps > 0)) continue;
  const ours = await benchTraining(config, steps);
  const torch = args['no-torch'] ? 'skipped (--no-torch)' : torchReference(config, steps, threads);
  train.push({ name, config, ours, torch });
}
const refModel = createModel(gptOf(REF), 0);
const sampleCached = sampleRate(refModel, 64, true);
const sampleUncached = sampleRate(refModel, 64, false);
refModel.dispose();
const demo = demoModel();
const answer = sampleRate(demo, 512, true);
demo.dispose();
const handoutModel = createModel(gptOf(HANDOUT, 4096), 0);
const handoutAnswer = sampleRate(handoutModel, 512, true);
const handoutHalf = backend === 'native' ? sampleRate(handoutModel, 512, true, 'float16') : undefined;
const handoutInt8 = backend === 'native' ? sampleRate(handoutModel, 512, true, 'int8') : undefined;
handoutModel.dispose();

/**
 * What memory allows: a one-token step reads every weight of the products and the output
 * layer once, so 512 tokens cannot take less than 512 × those bytes / the read bandwidth.
 */
const native = loadNative();
const bandwidth = 'kernels' in native ? native.kernels.readBandwidth(256) : undefined;
const handoutWeights = 12 * HANDOUT.layers * HANDOUT.dim ** 2 + 4096 * HANDOUT.dim;
const floorSeconds = (bytesPerWeight: number) =>
  bandwidth ? ((512 * handoutWeights * bytesPerWeight) / (bandwidth * 1e9)).toFixed(2) : '-';

const torchOf = (name: string) => train.find((t) => t.name === name)?.torch;
const num = (t: Record<string, number | string> | string | undefined, key: string) =>
  typeof t === 'object' ? String(t[key]) : '-';
const ratioOf = (t: (typeof train)[number]) =>
  typeof t.torch === 'object' ? t.ours.tokensPerSec / Number(t.torch.train_tokens_per_s) : undefined;
const rows: [string, string, string, string][] = [
  ...train.map((t): [string, string, string, string] => [
    `train tokens/s, ${t.name} (L${t.config.layers} H${t.config.heads} C${t.config.dim} T${t.config.block} B${t.config.batch} V${t.config.vocab})`,
    t.ours.tokensPerSec.toFixed(0),
    num(t.torch, 'train_tokens_per_s'),
    ratioOf(t) === undefined ? '-' : `${ratioOf(t)!.toFixed(2)}x`,
  ]),
  ['sample tokens/s (KV cache), torch_ref model', sampleCached.tokensPerSec.toFixed(1), '-', ''],
  [
    'sample tokens/s (no cache), torch_ref model',
    sampleUncached.tokensPerSec.toFixed(1),
    num(torchOf('torch_ref'), 'sample_tokens_per_s_no_cache'),
    '',
  ],
  ['512-token answer, demo model (s)', answer.seconds.toFixed(2), '-', ''],
  ['512 new tokens, handout-size model (s)', handoutAnswer.seconds.toFixed(2), '-', ''],
  ['512 new tokens, handout-size model, float16 weights (s)', handoutHalf?.seconds.toFixed(2) ?? '-', '-', ''],
  ['512 new tokens, handout-size model, int8 weights (s)', handoutInt8?.seconds.toFixed(2) ?? '-', '-', ''],
  [`memory read bandwidth, ${threads} threads (GB/s)`, bandwidth?.toFixed(1) ?? '-', '-', ''],
  [
    '512 new tokens, handout-size model: floor at that bandwidth, float32 / float16 / int8 (s)',
    `${floorSeconds(4)} / ${floorSeconds(2)} / ${floorSeconds(1)}`,
    '-',
    '',
  ],
];
console.log(
  `backend ${backend}${backend === 'native' ? ` (OpenBLAS, ${threads} threads)` : ''}, PyTorch with ${threads} threads, ` +
    `${os.cpus().length} cpus, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at the end; ` +
    `steps ${STEPS} (torch_ref) and ${HANDOUT_STEPS} (handout) after ${WARMUP} warm-up`,
);
console.log(['metric'.padEnd(90), 'miniglm'.padStart(20), 'pytorch'.padStart(10), 'ratio'.padStart(8)].join(''));
for (const [k, ours, theirs, ratio] of rows)
  console.log(k.padEnd(90) + ours.padStart(20) + theirs.padStart(10) + ratio.padStart(8));
for (const t of train) if (typeof t.torch !== 'object') console.log(`pytorch (${t.name}): ${t.torch}`);
console.log(
  JSON.stringify({
    backend,
    threads,
    train: train.map((t) => ({
      name: t.name,
      config: t.config,
      tokensPerSec: Math.round(t.ours.tokensPerSec),
      params: t.ours.params,
      torch: typeof t.torch === 'object' ? t.torch : null,
      ratio: ratioOf(t) === undefined ? null : +ratioOf(t)!.toFixed(3),
    })),
    sampleTokensPerSecCached: +sampleCached.tokensPerSec.toFixed(1),
    sampleTokensPerSecUncached: +sampleUncached.tokensPerSec.toFixed(1),
    answer512Seconds: +answer.seconds.toFixed(2),
    handout512Seconds: +handoutAnswer.seconds.toFixed(2),
    handout512SecondsFloat16: handoutHalf ? +handoutHalf.seconds.toFixed(2) : null,
    handout512SecondsInt8: handoutInt8 ? +handoutInt8.seconds.toFixed(2) : null,
    readBandwidthGBps: bandwidth ? +bandwidth.toFixed(2) : null,
    loadAverage: os.loadavg(),
  }),
);
