/**
 * Bad input ends with one line naming the problem and a non-zero exit status, and whatever a
 * previous run wrote is still there. The failing commands point at a finished run folder
 * ("run") wherever they can, to show that a failed attempt leaves its files alone.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readCheckpoint } from '@miniglm/model';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  englishParagraphs,
  expectOneLineError,
  expectSuccess,
  qaJsonl,
  runCli,
  sha256,
  snapshot,
  useTempDir,
  writeCheckpointWithNaN,
  type CliResult,
} from './helpers.ts';

const tmp = useTempDir('errors');
const file = (name: string) => path.join(tmp(), name);

const MODEL = { kind: 'gpt', layers: 1, heads: 2, dim: 16, blockSize: 16 };
const STAGE = {
  name: 'pre',
  kind: 'pretrain',
  dataset: { source: 'corpus.txt' },
  iterations: 6,
  batchSize: 4,
  warmup: 1,
  evalEvery: 3,
  evalBatches: 2,
  checkpointEvery: 3,
};

/** A valid curriculum, with parts replaced. */
function curriculum(
  over: { tokenizer?: object; model?: object; stage?: object; extra?: object } = {},
): Record<string, unknown> {
  return {
    name: 'errors-base',
    seed: 3,
    tokenizer: over.tokenizer ?? { name: 'char', compactVocab: true },
    model: over.model ?? MODEL,
    stages: [over.stage ?? STAGE],
    evaluation: { valBatches: 2, rougeSamples: 2, maxNewTokens: 4, samples: 1 },
    ...over.extra,
  };
}

function writeCurriculum(name: string, value: Record<string, unknown>): string {
  fs.writeFileSync(file(name), stringify(value));
  return name;
}

const train = (config: string, out = 'run') => runCli(['train', '--config', config, '--out', out], tmp());

let runFiles: Record<string, string> = {};
let runJson = '';
let inputs: Record<string, string> = {};
const CHECKPOINT = 'run/stages/pre/model.ckpt';

beforeAll(async () => {
  fs.writeFileSync(file('corpus.txt'), englishParagraphs(60));
  fs.writeFileSync(file('qa.jsonl'), qaJsonl());
  writeCurriculum('good.yaml', curriculum());
  expectSuccess(await train('good.yaml'));
  runFiles = snapshot(file('run'), (rel) => rel === 'run.json');
  runJson = fs.readFileSync(file('run/run.json'), 'utf8');
  inputs = { corpus: sha256(file('corpus.txt')), qa: sha256(file('qa.jsonl')), good: sha256(file('good.yaml')) };
  expect(Object.keys(runFiles).sort()).toEqual([
    'evaluation.json',
    'stages/pre/metrics.jsonl',
    'stages/pre/model.ckpt',
  ]);
});

// Each case checks what it did to run.json; the next one starts from the finished run's.
afterEach(() => {
  if (runJson) fs.writeFileSync(file('run/run.json'), runJson);
});

/** The finished run and the inputs are exactly as they were; run.json never says "running". */
function expectNothingLost(): void {
  expect(snapshot(file('run'), (rel) => rel === 'run.json')).toEqual(runFiles);
  expect(sha256(file('corpus.txt'))).toBe(inputs.corpus);
  expect(sha256(file('qa.jsonl'))).toBe(inputs.qa);
  expect(sha256(file('good.yaml'))).toBe(inputs.good);
  const run = JSON.parse(fs.readFileSync(file('run/run.json'), 'utf8')) as { status: string };
  expect(['succeeded', 'failed']).toContain(run.status);
}

/** A run that failed after it started writing records the failure in run.json. */
function expectRunMarkedFailed(r: CliResult, out = 'run'): void {
  const run = JSON.parse(fs.readFileSync(file(`${out}/run.json`), 'utf8')) as { status: string; error?: string };
  expect(run.status).toBe('failed');
  expect(`miniglm: error: ${run.error}\n`).toBe(r.stderr);
}

