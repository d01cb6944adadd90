/** Preparing a curriculum's datasets: content keys, reuse, and preparing again on change. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentKey, parseCurriculum, prepareDatasets, type Curriculum, type PrepareOptions } from '../src/index.ts';

describe('contentKey', () => {
  it('is a short hex hash that ignores key order at every depth', () => {
    const a = { kind: 'sft', stat: [10, 20], nested: { b: 1, a: [{ y: 2, x: 1 }, 'z'], c: null }, seed: 3 };
    const b = { seed: 3, nested: { c: null, a: [{ x: 1, y: 2 }, 'z'], b: 1 }, stat: [10, 20], kind: 'sft' };
    expect(contentKey(a)).toMatch(/^[0-9a-f]{16}$/);
    expect(contentKey(b)).toBe(contentKey(a));
    expect(contentKey(structuredClone(a))).toBe(contentKey(a));
  });

  it('changes with any value, with array order, and with the kind of a value', () => {
    const base = { source: '/data/a.txt', stat: [10, 20], limit: 5, nested: { list: [1, 2] } };
    const keys = [
      base,
      { ...base, limit: 6 },
      { ...base, stat: [10, 21] },
      { ...base, stat: [20, 10] },
      { ...base, source: '/data/b.txt' },
      { ...base, nested: { list: [2, 1] } },
      { ...base, limit: '5' },
      { ...base, extra: true },
    ].map(contentKey);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('prepareDatasets', () => {
  let dir = '';
  let options: PrepareOptions;
  const messages: string[] = [];
  const file = (name: string) => path.join(dir, name);

  // Two corpora in a curriculum folder; datasets go to a separate shared folder.
  const paragraphs = (n: number, offset = 0) =>
    Array.from(
      { length: n },
      (_, i) => `the cat ${['sits', 'runs', 'sleeps'][(i + offset) % 3]} on the mat. a dog sees the cat.`,
    ).join('\n\n');
  const pairs = Array.from({ length: 20 }, (_, i) =>
    JSON.stringify({ question: `what does cat ${i} do?`, answer: `it runs ${i % 4} times.` }),
  ).join('\n');

  let curriculum: Curriculum;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-core-datasets-'));
    fs.mkdirSync(file('cfg/data'), { recursive: true });
    fs.writeFileSync(file('cfg/data/corpus.txt'), paragraphs(40));
    fs.writeFileSync(file('cfg/data/qa.jsonl'), pairs);
    const r = parseCurriculum({
      name: 'prep',
      seed: 9,
      tokenizer: { name: 'char', compactVocab: true },
      model: { layers: 1, heads: 1, dim: 8, blockSize: 32 },
      stages: [
        {
          name: 'pre',
          kind: 'pretrain',
          dataset: { source: 'data/corpus.txt', valFraction: 0.1 },
          iterations: 1,
          batchSize: 1,
        },
        {
          name: 'qa',
          kind: 'sft',
          dataset: { source: 'data/qa.jsonl', valFraction: 0.2 },
          iterations: 1,
          batchSize: 1,
        },
      ],
    });
    if (!r.ok) throw new Error(r.error);
    curriculum = r.value;
    options = { dataDir: file('datasets'), baseDir: file('cfg'), onProgress: (m) => messages.push(m) };
  });
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const manifestTime = (d: string) => fs.statSync(path.join(d, 'manifest.json')).mtimeMs;

  it('prepares every stage once, then reuses them untouched', async () => {
    const first = await prepareDatasets(curriculum, options);
    expect(first.datasets.map((d) => [d.stage, d.reused, d.manifest.kind])).toEqual([
      ['pre', false, 'pretrain'],
      ['qa', false, 'sft'],
    ]);
    expect(first.tokenizer.name).toBe('char');
    expect(first.tokenizer.vocab?.length).toBeGreaterThan(10);
    for (const d of first.datasets) {
      expect(path.dirname(d.dir)).toBe(file('datasets'));
      expect(d.manifest.tokenizer).toEqual(first.tokenizer);
    }
    expect(first.datasets[0]!.manifest.source).toContain('corpus.txt');
    const times = first.datasets.map((d) => manifestTime(d.dir));
    messages.length = 0;

    const second = await prepareDatasets(curriculum, options);
    expect(second.tokenizer).toEqual(first.tokenizer);
    expect(second.datasets.map((d) => [d.stage, d.reused, d.dir, d.manifest.sha256])).toEqual(
      first.datasets.map((d) => [d.stage, true, d.dir, d.manifest.sha256]),
    );
    expect(second.datasets.map((d) => manifestTime(d.dir))).toEqual(times);
    expect(messages).toEqual([]); // neither the vocabulary nor a dataset was built again
  });

  it('prepares a stage again when its source file changes, and keeps the others', async () => {
    const before = await prepareDatasets(curriculum, options);
    // Same characters, different text: the vocabulary stays, the pretraining data changes.
    fs.writeFileSync(file('cfg/data/corpus.txt'), paragraphs(45, 1));
    const after = await prepareDatasets(curriculum, options);
    expect(after.tokenizer).toEqual(before.tokenizer);
    const [pre, qa] = after.datasets;
    expect(pre!.reused).toBe(false);
    expect(pre!.dir).not.toBe(before.datasets[0]!.dir);
    expect(pre!.manifest.sha256).not.toBe(before.datasets[0]!.manifest.sha256);
    expect(qa!.reused).toBe(true);
    expect(qa!.dir).toBe(before.datasets[1]!.dir);
    // The dataset prepared from the old content is still there, unchanged (never overwritten).
    expect(
      (JSON.parse(fs.readFileSync(path.join(before.datasets[0]!.dir, 'manifest.json'), 'utf8')) as { sha256: string })
        .sha256,
    ).toBe(before.datasets[0]!.manifest.sha256);
    expect((await prepareDatasets(curriculum, options)).datasets.every((d) => d.reused)).toBe(true);
  });

  it('notices an edit that keeps the file size (by its modification time)', async () => {
    const corpus = file('cfg/data/corpus.txt');
    const before = await prepareDatasets(curriculum, options);
    const { size, mtimeMs } = fs.statSync(corpus);
    const text = fs.readFileSync(corpus, 'utf8');
    const edited = text.replace('sits', 'runs');
    expect(edited).not.toBe(text);
    fs.writeFileSync(corpus, edited);
    // An edit made later than the last one (on a file system with coarse timestamps, say so).
    if (fs.statSync(corpus).mtimeMs === mtimeMs) fs.utimesSync(corpus, new Date(), new Date(mtimeMs + 2000));
    expect(fs.statSync(corpus).size).toBe(size);
    const after = await prepareDatasets(curriculum, options);
    expect(after.datasets.map((d) => d.reused)).toEqual([false, true]);
    expect(after.datasets[0]!.manifest.sha256).not.toBe(before.datasets[0]!.manifest.sha256);
  });

  it('prepares every stage again when a new character changes the shared vocabulary', async () => {
    const before = await prepareDatasets(curriculum, options);
    fs.appendFileSync(file('cfg/data/corpus.txt'), '\n\nzebra quiz: 7 jumps!\n');
    const after = await prepareDatasets(curriculum, options);
    expect(after.tokenizer.vocab!.length).toBeGreaterThan(before.tokenizer.vocab!.length);
    expect(after.datasets.map((d) => d.reused)).toEqual([false, false]);
    for (const d of after.datasets) expect(d.manifest.tokenizer).toEqual(after.tokenizer);
    expect(after.datasets[1]!.dir).not.toBe(before.datasets[1]!.dir);
  });

  it('keys SFT datasets by block size, pretraining datasets not', async () => {
    const before = await prepareDatasets(curriculum, options);
    const longer = { ...curriculum, model: { ...curriculum.model, blockSize: 48 } };
    const after = await prepareDatasets(longer, options);
    expect(after.datasets.map((d) => d.reused)).toEqual([true, false]);
    expect(after.datasets[1]!.manifest.kind === 'sft' && after.datasets[1]!.manifest.blockSize).toBe(48);
    expect(after.datasets[0]!.dir).toBe(before.datasets[0]!.dir);
  });
});
