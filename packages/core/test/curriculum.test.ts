/** The curriculum schema: defaults, errors that name the JSON path, and the example file. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { POETRY_COLLECTION_NAMES, POETRY_QA_COLLECTION_NAMES } from '@miniglm/data';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  CurriculumError,
  LIMITS,
  loadCurriculumFile,
  parseCurriculum,
  trainOptions,
  type Curriculum,
} from '../src/index.ts';

const EXAMPLE = fileURLToPath(new URL('../../../examples/poetry-curriculum.yaml', import.meta.url));

/** A minimal valid curriculum, as a user would write it (nothing optional given). */
function minimal(): Record<string, any> {
  return {
    name: 'minimal',
    tokenizer: { name: 'char' },
    model: { layers: 2, heads: 2, dim: 16, blockSize: 32 },
    stages: [
      { name: 'pre', kind: 'pretrain', dataset: { source: 'data/a.txt' }, iterations: 10, batchSize: 4 },
      { name: 'qa', kind: 'sft', dataset: { source: 'data/qa.jsonl' }, iterations: 5, batchSize: 2 },
    ],
  };
}

function parsed(input: unknown): Curriculum {
  const r = parseCurriculum(input);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

describe('parseCurriculum', () => {
  it('fills in the documented defaults without touching its input', () => {
    const input = minimal();
    const before = structuredClone(input);
    const c = parsed(input);
    expect(input).toEqual(before);
    expect(c.seed).toBe(1337);
    expect(c.tokenizer).toEqual({ name: 'char', compactVocab: true });
    expect(c.model).toEqual({ kind: 'gpt', layers: 2, heads: 2, dim: 16, blockSize: 32, dropout: 0, bias: false });
    for (const stage of c.stages) {
      // The stage hyper-parameters listed in the README.
      // minLr is left unset: the trainer derives lr / 10 from the stage's own lr.
      expect(stage.minLr).toBeUndefined();
      expect(stage).toMatchObject({
        lr: 1e-3,
        warmup: 100,
        weightDecay: 0.1,
        beta1: 0.9,
        beta2: 0.99,
        gradClip: 1,
        gradAccum: 1,
        evalEvery: 100,
        evalBatches: 10,
        checkpointEvery: 500,
      });
      expect(stage.dataset).toEqual({
        source: stage.dataset.source,
        questionField: 'question',
        answerField: 'answer',
        valFraction: 0.05,
      });
    }
    expect(c.initFrom).toBeUndefined();
    expect(c.evaluation).toBeUndefined();
  });

  it('gives the trainer every option, from the defaults', () => {
    const c = parsed(minimal());
    const { iterations, ...rest } = trainOptions(c.stages[0]!);
    expect(iterations).toBe(10);
    // warmup is capped at the stage's iterations; everything else is the default.
    expect({ ...rest, warmup: 100 }).toEqual({
      gradAccum: 1,
      lr: 1e-3,
      minLr: 1e-4,
      warmup: 100,
      weightDecay: 0.1,
      beta1: 0.9,
      beta2: 0.99,
      gradClip: 1,
      evalEvery: 100,
      checkpointEvery: 500,
    });
    expect(rest.warmup).toBe(10);
  });

  it('keeps what the user gave', () => {
    const input = minimal();
    Object.assign(input.stages[0], { lr: 0.02, minLr: 0.002, warmup: 3, gradAccum: 2, checkpointEvery: 7 });
    input.tokenizer = { name: 'r50k_base', compactVocab: false };
    input.seed = 0;
    const c = parsed(input);
    expect(c.seed).toBe(0);
    expect(c.tokenizer.compactVocab).toBe(false);
    expect(c.stages[0]).toMatchObject({
      lr: 0.02,
      minLr: 0.002,
      warmup: 3,
      gradAccum: 2,
      checkpointEvery: 7,
      evalEvery: 100,
    });
  });

  it('derives minLr from lr when it is not given, and checks it only when it is', () => {
    const input = minimal();
    Object.assign(input.stages[0], { lr: 5e-5 });
    expect(trainOptions(parsed(input).stages[0]!).minLr).toBeCloseTo(5e-6, 12);
  });

  const bad: [string, (c: Record<string, any>) => unknown, RegExp][] = [
    [
      'a char tokenizer without a compact vocabulary',
      (c) => {
        c.tokenizer.compactVocab = false;
      },
      /^\/tokenizer\/compactVocab: the char tokenizer needs a compact vocabulary/,
    ],
    [
      'a run name that climbs out of the runs folder',
      (c) => {
        c.name = '../elsewhere';
      },
      /^\/name: "\.\.\/elsewhere" is not allowed: names the run folder/,
    ],
    ['not an object', () => 'stages: []', /^\/: Expected object/],
    ['null', () => null, /^\/: Expected object/],
    [
      'a missing name',
      (c) => {
        delete c.name;
      },
      /^\/name: Expected required property/,
    ],
    [
      'no stages',
      (c) => {
        c.stages = [];
      },
      /^\/stages: /,
    ],
    [
      'an unknown tokenizer',
      (c) => {
        c.tokenizer.name = 'nope';
      },
      /^\/tokenizer\/name: /,
    ],
    [
      'an unknown top-level field',
      (c) => {
        c.epochs = 3;
      },
      /^\/epochs: Unexpected property/,
    ],
    [
      'an unknown model field',
      (c) => {
        c.model.wings = 2;
      },
      /^\/model\/wings: Unexpected property/,
    ],
    [
      'an unknown dataset field',
      (c) => {
        c.stages[1].dataset.colour = 'red';
      },
      /^\/stages\/1\/dataset\/colour: Unexpected property/,
    ],
    [
      'a fractional iteration count',
      (c) => {
        c.stages[0].iterations = 1.5;
      },
      /^\/stages\/0\/iterations: Expected integer/,
    ],
    [
      'zero iterations',
      (c) => {
        c.stages[1].iterations = 0;
      },
      /^\/stages\/1\/iterations: /,
    ],
    [
      'a string batch size',
      (c) => {
        c.stages[0].batchSize = '8';
      },
      /^\/stages\/0\/batchSize: /,
    ],
    [
      'a block size of 1e9',
      (c) => {
        c.model.blockSize = 1_000_000_000;
      },
      new RegExp(`^/model/blockSize: .*${LIMITS.blockSize}`),
    ],
    [
      'a block size of 1',
      (c) => {
        c.model.blockSize = 1;
      },
      /^\/model\/blockSize: /,
    ],
    [
      'dim not divisible by heads',
      (c) => {
        c.model.heads = 3;
      },
      /^\/model\/dim: 16 is not divisible by heads=3/,
    ],
    [
      'zero heads',
      (c) => {
        c.model.heads = 0;
      },
      /^\/model\/heads: /,
    ],
    [
      'a model kind that does not exist',
      (c) => {
        c.model.kind = 'rnn';
      },
      /^\/model\/kind: /,
    ],
    [
      'a stage kind that does not exist',
      (c) => {
        c.stages[0].kind = 'rlhf';
      },
      /^\/stages\/0\/kind: /,
    ],
    [
      'a stage name with a slash',
      (c) => {
        c.stages[0].name = '../x';
      },
      /^\/stages\/0\/name: /,
    ],
    [
      'the same stage name twice',
      (c) => {
        c.stages[1].name = 'pre';
      },
      /^\/stages\/1\/name: stage name "pre" is used twice/,
    ],
    [
      'minLr above lr',
      (c) => {
        Object.assign(c.stages[0], { lr: 0.001, minLr: 0.01 });
      },
      /^\/stages\/0\/minLr: /,
    ],
    [
      'minLr above the default lr',
      (c) => {
        c.stages[1].minLr = 0.01;
      },
      /^\/stages\/1\/minLr: /,
    ],
    [
      'a valFraction of 0',
      (c) => {
        c.stages[0].dataset.valFraction = 0;
      },
      /^\/stages\/0\/dataset\/valFraction: /,
    ],
    [
      'an empty source',
      (c) => {
        c.stages[0].dataset.source = '';
      },
      /^\/stages\/0\/dataset\/source: /,
    ],
    [
      'an sft stage on a plain poetry collection',
      (c) => {
        c.stages[1].dataset.source = 'poetry:tang';
      },
      /^\/stages\/1\/dataset\/source: an sft stage needs Q&A records/,
    ],
    [
      'a negative seed',
      (c) => {
        c.seed = -1;
      },
      /^\/seed: /,
    ],
  ];
  it.each(bad)('rejects %s, naming the JSON path', (_, mutate, error) => {
    const input = minimal();
    const replaced = mutate(input);
    const r = parseCurriculum(replaced === undefined ? input : replaced);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toMatch(error);
      expect(r.error).not.toContain('\n');
    }
  });
});

