/**
 * Base vocabularies from gpt-tokenizer's BPE encodings (r50k_base is GPT-2's, as in the
 * report). Loaded lazily with require so that importing @miniglm/data does not parse three
 * multi-megabyte rank tables when a run uses one (or the char tokenizer).
 */
import { createRequire } from 'node:module';
import { DataError } from '../errors.ts';
import type { BaseVocab } from './base.ts';
import type { TextAssembler } from './text-assembler.ts';

export const BPE_NAMES = ['r50k_base', 'cl100k_base', 'o200k_base'] as const;
export type BpeName = (typeof BPE_NAMES)[number];

const require = createRequire(import.meta.url);

interface EncodeOptions {
  allowedSpecial?: Set<string>;
  disallowedSpecial?: Set<string>;
}
interface EncodingModule {
  encode(text: string, options?: EncodeOptions): number[];
  setMergeCacheSize(size: number): void;
  [exported: string]: unknown;
}
type RankTable = ReadonlyArray<string | readonly number[] | undefined>;

// Plain text must never turn into a special token: nothing is allowed, and nothing is
// "disallowed" either (disallowed specials make gpt-tokenizer throw instead of encoding text).
const TEXT_ONLY: EncodeOptions = { disallowedSpecial: new Set() };

const END_OF_TEXT = '<|endoftext|>';

class BpeVocab implements BaseVocab {
  readonly size: number;
  readonly eotId: number;
  readonly sepId: number;
  readonly byteIds: readonly number[];
  /** Flat storage of every token's bytes: token i is data[offsets[i] .. offsets[i+1]). */
  private readonly offsets: Uint32Array;
  private readonly data: Uint8Array;
  private readonly isText: Uint8Array;

  constructor(
    readonly name: BpeName,
    private readonly encoding: EncodingModule,
    ranks: RankTable,
  ) {
    const encoder = new TextEncoder();
    const pieces: (Uint8Array | undefined)[] = new Array(ranks.length);
    let total = 0;
    for (let id = 0; id < ranks.length; id++) {
      const entry = ranks[id];
      if (entry === undefined) continue; // holes: ids the encoding leaves unused
      const bytes = typeof entry === 'string' ? encoder.encode(entry) : Uint8Array.from(entry);
      pieces[id] = bytes;
      total += bytes.length;
    }
    this.offsets = new Uint32Array(ranks.length + 1);
    this.data = new Uint8Array(total);
    this.isText = new Uint8Array(ranks.length);
    const byteIds: number[] = new Array(256).fill(-1);
    let at = 0;
    for (let id = 0; id < ranks.length; id++) {
      this.offsets[id] = at;
      const bytes = pieces[id];
      if (!bytes) continue;
      this.data.set(bytes, at);
      at += bytes.length;
      this.isText[id] = 1;
      if (bytes.length === 1) byteIds[bytes[0]!] = id;
    }
    this.offsets[ranks.length] = at;
    if (byteIds.includes(-1)) {
      throw new DataError(
        `gpt-tokenizer ${name} lacks a token for byte ${byteIds.indexOf(-1)}; cannot build byte fallback`,
      );
    }
    this.byteIds = byteIds;

    // The special ids live above the rank table; find them through the encoder itself so a
    // new gpt-tokenizer release cannot silently disagree with a hard-coded table.
    let maxId = ranks.length - 1;
    for (const value of Object.values(encoding)) {
      if (typeof value !== 'string' || !/^<\|[^|]+\|>$/.test(value)) continue;
      const ids = encoding.encode(value, { allowedSpecial: new Set([value]) });
      if (ids.length === 1 && ids[0]! >= ranks.length) maxId = Math.max(maxId, ids[0]!);
    }
    const eot = encoding.encode(END_OF_TEXT, { allowedSpecial: new Set([END_OF_TEXT]) });
    if (eot.length !== 1 || eot[0]! < ranks.length) {
      throw new DataError(`gpt-tokenizer ${name} has no ${END_OF_TEXT} special token`);
    }
    this.eotId = eot[0]!;
    this.sepId = maxId + 1;
    this.size = this.sepId + 1;
  }

  encode(text: string): number[] {
    return this.encoding.encode(text, TEXT_ONLY);
  }

  isTextId(id: number): boolean {
    return id >= 0 && id < this.isText.length && this.isText[id] === 1;
  }

  bytesOf(id: number): Uint8Array {
    return this.data.subarray(this.offsets[id]!, this.offsets[id + 1]!);
  }

  appendTo(out: TextAssembler, id: number): void {
    out.pushBytes(this.bytesOf(id));
  }
}

const cache = new Map<BpeName, BpeVocab>();

export function bpeVocab(name: BpeName): BaseVocab {
  let vocab = cache.get(name);
  if (!vocab) {
    const encoding = require(`gpt-tokenizer/encoding/${name}`) as EncodingModule;
    // gpt-tokenizer's merge cache is an LRU over a Map; on CJK corpora (every line a new
    // chunk) its evictions grow quadratic: all of poetry:tang took 41 s with it, 6-8 s
    // without. English text loses about 2x without it, still ~1M tokens/s. (This is the
    // require()d CJS instance, private to this module.)
    encoding.setMergeCacheSize(0);
    const ranksModule = require(`gpt-tokenizer/bpeRanks/${name}`) as { default?: RankTable } | RankTable;
    const ranks = Array.isArray(ranksModule)
      ? (ranksModule as RankTable)
      : (ranksModule as { default: RankTable }).default;
    vocab = new BpeVocab(name, encoding, ranks);
    cache.set(name, vocab);
  }
  return vocab;
}
