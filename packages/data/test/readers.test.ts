import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import {
  DataError,
  MAX_TXT_DOCUMENT_CHARS,
  parseSourceSpec,
  readDocuments,
  readQaPairs,
  toDocumentSource,
  toQaSource,
  type DocumentSource,
} from '../src/index.ts';
import { collect, useTempDir } from './helpers.ts';

const tmp = useTempDir('readers');
const file = (name: string) => path.join(tmp(), name);
const docs = (source: DocumentSource | string) => collect(readDocuments(source));

describe('file readers', () => {
  it('.txt: documents are separated by blank lines', async () => {
    await writeFile(file('a.txt'), '\uFEFFfirst line\nsecond line\n\n\n  \nthird doc\r\nstill third\n\nlast');
    expect(await docs(file('a.txt'))).toEqual(['first line\nsecond line', 'third doc\nstill third', 'last']);
  });

  it('.txt: a document with no blank line for megabytes is cut at line ends, nothing lost', async () => {
    const line = '春眠不觉晓，处处闻啼鸟。'.repeat(40); // 480 characters
    const lines = Array.from({ length: 5000 }, (_, i) => `${i}${line}`); // ~2.4M characters, one "document"
    await writeFile(file('novel.txt'), lines.join('\n'));
    const out = await docs(file('novel.txt'));
    expect(out.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...out.map((d) => d.length))).toBeLessThan(MAX_TXT_DOCUMENT_CHARS + line.length + 10);
    expect(out.join('\n')).toBe(lines.join('\n'));
  });

  it('.jsonl: chosen field, blank lines skipped, limit honoured', async () => {
    await writeFile(
      file('a.jsonl'),
      '{"text":"one","body":"uno"}\n\n{"text":"two","body":"dos"}\n{"text":"three","body":"tres"}\n',
    );
    expect(await docs(file('a.jsonl'))).toEqual(['one', 'two', 'three']);
    expect(await docs({ kind: 'file', path: file('a.jsonl'), format: 'jsonl', field: 'body', limit: 2 })).toEqual([
      'uno',
      'dos',
    ]);
  });

  it('.jsonl: a malformed line is reported with file and 1-based line number', async () => {
    await writeFile(file('bad.jsonl'), '{"text":"ok"}\n{"text":"ok2"}\n\n{"text": oops}\n');
    await expect(docs(file('bad.jsonl'))).rejects.toThrow(`${file('bad.jsonl')}:4: not valid JSON`);
    await expect(docs(file('bad.jsonl'))).rejects.toBeInstanceOf(DataError);
  });

  it('.jsonl: a missing field is named with its line', async () => {
    await writeFile(file('nofield.jsonl'), '{"text":"ok"}\n{"body":"x"}\n');
    await expect(docs(file('nofield.jsonl'))).rejects.toThrow(
      `${file('nofield.jsonl')}:2: field "text" missing (fields: body)`,
    );
  });

  it('.json: an array of strings or of objects', async () => {
    await writeFile(file('s.json'), JSON.stringify(['a', 'b', '   ', 'c']));
    expect(await docs(file('s.json'))).toEqual(['a', 'b', 'c']);
    await writeFile(file('o.json'), JSON.stringify([{ content: 'x' }, { content: 'y' }]));
    expect(await docs(toDocumentSource({ source: file('o.json'), field: 'content' }))).toEqual(['x', 'y']);
    await writeFile(file('obj.json'), '{"text":"x"}');
    await expect(docs(file('obj.json'))).rejects.toThrow(/expected a JSON array/);
  });

  it('.csv: column by name, quoted multi-line fields', async () => {
    await writeFile(file('a.csv'), 'id,text\n1,hello\n2,"multi\nline, with comma"\n3,"say ""hi"""\n');
    expect(await docs(file('a.csv'))).toEqual(['hello', 'multi\nline, with comma', 'say "hi"']);
    await expect(docs(toDocumentSource({ source: file('a.csv'), field: 'body' }))).rejects.toThrow(
      /a\.csv:2: field "body" missing \(fields: id, text\)/,
    );
  });

  it('.parquet: column by name across several row groups', async () => {
    const text = Array.from({ length: 25 }, (_, i) => `文档 ${i} 😀`);
    parquetWriteFile({
      filename: file('a.parquet'),
      columnData: [
        { name: 'id', data: Array.from({ length: 25 }, (_, i) => i), type: 'INT32' },
        { name: 'text', data: text, type: 'STRING' },
      ],
      rowGroupSize: 10,
    });
    expect(await docs(file('a.parquet'))).toEqual(text);
    expect(await docs({ kind: 'file', path: file('a.parquet'), format: 'parquet', field: 'text', limit: 12 })).toEqual(
      text.slice(0, 12),
    );
    await expect(docs(toDocumentSource({ source: file('a.parquet'), field: 'body' }))).rejects.toThrow(
      /column "body" not found; columns are: id, text/,
    );
  });

  it('names a missing file and lists the valid extensions and collections', async () => {
    await expect(docs(file('nope.jsonl'))).rejects.toThrow(`file not found: ${file('nope.jsonl')}`);
    expect(() => toDocumentSource('data.xml')).toThrow(/extension must be one of \.txt .*\.parquet/);
    expect(() => toDocumentSource('poetry:nope')).toThrow(
      /unknown collection "poetry:nope"; valid: poetry:tang, poetry:song/,
    );
    expect(() => toDocumentSource('poetry-qa:tang')).toThrow(/pretrain stage reads documents \(use poetry:tang\)/);
    expect(() => toQaSource('poetry:tang')).toThrow(/use poetry-qa:tang/);
    expect(() => toQaSource('notes.txt')).toThrow(/\.txt file has no question\/answer fields/);
  });

  it('resolves relative paths against baseDir', () => {
    expect(parseSourceSpec('corpus/a.jsonl', { baseDir: '/data/run' })).toEqual({
      kind: 'file',
      path: '/data/run/corpus/a.jsonl',
      format: 'jsonl',
    });
    expect(parseSourceSpec('poetry:songci')).toEqual({ kind: 'poetry', collection: 'songci' });
  });
});

