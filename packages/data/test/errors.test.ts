/**
 * UserError and isUserError (src/errors.ts): a subclass carries its own name, and is told
 * from other errors by a brand that a second copy of the module recognises too; the header of
 * errors.ts names every class of the tree that extends UserError.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { DataError, isUserError, UserError } from '../src/errors.ts';

class ExampleError extends UserError {}

describe('UserError', () => {
  it('names each error after its own class', () => {
    expect(new ExampleError('x').name).toBe('ExampleError');
    expect(new DataError('x').name).toBe('DataError');
    expect(String(new ExampleError('the field is wrong'))).toBe('ExampleError: the field is wrong');
  });

  it('isUserError is true for every subclass and for nothing else', () => {
    expect(isUserError(new ExampleError('x'))).toBe(true);
    expect(isUserError(new DataError('x'))).toBe(true);
    expect(isUserError(new Error('x'))).toBe(false);
    expect(isUserError(new TypeError('x'))).toBe(false);
    // A name alone is not enough: it is what a bug's error could say too.
    expect(isUserError(Object.assign(new Error('x'), { name: 'DataError' }))).toBe(false);
    for (const value of [undefined, null, 'DataError', 42, {}]) expect(isUserError(value)).toBe(false);
  });

  it('recognises the errors of another copy of the module', async () => {
    vi.resetModules(); // the next import evaluates the module again: a second copy
    const copy = await import('../src/errors.ts');
    expect(copy.DataError).not.toBe(DataError);
    const other = new copy.DataError('from the other copy');
    expect(other instanceof DataError).toBe(false);
    expect(isUserError(other)).toBe(true);
    expect(copy.isUserError(new DataError('from this copy'))).toBe(true);
  });

  it('keeps a DataError to one line and its cause', () => {
    const cause = new Error('inner');
    const e = new DataError('bad.jsonl:4:\n  not valid JSON', { cause });
    expect(e.message).toBe('bad.jsonl:4: not valid JSON');
    expect(e.cause).toBe(cause);
  });

  it('lists in its header every class that extends it, so that one file shows them all', () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
    const extending = new Set<string>();
    for (const top of ['packages', 'apps'])
      for (const name of fs.readdirSync(path.join(root, top))) {
        const src = path.join(root, top, name, 'src');
        if (!fs.existsSync(src)) continue;
        for (const file of fs.readdirSync(src, { recursive: true }) as string[]) {
          if (!file.endsWith('.ts') || file.includes('generated')) continue;
          const text = fs.readFileSync(path.join(src, file), 'utf8');
          for (const m of text.matchAll(/class (\w+) extends UserError\b/g)) extending.add(m[1]!);
        }
      }
    const header = fs.readFileSync(path.join(root, 'packages/data/src/errors.ts'), 'utf8').split('*/')[0]!;
    const listed = new Set(header.slice(header.indexOf('The family:')).match(/\b[A-Z]\w*Error\b/g));
    expect(extending.size).toBeGreaterThan(5);
    expect([...listed].sort()).toEqual([...extending].sort());
  });
});
