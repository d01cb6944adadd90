import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPretrainDataset, DataError, openDataset, readManifest } from '../src/index.ts';
import { useTempDir } from './helpers.ts';

const tmp = useTempDir('pretrain');
const out = (name: string) => path.join(tmp(), name);
const DOCS = Array.from({ length: 40 }, (_, i) => `第${i}篇：床前明月光，疑是地上霜。doc ${i} 😀`);

/** Splits a decoded token stream back into documents (eot after each). */
function documentsOf(tokens: ArrayLike<number>, eot: number, decode: (ids: number[]) => string): string[] {
  const docs: string[] = [];
  let cur: number[] = [];
  for (const id of Array.from(tokens)) {
    if (id === eot) {
      docs.push(decode(cur));
      cur = [];
    } else cur.push(id);
  }
  expect(cur).toEqual([]); // the stream ends with an eot
  return docs;
}

describe('buildPretrainDataset', () => {
  it('writes shards and a manifest that openDataset reads back', async () => {
    const result = await buildPretrainDataset({
      documents: DOCS,
      tokenizer: 'char',
      compactVocab: true,
      outDir: out('a'),
      seed: 1,
      valFraction: 0.25,
    });
    const m = result.manifest;
    expect(m.kind).toBe('pretrain');
    expect(m.dtype).toBe('uint16');
    expect(m.tokenizer.vocab?.length).toBe(m.vocabSize);
    expect(m.counts.documents.train + m.counts.documents.val).toBe(40);
    expect(m.counts.documents.val).toBeGreaterThan(0);
    const ds = await openDataset(out('a'));
    expect(ds.train.length).toBe(m.counts.tokens.train);
    expect(ds.val.length).toBe(m.counts.tokens.val);
    const decode = (ids: number[]) => ds.tokenizer.decode(ids);
    const train = documentsOf(ds.train, ds.tokenizer.eotId, decode);
    const val = documentsOf(ds.val, ds.tokenizer.eotId, decode);
    expect(train).toHaveLength(m.counts.documents.train);
    expect([...train, ...val].sort()).toEqual([...DOCS].sort());
    // Order inside a split is corpus order.
    expect(train).toEqual(DOCS.filter((d) => train.includes(d)));
  });

  it('records sha256 of each shard and of all content, and openDataset checks them', async () => {
    const { manifest } = await buildPretrainDataset({
      documents: DOCS,
      tokenizer: 'r50k_base',
      outDir: out('sha'),
      shardTokens: 100,
    });
    expect(manifest.shards.train.length).toBeGreaterThan(1);
    const all = createHash('sha256');
    for (const shard of [...manifest.shards.train, ...manifest.shards.val]) {
      const bytes = await readFile(out(`sha/${shard.file}`));
      expect(bytes.length).toBe(shard.tokens * 2);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(shard.sha256);
      all.update(bytes);
    }
    expect(all.digest('hex')).toBe(manifest.sha256);
    expect(manifest.counts.tokens.train).toBe(manifest.shards.train.reduce((n, s) => n + s.tokens, 0));

    const victim = out(`sha/${manifest.shards.val[0]!.file}`);
    const bytes = await readFile(victim);
    bytes[0] ^= 1;
    await writeFile(victim, bytes);
    await expect(openDataset(out('sha'))).rejects.toThrow(/sha256 .* does not match the manifest/);
    await expect(openDataset(out('sha'), { verify: false })).resolves.toBeDefined();
  });

  it('splits by document deterministically: same seed, same bytes; other seed, other split', async () => {
    const a = await buildPretrainDataset({
      documents: DOCS,
      tokenizer: 'cl100k_base',
      compactVocab: true,
      outDir: out('s1'),
      seed: 7,
      valFraction: 0.3,
    });
    const b = await buildPretrainDataset({
      documents: DOCS,
      tokenizer: 'cl100k_base',
      compactVocab: true,
      outDir: out('s2'),
      seed: 7,
      valFraction: 0.3,
    });
    const c = await buildPretrainDataset({
      documents: DOCS,
      tokenizer: 'cl100k_base',
      compactVocab: true,
      outDir: out('s3'),
      seed: 8,
      valFraction: 0.3,
    });
    expect(await readFile(out('s1/manifest.json'), 'utf8')).toBe(await readFile(out('s2/manifest.json'), 'utf8'));
    expect(a.manifest.sha256).toBe(b.manifest.sha256);
    expect(c.manifest.sha256).not.toBe(a.manifest.sha256);
  });

  it('uses uint16 up to 65536 ids and uint32 beyond', async () => {
    const small = await buildPretrainDataset({ documents: DOCS, tokenizer: 'r50k_base', outDir: out('u16') });
    expect(small.manifest.dtype).toBe('uint16');
    const big = await buildPretrainDataset({ documents: DOCS, tokenizer: 'char', outDir: out('u32') });
    expect(big.manifest.dtype).toBe('uint32');
    expect(big.manifest.vocabSize).toBe(258 + 0x110000);
    const ds = await openDataset(out('u32'));
    expect(ds.train).toBeInstanceOf(Uint32Array);
    expect(Math.max(...ds.train)).toBeGreaterThan(65535); // 😀 is 258 + 0x1F600
    const first = Array.from(ds.train.subarray(0, ds.train.indexOf(ds.tokenizer.eotId)));
    expect(DOCS).toContain(ds.tokenizer.decode(first));
  });

  it('keeps at least one document in each split', async () => {
    const two = await buildPretrainDataset({
      documents: ['one', 'two'],
      tokenizer: 'char',
      compactVocab: true,
      outDir: out('two'),
      valFraction: 0.01,
    });
    expect(two.manifest.counts.documents).toEqual({ train: 1, val: 1 });
    const most = await buildPretrainDataset({
      documents: DOCS.slice(0, 5),
      tokenizer: 'char',
      outDir: out('most'),
      valFraction: 0.99,
    });
    expect(most.manifest.counts.documents.train).toBe(1);
    expect(most.manifest.counts.documents.val).toBe(4);
  });

  it('fails clearly on an empty corpus or a single document, leaving no manifest', async () => {
    await writeFile(out('empty.jsonl'), '\n\n');
    await expect(
      buildPretrainDataset({ source: out('empty.jsonl'), tokenizer: 'char', outDir: out('e') }),
    ).rejects.toThrow(`empty corpus: ${out('empty.jsonl')}#text produced no documents`);
    await expect(
      buildPretrainDataset({ documents: ['only one'], tokenizer: 'char', outDir: out('one') }),
    ).rejects.toThrow(/produced 1 document; a train\/val split needs at least 2/);
    expect(await readdir(out('one'))).toEqual([]);
    await expect(readManifest(out('one'))).rejects.toThrow(DataError);
  });

  it('reads a bundled collection with a limit', async () => {
    const { manifest } = await buildPretrainDataset({
      source: 'poetry:tang',
      limit: 30,
      tokenizer: 'o200k_base',
      compactVocab: true,
      outDir: out('tang'),
    });
    expect(manifest.source).toBe('poetry:tang (limit 30)');
    expect(manifest.counts.documents.train + manifest.counts.documents.val).toBe(30);
    expect(manifest.dtype).toBe('uint16');
  });

  it('rejects bad options by name', async () => {
    await expect(
      buildPretrainDataset({ documents: DOCS, tokenizer: 'char', outDir: out('x'), valFraction: 0 }),
    ).rejects.toThrow(/valFraction must be between 0 and 1/);
    await expect(buildPretrainDataset({ tokenizer: 'char', outDir: out('x') })).rejects.toThrow(/source is required/);
  });
});
