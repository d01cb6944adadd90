/**
 * The whole local workflow on a tiny model: a two-stage curriculum (pretrain on a .txt
 * corpus, then SFT on Q&A pairs) with `miniglm train`, the same command again, then
 * `miniglm sample` and `miniglm eval` on what it wrote.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readCheckpoint } from '@miniglm/model';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  englishParagraphs,
  expectSuccess,
  qaJsonl,
  range,
  readMetrics,
  runCli,
  snapshot,
  useTempDir,
  type CliResult,
} from './helpers.ts';

const tmp = useTempDir('e2e');
const file = (name: string) => path.join(tmp(), name);

const STAGES = [
  {
    name: 'story',
    kind: 'pretrain',
    dataset: { source: 'data/story.txt' },
    iterations: 40,
    batchSize: 8,
    lr: 0.01,
    minLr: 0.001,
    warmup: 4,
    evalEvery: 10,
    evalBatches: 3,
    checkpointEvery: 15,
  },
  {
    name: 'answers',
    kind: 'sft',
    dataset: { source: 'data/qa.jsonl', valFraction: 0.2 },
    iterations: 20,
    batchSize: 8,
    lr: 0.005,
    minLr: 0.0005,
    warmup: 2,
    evalEvery: 5,
    evalBatches: 2,
    checkpointEvery: 8,
  },
] as const;
const EVAL = {
  valBatches: 3,
  rougeSamples: 4,
  maxNewTokens: 12,
  samples: 2,
  temperature: 0.8,
  prompts: ['where is cat 0?', 'where is owl 4?', 'who?'],
};

interface RunJson {
  status: string;
  backend: string;
  tokenizer: { name: string; vocabSize: number };
  stages: {
    name: string;
    kind: string;
    status: string;
    steps: number;
    checkpoint: string;
    trainLoss: number;
    valLoss: number;
    dataset: { dir: string; sha256: string };
  }[];
}
interface EvaluationJson {
  perplexity: { stage: string; loss: number; perplexity: number }[];
  rouge: {
    stage: string;
    pairs: number;
    mean: { precision: number; recall: number; f: number };
    items: { question: string; reference: string; generated: string }[];
  };
  samples: { prompt: string; mode: string; outputs: string[] }[];
}

const readJson = <T>(name: string) => JSON.parse(fs.readFileSync(file(name), 'utf8')) as T;
const checkpointOf = (stage: string) => `run/stages/${stage}/model.ckpt`;
const metricsOf = (stage: string) => file(`run/stages/${stage}/metrics.jsonl`);

let first: CliResult;

beforeAll(async () => {
  fs.mkdirSync(file('data'));
  fs.writeFileSync(file('data/story.txt'), englishParagraphs(150));
  fs.writeFileSync(file('data/qa.jsonl'), qaJsonl());
  const curriculum = {
    name: 'e2e',
    seed: 11,
    tokenizer: { name: 'char', compactVocab: true },
    model: { kind: 'gpt', layers: 2, heads: 2, dim: 32, blockSize: 32 },
    stages: STAGES,
    evaluation: EVAL,
  };
  fs.writeFileSync(file('c.yaml'), stringify(curriculum));
  first = await runCli(['train', '--config', 'c.yaml', '--out', 'run'], tmp());
  expectSuccess(first);
});

describe('miniglm train: a two-stage curriculum', () => {
  it('finishes every stage and records it in run.json', () => {
    expect(first.stdout).toMatch(/run e2e: succeeded/);
    const run = readJson<RunJson>('run/run.json');
    expect(run.status).toBe('succeeded');
    expect(run.backend).toBe('wasm');
    expect(run.tokenizer.name).toBe('char');
    // A compact vocabulary: far below the full char range, above the handful of letters used.
    expect(run.tokenizer.vocabSize).toBeLessThan(1000);
    expect(run.stages.map((s) => [s.name, s.kind, s.status, s.steps])).toEqual(
      STAGES.map((s) => [s.name, s.kind, 'finished', s.iterations]),
    );
    for (const s of run.stages) {
      expect(path.resolve(tmp(), s.checkpoint)).toBe(file(checkpointOf(s.name)));
      expect(Number.isFinite(s.trainLoss) && Number.isFinite(s.valLoss)).toBe(true);
      expect(fs.existsSync(path.join(s.dataset.dir, 'manifest.json'))).toBe(true);
    }
  });

  it('writes a checkpoint per stage with its step, tokenizer and lineage', async () => {
    const story = await readCheckpoint(file(checkpointOf('story')));
    const answers = await readCheckpoint(file(checkpointOf('answers')));
    expect(story.header.step).toBe(40);
    expect(answers.header.step).toBe(20);
    expect(answers.header.tokenizer).toEqual(story.header.tokenizer);
    expect(story.header.tokenizer.vocab?.length).toBeGreaterThan(0);
    expect(story.header.meta.parentCheckpoint).toBeNull();
    expect(path.resolve(tmp(), answers.header.meta.parentCheckpoint as string)).toBe(file(checkpointOf('story')));
    expect(answers.header.meta).toMatchObject({ stage: 'answers', kind: 'sft', stageIndex: 1 });
  });

  it('writes exactly one metrics line per step, in order, for each stage', () => {
    for (const stage of STAGES) {
      const lines = readMetrics(metricsOf(stage.name));
      expect(lines.map((l) => l.step)).toEqual(range(1, stage.iterations));
      for (const l of lines) {
        expect(l.stage).toBe(stage.name);
        expect(l.backend).toBe('wasm');
        expect(
          Number.isFinite(l.trainLoss) && Number.isFinite(l.lr) && Number.isFinite(l.gradNorm) && l.tokensPerSec > 0,
        ).toBe(true);
        // Validation loss exactly on evaluation steps and the last step.
        expect(l.valLoss !== undefined).toBe(l.step % stage.evalEvery === 0 || l.step === stage.iterations);
      }
    }
  });

  it('lowers the pretraining loss well below its first step', () => {
    const lines = readMetrics(metricsOf('story'));
    const start = lines[0]!.trainLoss;
    const end = lines.slice(-5).reduce((s, l) => s + l.trainLoss, 0) / 5;
    // A uniform guess over the vocabulary costs ln(vocab); the model must learn the letters.
    expect(start).toBeGreaterThan(4);
    expect(end).toBeLessThan(start * 0.7);
    expect(lines.at(-1)!.valLoss!).toBeLessThan(lines.find((l) => l.valLoss !== undefined)!.valLoss!);
  });

  it('writes evaluation.json with perplexity per stage, ROUGE-L and samples', () => {
    const ev = readJson<EvaluationJson>('run/evaluation.json');
    expect(ev.perplexity.map((p) => p.stage)).toEqual(STAGES.map((s) => s.name));
    for (const p of ev.perplexity) {
      expect(p.perplexity).toBeGreaterThan(1);
      expect(p.perplexity).toBeCloseTo(Math.exp(p.loss), 6);
    }
    expect(ev.rouge.stage).toBe('answers');
    expect(ev.rouge.pairs).toBeGreaterThan(0);
    expect(ev.rouge.items).toHaveLength(ev.rouge.pairs);
    for (const v of Object.values(ev.rouge.mean)) expect(v >= 0 && v <= 1).toBe(true);
    // Held-out questions come from our file.
    const asked = new Set(
      fs
        .readFileSync(file('data/qa.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { question: string }).question),
    );
    for (const item of ev.rouge.items) expect(asked.has(item.question)).toBe(true);
    expect(ev.samples.map((s) => [s.prompt, s.mode, s.outputs.length])).toEqual(
      EVAL.prompts.map((p) => [p, 'answer', EVAL.samples]),
    );
  });

  it('run again: exits 0, says the stages are already finished, and changes nothing they wrote', async () => {
    const stageFiles = () => snapshot(file('run/stages'));
    const before = stageFiles();
    const metricsBefore = STAGES.map((s) => fs.readFileSync(metricsOf(s.name), 'utf8'));
    const again = await runCli(['train', '--config', 'c.yaml', '--out', 'run'], tmp());
    expectSuccess(again);
    for (const [i, s] of STAGES.entries()) {
      expect(again.stdout).toContain(
        `[${i + 1}/2] ${s.name} (${s.kind}): already finished (${s.iterations} steps), kept`,
      );
    }
    expect(again.stdout).not.toMatch(/^\s*step \d+\/\d+/m); // no iteration was run
    expect(again.stdout).not.toMatch(/preparing|collecting/); // datasets and vocabulary reused
    expect(stageFiles()).toEqual(before);
    expect(STAGES.map((s) => fs.readFileSync(metricsOf(s.name), 'utf8'))).toEqual(metricsBefore);
    expect((await readCheckpoint(file(checkpointOf('story')))).header.step).toBe(40);
    expect((await readCheckpoint(file(checkpointOf('answers')))).header.step).toBe(20);
    expect(readJson<RunJson>('run/run.json').status).toBe('succeeded');
  });
});

describe('miniglm sample and eval on the trained checkpoints', () => {
  const sample = async (...args: string[]) => {
    const checkpoint = args.includes('--checkpoint') ? [] : ['--checkpoint', checkpointOf('answers')];
    const r = await runCli(['sample', ...checkpoint, '--json', ...args], tmp());
    expectSuccess(r);
    const out = JSON.parse(r.stdout) as { backend: string; samples: string[]; tokensPerSec: number };
    expect(out.backend).toBe('wasm');
    return out.samples;
  };
  const question = ['--question', 'where is fox 3?', '--samples', '3', '--max-new-tokens', '40'];

  it('gives the same samples for the same seed, with and without the KV cache', async () => {
    const a = await sample(...question, '--seed', '7');
    const b = await sample(...question, '--seed', '7');
    const uncached = await sample(...question, '--seed', '7', '--no-cache');
    const other = await sample(...question, '--seed', '8');
    expect(a).toHaveLength(3);
    expect(a.some((s) => s.length > 0)).toBe(true);
    expect(b).toEqual(a);
    expect(uncached).toEqual(a);
    expect(other).not.toEqual(a);
  });

  it('continues a prompt past the block size the same way with and without the cache', async () => {
    // The pretrained model (documents of ~100 characters rarely end within 40 tokens):
    // 19 prompt tokens + 40 new ones > blockSize 32, so the context window has to slide.
    const prompt = 'the cat runs to the';
    const completion = [
      '--checkpoint',
      checkpointOf('story'),
      '--prompt',
      prompt,
      '--samples',
      '3',
      '--max-new-tokens',
      '40',
      '--seed',
      '3',
      '--temperature',
      '0.5',
    ];
    const cached = await sample(...completion);
    expect(cached.some((s) => prompt.length + [...s].length > 32)).toBe(true);
    expect(await sample(...completion, '--no-cache')).toEqual(cached);
  });

  it('miniglm eval --dataset prints perplexity and ROUGE-L of the prepared SFT dataset', async () => {
    const dir = readJson<RunJson>('run/run.json').stages[1]!.dataset.dir;
    const r = await runCli(
      ['eval', '--checkpoint', checkpointOf('answers'), '--dataset', dir, '--json', '--max-new-tokens', '16'],
      tmp(),
    );
    expectSuccess(r);
    const out = JSON.parse(r.stdout) as {
      perplexity: { loss: number; perplexity: number };
      rouge: { pairs: number; precision: number; recall: number; f: number };
    };
    expect(out.perplexity.perplexity).toBeGreaterThan(1);
    expect(out.perplexity.perplexity).toBeCloseTo(Math.exp(out.perplexity.loss), 6);
    // The trained model does better than a uniform guess over its vocabulary.
    expect(out.perplexity.perplexity).toBeLessThan(readJson<RunJson>('run/run.json').tokenizer.vocabSize);
    expect(out.rouge.pairs).toBeGreaterThan(0);
    for (const k of ['precision', 'recall', 'f'] as const) expect(out.rouge[k] >= 0 && out.rouge[k] <= 1).toBe(true);
  });
});
