import { describe, expect, it } from 'vitest';
import { createRng, deriveSeed } from '../src/index.ts';

describe('createRng', () => {
  it('is deterministic per seed and differs between seeds', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const seqA = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(seqA);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(seqA);
    for (const v of seqA) expect(v >= 0 && v < 1).toBe(true);
  });

  it('continues identically after getState/setState', () => {
    const a = createRng('seed');
    for (let i = 0; i < 10; i++) a.nextUint32();
    const state = a.getState();
    const expected = Array.from({ length: 20 }, () => a.int(1000));
    const b = createRng(0);
    b.setState(JSON.parse(JSON.stringify(state)));
    expect(Array.from({ length: 20 }, () => b.int(1000))).toEqual(expected);
  });

  it('draws integers in range, roughly uniformly', () => {
    const rng = createRng(7);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 20000; i++) counts[rng.int(10)]++;
    for (const n of counts) expect(n).toBeGreaterThan(1700);
    expect(rng.int(1)).toBe(0);
    expect(() => rng.int(0)).toThrow(/positive integer/);
  });

  it('gives standard normals and rejects bad state', () => {
    const rng = createRng(1);
    const xs = Array.from({ length: 5000 }, () => rng.normal());
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
    expect(Math.abs(mean)).toBeLessThan(0.06);
    expect(Math.abs(variance - 1)).toBeLessThan(0.08);
    expect(() => rng.setState([1, 2, 3])).toThrow(/four unsigned 32-bit integers/);
  });

  it('derives distinct seeds per label', () => {
    expect(deriveSeed(1, 'a')).not.toBe(deriveSeed(1, 'b'));
    expect(deriveSeed(1, 'a')).toBe(deriveSeed(1, 'a'));
  });
});