describe('Q&A readers', () => {
  it('.jsonl with default and custom field names', async () => {
    await writeFile(
      file('qa.jsonl'),
      '{"question":"q1","answer":"a1"}\n{"question":"q2","answer":""}\n{"question":"q3","answer":"a3"}\n',
    );
    expect(await collect(readQaPairs(file('qa.jsonl')))).toEqual([
      { question: 'q1', answer: 'a1' },
      { question: 'q3', answer: 'a3' }, // empty answers are skipped
    ]);
    await writeFile(file('qa2.jsonl'), '{"q":"Q","a":"A"}\n{"q":"Q2"}\n');
    const source = toQaSource({ source: file('qa2.jsonl'), questionField: 'q', answerField: 'a' });
    await expect(collect(readQaPairs(source))).rejects.toThrow(`${file('qa2.jsonl')}:2: field "a" missing`);
    await writeFile(file('qa3.jsonl'), '{"question":"q","answer":"a"}\nnot json\n');
    await expect(collect(readQaPairs(file('qa3.jsonl')))).rejects.toThrow(`${file('qa3.jsonl')}:2: not valid JSON`);
  });

  it('.csv Q&A', async () => {
    await writeFile(file('qa.csv'), 'question,answer\n谁?,我。\n');
    expect(await collect(readQaPairs(file('qa.csv')))).toEqual([{ question: '谁?', answer: '我。' }]);
  });
});

describe('bundled poetry', () => {
  it('poetry:tang yields real poems as "title\\nlines"', async () => {
    const poems = await docs({ kind: 'poetry', collection: 'tang', limit: 5 });
    expect(poems).toHaveLength(5);
    expect(poems[0]).toBe(
      '帝京篇十首 一\n秦川雄帝宅，函谷壯皇居。\n綺殿千尋起，離宮百雉餘。\n連甍遙接漢，飛觀迥凌虛。\n雲日隱層闕，風煙出綺疎。',
    );
    for (const poem of poems) expect(poem.split('\n').length).toBeGreaterThan(1);
  });

  it.each([
    'song',
    'songci',
    'lunyu',
    'shijing',
    'chuci',
    'yuanqu',
    'huajianji',
    'nantang',
    'caocao',
    'mengxue',
    'sishuwujing',
  ])('poetry:%s yields documents', async (name) => {
    const found = await docs({ kind: 'poetry', collection: name, limit: 3 });
    expect(found).toHaveLength(3);
    for (const d of found) expect(d.length).toBeGreaterThan(4);
  });

  it('songci titles are tune·first phrase', async () => {
    const [first] = await docs({ kind: 'poetry', collection: 'songci', limit: 1 });
    expect(first!.split('\n')[0]).toBe('导引·气和玉烛');
  });

  it('poetry-qa:tang yields sensible, deterministic pairs', async () => {
    const pairs = await collect(readQaPairs({ kind: 'poetry-qa', collection: 'tang', limit: 7 }));
    expect(pairs.slice(0, 3)).toEqual([
      { question: '《帝京篇十首 一》的作者是谁？', answer: '太宗皇帝。' },
      { question: '《帝京篇十首 一》的第一句是什么？', answer: '秦川雄帝宅，函谷壯皇居。' },
      { question: '「秦川雄帝宅，函谷壯皇居。」的下一句是什么？', answer: '綺殿千尋起，離宮百雉餘。' },
    ]);
    expect(pairs).toContainEqual({
      question: '「秦川雄帝宅，函谷壯皇居。」出自哪首诗？',
      answer: '太宗皇帝的《帝京篇十首 一》。',
    });
    const again = await collect(readQaPairs(toQaSource({ source: 'poetry-qa:tang', limit: 7 })));
    expect(again).toEqual(pairs);
  });

  it('poetry-qa knows who wrote 靜夜思', async () => {
    let found: { question: string; answer: string } | undefined;
    for await (const pair of readQaPairs({ kind: 'poetry-qa', collection: 'tangshi300' })) {
      if (pair.question === '《靜夜思》的作者是谁？') {
        found = pair;
        break;
      }
    }
    expect(found?.answer).toBe('李白。');
  });

  it('poetry-qa refuses collections without authors', async () => {
    expect(() => toQaSource('poetry-qa:lunyu')).toThrow(/unknown collection "poetry-qa:lunyu"; valid: poetry-qa:tang/);
  });
});
