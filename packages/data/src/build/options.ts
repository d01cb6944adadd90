/** Checks of the options both builders share; each error names the option. */
import { DataError } from '../errors.ts';
import { DEFAULT_SHARD_TOKENS } from './shards.ts';

export const DEFAULT_VAL_FRACTION = 0.05;
export const DEFAULT_SEED = 1337;

export interface CommonBuildOptions {
  /** Folder to write manifest.json and the shards into (created; old outputs replaced). */
  outDir: string;
  /** Fraction of documents (or Q&A pairs) held out for validation, in (0, 1). Default 0.05. */
  valFraction?: number;
  /** Seed of the train/val split. Default 1337. */
  seed?: number;
  /** At most this many documents (or pairs); overrides the source's own limit. */
  limit?: number;
  /** Tokens per shard file. Default 64M. */
  shardTokens?: number;
}

export function checkCommonOptions(o: CommonBuildOptions): { valFraction: number; seed: number; shardTokens: number } {
  const valFraction = o.valFraction ?? DEFAULT_VAL_FRACTION;
  const seed = o.seed ?? DEFAULT_SEED;
  const shardTokens = o.shardTokens ?? DEFAULT_SHARD_TOKENS;
  if (!o.outDir) throw new DataError('outDir is required: the folder to write the dataset into');
  if (!(valFraction > 0 && valFraction < 1))
    throw new DataError(`valFraction must be between 0 and 1 (exclusive), got ${valFraction}`);
  if (!Number.isInteger(seed)) throw new DataError(`seed must be an integer, got ${seed}`);
  if (o.limit !== undefined && !(Number.isInteger(o.limit) && o.limit >= 1)) {
    throw new DataError(`limit must be a positive integer, got ${o.limit}`);
  }
  if (!(Number.isInteger(shardTokens) && shardTokens >= 1))
    throw new DataError(`shardTokens must be a positive integer, got ${shardTokens}`);
  return { valFraction, seed, shardTokens };
}