describe('loadCurriculumFile', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-core-curriculum-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads the demo curriculum (examples/poetry-curriculum.yaml)', async () => {
    const c = await loadCurriculumFile(EXAMPLE);
    expect(c).toEqual(parsed(parseYaml(fs.readFileSync(EXAMPLE, 'utf8'))));
    expect(c.name).toBe('poetry-demo');
    expect(c.tokenizer).toEqual({ name: 'char', compactVocab: true });
    expect(c.model).toMatchObject({ kind: 'gpt', layers: 4, heads: 4, dim: 128, blockSize: 64 });
    expect(c.stages.map((s) => [s.name, s.kind, s.dataset.source])).toEqual([
      ['tang', 'pretrain', 'poetry:tang'],
      ['tangshi300', 'pretrain', 'poetry:tangshi300'],
      ['qa', 'sft', 'poetry-qa:tangshi300'],
    ]);
    // The collections it names exist.
    expect(POETRY_COLLECTION_NAMES).toContain('tang');
    expect(POETRY_COLLECTION_NAMES).toContain('tangshi300');
    expect(POETRY_QA_COLLECTION_NAMES).toContain('tangshi300');
    expect(c.evaluation?.prompts).toHaveLength(2);
  });

  it('reads JSON as well as YAML', async () => {
    const file = path.join(dir, 'c.json');
    fs.writeFileSync(file, JSON.stringify(minimal()));
    expect(await loadCurriculumFile(file)).toEqual(parsed(minimal()));
  });

  it('names the file in its errors', async () => {
    await expect(loadCurriculumFile(path.join(dir, 'nope.yaml'))).rejects.toThrow(
      new CurriculumError(`curriculum file not found: ${path.join(dir, 'nope.yaml')}`),
    );
    const broken = path.join(dir, 'broken.yaml');
    fs.writeFileSync(broken, 'name: [unclosed\nstages: {');
    await expect(loadCurriculumFile(broken)).rejects.toThrow(/broken\.yaml: not valid YAML\/JSON/);
    const invalid = path.join(dir, 'invalid.yaml');
    fs.writeFileSync(
      invalid,
      'name: x\ntokenizer: { name: char }\nmodel: { layers: 1, dim: 8, blockSize: 8 }\nstages: []\n',
    );
    const error = await loadCurriculumFile(invalid).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CurriculumError);
    expect((error as Error).message).toMatch(/invalid\.yaml: \/stages: /);
  });
});