describe('miniglm: bad input gives one line and a non-zero status', () => {
  it('unknown command', async () => {
    const r = await runCli(['frobnicate', '--x'], tmp());
    expectOneLineError(r, /unknown command "frobnicate".*train/);
  });

  it('unknown tokenizer on the command line (sft-preview --tokenizer nope)', async () => {
    const r = await runCli(['sft-preview', '--question', 'q?', '--answer', 'a.', '--tokenizer', 'nope'], tmp());
    expectOneLineError(r, /unknown tokenizer "nope".*char/);
  });

  it('unknown tokenizer in a curriculum names /tokenizer/name', async () => {
    const r = await train(writeCurriculum('bad-tokenizer.yaml', curriculum({ tokenizer: { name: 'nope' } })));
    expectOneLineError(r, /bad-tokenizer\.yaml: \/tokenizer\/name\b/);
    expectNothingLost();
  });

  it('missing curriculum file', async () => {
    const r = await train('no-such-curriculum.yaml');
    expectOneLineError(r, /curriculum file not found: no-such-curriculum\.yaml/);
    expectNothingLost();
  });

  it('a dataset file that does not exist is named', async () => {
    const config = writeCurriculum(
      'missing-data.yaml',
      curriculum({ stage: { ...STAGE, dataset: { source: 'no-such-corpus.txt' } } }),
    );
    const r = await train(config);
    expectOneLineError(r, /not found: \S*no-such-corpus\.txt$/);
    expectNothingLost();
    expectRunMarkedFailed(r);
  });

  it('a malformed JSONL line names the file and its 1-based line number', async () => {
    // Line 2 is blank and line 4 is broken: blank lines still count.
    fs.writeFileSync(
      file('bad.jsonl'),
      ['{"text":"the cat runs."}', '', '{"text":"the dog runs."}', '{"text": the bird', '{"text":"ok"}'].join('\n'),
    );
    const config = writeCurriculum(
      'bad-jsonl.yaml',
      curriculum({ stage: { ...STAGE, dataset: { source: 'bad.jsonl', field: 'text' } } }),
    );
    const r = await train(config);
    expectOneLineError(r, /\S*bad\.jsonl:4: not valid JSON/);
    expectNothingLost();
    expectRunMarkedFailed(r);
  });

  it('a block size beyond what a model can take names /model/blockSize', async () => {
    const r = await train(
      writeCurriculum('huge-block.yaml', curriculum({ model: { ...MODEL, blockSize: 1_000_000_000 } })),
    );
    expectOneLineError(r, /huge-block\.yaml: \/model\/blockSize\b/);
    expectNothingLost();
  });

  it('a block size longer than the held-out split is named', async () => {
    const r = await train(writeCurriculum('long-block.yaml', curriculum({ model: { ...MODEL, blockSize: 4096 } })));
    expectOneLineError(r, /the val split of .* has \d+ tokens, fewer than one window of blockSize 4096 \+ 1/);
    expectNothingLost();
    expectRunMarkedFailed(r);
  });

  it('a model that cannot fit in memory names the batch size, the estimate and the limit', async () => {
    const model = { kind: 'gpt', layers: 24, heads: 8, dim: 1024, blockSize: 32 };
    const r = await train(writeCurriculum('too-big.yaml', curriculum({ model, stage: { ...STAGE, batchSize: 4096 } })));
    expectOneLineError(
      r,
      /training this model with batchSize 4096 and blockSize 32 needs about [\d.]+ TiB \(.*\), more than the [\d.]+ GiB/,
    );
    expectNothingLost();
    expectRunMarkedFailed(r);
  });

  it('dim not divisible by heads names /model/dim', async () => {
    const r = await train(writeCurriculum('heads.yaml', curriculum({ model: { ...MODEL, dim: 16, heads: 3 } })));
    expectOneLineError(r, /heads\.yaml: \/model\/dim: 16 is not divisible by heads=3/);
    expectNothingLost();
  });

  it('an empty .txt corpus is an empty corpus, named', async () => {
    fs.writeFileSync(file('empty.txt'), '');
    const r = await train(
      writeCurriculum('empty.yaml', curriculum({ stage: { ...STAGE, dataset: { source: 'empty.txt' } } })),
    );
    expectOneLineError(r, /empty corpus: \S*empty\.txt/);
    expectNothingLost();
    expectRunMarkedFailed(r);
  });

  it('an SFT .jsonl with no pairs is an empty corpus, named', async () => {
    fs.writeFileSync(file('empty-qa.jsonl'), '\n\n');
    const stage = { ...STAGE, name: 'qa', kind: 'sft', dataset: { source: 'empty-qa.jsonl' } };
    const r = await train(writeCurriculum('empty-qa.yaml', curriculum({ stage })));
    expectOneLineError(r, /empty corpus: \S*empty-qa\.jsonl/);
    expectNothingLost();
  });

  it('an unknown field is rejected with its path', async () => {
    const r = await train(
      writeCurriculum(
        'extra-field.yaml',
        curriculum({ stage: { ...STAGE, dataset: { source: 'corpus.txt', colour: 'red' } } }),
      ),
    );
    expectOneLineError(r, /extra-field\.yaml: \/stages\/0\/dataset\/colour: Unexpected property/);
    const top = await train(writeCurriculum('extra-top.yaml', curriculum({ extra: { epochs: 3 } })));
    expectOneLineError(top, /extra-top\.yaml: \/epochs: Unexpected property/);
    expectNothingLost();
  });

  it('sample with a checkpoint that does not exist', async () => {
    const r = await runCli(['sample', '--checkpoint', 'no-such.ckpt', '--prompt', 'the'], tmp());
    expectOneLineError(r, /checkpoint not found: no-such\.ckpt/);
  });

  it('sample with a file that is not a checkpoint', async () => {
    fs.writeFileSync(file('garbage.ckpt'), 'this is not a checkpoint at all\n');
    const r = await runCli(['sample', '--checkpoint', 'garbage.ckpt', '--prompt', 'the'], tmp());
    expectOneLineError(r, /garbage\.ckpt is not a MiniGLM checkpoint/);
  });

  it('sample and eval with a truncated checkpoint', async () => {
    const bytes = fs.readFileSync(file(CHECKPOINT));
    fs.writeFileSync(file('truncated.ckpt'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const r = await runCli(['sample', '--checkpoint', 'truncated.ckpt', '--prompt', 'the'], tmp());
    expectOneLineError(r, /truncated\.ckpt is truncated/);
    const e = await runCli(['eval', '--checkpoint', 'truncated.ckpt', '--qa', 'qa.jsonl'], tmp());
    expectOneLineError(e, /truncated\.ckpt is truncated/);
  });

  it('train over a corrupt stage checkpoint fails and leaves that file alone', async () => {
    fs.cpSync(file('run'), file('run-corrupt'), { recursive: true });
    const ckpt = file('run-corrupt/stages/pre/model.ckpt');
    const bytes = fs.readFileSync(ckpt);
    fs.writeFileSync(ckpt, bytes.subarray(0, bytes.length - 100));
    const before = sha256(ckpt);
    const r = await train('good.yaml', 'run-corrupt');
    expectOneLineError(r, /run-corrupt\/stages\/pre\/model\.ckpt is truncated/);
    expect(sha256(ckpt)).toBe(before);
    expectRunMarkedFailed(r, 'run-corrupt');
    expectNothingLost();
  });

  it('--max-new-tokens abc', async () => {
    const r = await runCli(['sample', '--checkpoint', CHECKPOINT, '--prompt', 'the', '--max-new-tokens', 'abc'], tmp());
    expectOneLineError(r, /--max-new-tokens must be a number, got "abc"/);
  });

  it('--weights int4', async () => {
    const r = await runCli(['sample', '--checkpoint', CHECKPOINT, '--prompt', 'the', '--weights', 'int4'], tmp());
    expectOneLineError(r, /--weights must be float32, float16 or int8 \(got "int4"\)/);
  });
});

describe('a loss that becomes NaN', () => {
  it('stops the stage with one line saying so, and leaves the initFrom checkpoint unchanged', async () => {
    writeCheckpointWithNaN(file(CHECKPOINT), file('nan.ckpt'), 'param/wte');
    // The patched copy reads back as a valid checkpoint whose embedding is NaN, all else equal.
    const good = await readCheckpoint(file(CHECKPOINT));
    const bad = await readCheckpoint(file('nan.ckpt'));
    expect(bad.header).toEqual(good.header);
    for (const [name, t] of bad.tensors) {
      if (name === 'param/wte') expect(t.data.every(Number.isNaN)).toBe(true);
      else expect(t.data).toEqual(good.tensors.get(name)!.data);
    }
    const before = sha256(file('nan.ckpt'));

    const config = writeCurriculum('nan.yaml', {
      ...curriculum({ stage: { ...STAGE, name: 'branch', iterations: 8 } }),
      initFrom: 'nan.ckpt',
    });
    const r = await train(config, 'nan-run');
    expectOneLineError(r, /^miniglm: error: stage branch: loss became NaN at step 1; the stage stopped\b/);
    expect(sha256(file('nan.ckpt'))).toBe(before);
    expect(fs.existsSync(file('nan-run/stages/branch/model.ckpt'))).toBe(false);
    const run = JSON.parse(fs.readFileSync(file('nan-run/run.json'), 'utf8')) as {
      status: string;
      stages: { name: string; status: string; steps: number }[];
    };
    expect(run.status).toBe('failed');
    expect(run.stages).toEqual([expect.objectContaining({ name: 'branch', status: 'diverged', steps: 0 })]);
    expectNothingLost();
  });
});
