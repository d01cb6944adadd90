/**
 * A small seeded PRNG (sfc32, seeded through splitmix32) shared by the data package and the
 * model package. Why our own: Math.random cannot be seeded, and a training run must resume
 * with the exact same batch sequence, so the whole state is four 32-bit words that travel in
 * checkpoints (SamplerState.rng) and can be restored with setState.
 */
import { DataError } from './errors.ts';

export interface Rng {
  /** Uniform float in [0, 1) with 32 bits of resolution. */
  next(): number;
  /** Uniform integer in [0, 2^32). */
  nextUint32(): number;
  /** Uniform integer in [0, n), without modulo bias. n must be a positive integer. */
  int(n: number): number;
  /** Standard normal sample (Box-Muller; no cached spare, so the state stays four words). */
  normal(): number;
  /** The full state: four unsigned 32-bit integers. */
  getState(): number[];
  /** Restores a state from getState; the sequence then continues exactly as it did. */
  setState(state: readonly number[]): void;
}

const TWO_32 = 2 ** 32;

/** splitmix32: spreads a (possibly small, sequential) seed over all 32 bits. */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** 32-bit FNV-1a, so a string label can name a seed ("split", "train-sampler"). */
function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Derives an independent seed from a base seed and a label, so that two consumers of one
 * user seed (the train/val split and the batch sampler, say) do not share a stream.
 */
export function deriveSeed(seed: number, label: string): number {
  return splitmix32((seed >>> 0) ^ hashString(label));
}

export function createRng(seed: number | string): Rng {
  if (typeof seed === 'number' && !Number.isFinite(seed)) {
    throw new DataError(`rng seed must be a finite number, got ${seed}`);
  }
  // Math.trunc + >>> 0 keeps any finite number usable; negative seeds wrap, which is fine.
  let s = typeof seed === 'string' ? hashString(seed) : Math.trunc(seed) >>> 0;
  const words: number[] = [];
  for (let i = 0; i < 4; i++) {
    s = (s + 0x9e3779b9) >>> 0;
    words.push(splitmix32(s));
  }
  let [a, b, c, d] = words as [number, number, number, number];

  const nextUint32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  // The first outputs of sfc32 still correlate with the seed words; discard a few.
  for (let i = 0; i < 12; i++) nextUint32();

  const next = (): number => nextUint32() / TWO_32;

  return {
    next,
    nextUint32,
    int(n: number): number {
      if (!Number.isInteger(n) || n < 1) throw new DataError(`rng.int needs a positive integer, got ${n}`);
      if (n > TWO_32) {
        // 53-bit float for ranges beyond 32 bits (huge token streams).
        const hi = nextUint32() >>> 5;
        const lo = nextUint32() >>> 6;
        return Math.floor(((hi * 67108864 + lo) / 9007199254740992) * n);
      }
      // Rejection sampling: drop the top sliver of [0, 2^32) that would favour small values.
      const limit = TWO_32 - (TWO_32 % n);
      for (;;) {
        const u = nextUint32();
        if (u < limit) return u % n;
      }
    },
    normal(): number {
      const u1 = 1 - next(); // (0, 1]: log(0) never happens
      const u2 = next();
      return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    },
    getState(): number[] {
      return [a >>> 0, b >>> 0, c >>> 0, d >>> 0];
    },
    setState(state: readonly number[]): void {
      if (state.length !== 4 || !state.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_32)) {
        throw new DataError(`rng state must be four unsigned 32-bit integers, got [${state.join(', ')}]`);
      }
      [a, b, c, d] = [state[0]! | 0, state[1]! | 0, state[2]! | 0, state[3]! | 0];
    },
  };
}
