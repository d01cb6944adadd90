/**
 * The train/val split while streaming: each item (a document, or an SFT row) goes to one
 * split by a seeded draw, and is spooled as uint32 ids. Same seed and same input give the
 * same split. When the draws leave a split empty, the last item of the other split moves
 * over, so both splits have at least one item whenever there are two or more.
 */
import path from 'node:path';
import { createRng, deriveSeed, type Rng } from '../rng.ts';
import type { PerSplit, SplitName } from './manifest.ts';
import { TokenSpool } from './spool.ts';

interface LastItem<M> {
  start: number;
  length: number;
  meta: M;
}

export class SplitSpools<M> {
  readonly spools: PerSplit<TokenSpool>;
  readonly items: PerSplit<number> = { train: 0, val: 0 };
  private readonly last: PerSplit<LastItem<M> | undefined> = { train: undefined, val: undefined };
  private readonly rng: Rng;

  private constructor(
    spools: PerSplit<TokenSpool>,
    seed: number,
    private readonly valFraction: number,
  ) {
    this.spools = spools;
    // A stream of its own, so the split does not depend on how samplers use the seed.
    this.rng = createRng(deriveSeed(seed, 'train-val-split'));
  }

  static async create<M>(tmpDir: string, seed: number, valFraction: number): Promise<SplitSpools<M>> {
    const spools = {
      train: await TokenSpool.create(path.join(tmpDir, 'train.u32')),
      val: await TokenSpool.create(path.join(tmpDir, 'val.u32')),
    };
    return new SplitSpools<M>(spools, seed, valFraction);
  }

  /** One draw per input item, made even for items the caller then drops, so the split of
   * the others does not depend on which were dropped. */
  draw(): SplitName {
    return this.rng.next() < this.valFraction ? 'val' : 'train';
  }

  async add(split: SplitName, ids: ArrayLike<number>, meta: M): Promise<void> {
    const spool = this.spools[split];
    this.last[split] = { start: spool.length, length: ids.length, meta };
    await spool.append(ids);
    this.items[split]++;
  }

  get total(): number {
    return this.items.train + this.items.val;
  }

  /**
   * Moves the last item of the non-empty split into the empty one, if one is empty and the
   * other has at least two items. Returns the moved item's meta and direction, if any.
   */
  async balance(): Promise<{ from: SplitName; to: SplitName; meta: M } | undefined> {
    const empty: SplitName | undefined = this.items.val === 0 ? 'val' : this.items.train === 0 ? 'train' : undefined;
    if (!empty) return undefined;
    const from: SplitName = empty === 'val' ? 'train' : 'val';
    const item = this.last[from];
    if (this.items[from] < 2 || !item) return undefined;
    const ids = await this.spools[from].read(item.start, item.length);
    await this.spools[from].truncate(item.start);
    this.items[from]--;
    this.last[from] = undefined;
    await this.add(empty, ids, item.meta);
    return { from, to: empty, meta: item.meta };
  }

  async close(): Promise<void> {
    await this.spools.train.close();
    await this.spools.val.close();
  }
}
