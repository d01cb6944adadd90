/**
 * A GPT in TensorFlow.js, following nanoGPT's model.py: token + position embeddings,
 * pre-LayerNorm blocks (causal multi-head self-attention, then a GELU MLP), a final
 * LayerNorm, and an output layer tied to the token embedding.
 *
 * Parameters are plain tf.Variables in a named, ordered map so that checkpoints, the
 * optimizer and weight-decay groups all address them by name.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPTConfig } from './config.ts';
import { causalAttentionQkv, causalMask, dropout, embed, fused, gelu, layerNorm, linear } from './ops.ts';
import type { ForwardOptions, LanguageModel, DecodeState } from './model.ts';
import { ModelInputError, type DecodeWeights } from './model.ts';
import { decodeNative, startNativeDecoding, type NativeKVCache } from './backend/native.ts';

/** Keys and values of the tokens seen so far, per layer: [B, heads, T, headDim]. */
interface KVCache extends DecodeState {
  kind: 'gpt';
  layers: { k: tf.Tensor4D; v: tf.Tensor4D }[];
  length: number;
  /** wteᵀ (C, vocab), transposed once per decoding instead of once per token. */
  wteT: tf.Tensor2D;
}

export class GPT implements LanguageModel {
  readonly params: Map<string, tf.Variable>;
  get contextLimit(): number {
    return this.config.blockSize;
  }
  /** Additive causal mask for the longest context, sliced per call. */
  private readonly mask: tf.Tensor2D;

  constructor(
    readonly config: GPTConfig,
    seed: number,
  ) {
    this.params = initGPTParams(config, seed);
    this.mask = tf.keep(causalMask(config.blockSize));
  }

  private p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`GPT parameter ${name} is missing`);
    return v;
  }

  private maybe(name: string): tf.Variable | undefined {
    return this.params.get(name);
  }

  /** idx [B, T] int32 → logits [B·T, vocab]. */
  logits(idx: tf.Tensor2D, opts: ForwardOptions): tf.Tensor2D {
    const [, t] = idx.shape;
    if (t > this.config.blockSize)
      throw new ModelInputError(
        `cannot forward a sequence of length ${t}: the block size is only ${this.config.blockSize}`,
      );
    return tf.tidy(() => {
      const h = this.trunk(idx, 0, opts); // (B, T, C)
      return this.head(tf.reshape(h, [-1, this.config.dim]));
    });
  }

  /**
   * Runs the blocks over idx, whose first token sits at `offset` in the sequence. With a
   * cache, keys and values are appended to it, so each new token costs O(T), not O(T²).
   */
  private trunk(idx: tf.Tensor2D, offset: number, opts: ForwardOptions, cache?: KVCache): tf.Tensor3D {
    const { layers } = this.config;
    const tokPos = embed(idx, this.p('wte') as tf.Tensor2D, this.p('wpe') as tf.Tensor2D, offset); // (B, T, C)
    let x = dropout(tokPos, this.config.dropout, opts.training, seedFor(opts, 0)) as tf.Tensor3D;
    for (let i = 0; i < layers; i++) {
      x = tf.add(x, this.attention(this.norm(x, `h.${i}.ln1`) as tf.Tensor3D, i, opts, cache?.layers[i]));
      x = tf.add(x, this.mlp(this.norm(x, `h.${i}.ln2`), i, opts));
    }
    return this.norm(x, 'lnf') as tf.Tensor3D;
  }

  private norm(x: tf.Tensor, name: string): tf.Tensor {
    return layerNorm(x, this.p(`${name}.g`), this.maybe(`${name}.b`));
  }

  private attention(
    x: tf.Tensor3D,
    layer: number,
    opts: ForwardOptions,
    cached?: { k: tf.Tensor4D; v: tf.Tensor4D },
  ): tf.Tensor3D {
    const { heads, dim } = this.config;
    const hs = dim / heads;
    const [b, t] = x.shape;
    const n = `h.${layer}.attn`;
    const project = (w: string) => linear(x, this.p(`${n}.${w}`), this.maybe(`${n}.b${w.slice(1)}`)); // (B, T, C)
    if (fused() && !cached && !(opts.training && this.config.dropout > 0)) {
      // Native: one matrix product for q, k and v through [wq | wk | wv] (three products of
      // width C run BLAS far below its peak at small C), then one kernel for all heads,
      // reading them side by side (no transposes). The weights stay three parameters, so
      // checkpoints keep their layout; the concatenation's gradient splits dW back.
      const parts = ['q', 'k', 'v'];
      const w = tf.concat(
        parts.map((p) => this.p(`${n}.w${p}`)),
        1,
      );
      const biases = parts.map((p) => this.maybe(`${n}.b${p}`));
      const bias = biases.every((b) => b) ? tf.concat(biases as tf.Tensor[], 0) : undefined;
      const y = causalAttentionQkv(linear(x, w, bias) as tf.Tensor3D, heads);
      return linear(y, this.p(`${n}.wo`), this.maybe(`${n}.bo`)) as tf.Tensor3D;
    }
    const split = (w: string) => tf.transpose(tf.reshape(project(w), [b, t, heads, hs]), [0, 2, 1, 3]); // (B, nh, T, hs)
    const q = split('wq');
    let k = split('wk');
    let v = split('wv');
    if (cached) {
      k = tf.concat([cached.k, k], 2);
      v = tf.concat([cached.v, v], 2);
      // The caller owns the cache: keep the grown tensors past this tidy, free the old ones.
      tf.dispose([cached.k, cached.v]);
      cached.k = tf.keep(k as tf.Tensor4D);
      cached.v = tf.keep(v as tf.Tensor4D);
    }
    const tk = k.shape[2]!;
    let att = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hs)); // (B, nh, T, Tk)
    if (t > 1) att = tf.add(att, tf.slice(this.mask, [tk - t, 0], [t, tk]));
    att = dropout(tf.softmax(att), this.config.dropout, opts.training, seedFor(opts, 2 * layer + 1));
    const y = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [b, t, dim]); // (B, T, C)
    const out = linear(y, this.p(`${n}.wo`), this.maybe(`${n}.bo`));
    return dropout(out, this.config.dropout, opts.training, seedFor(opts, 2 * layer + 2)) as tf.Tensor3D;
  }

  private mlp(x: tf.Tensor, layer: number, opts: ForwardOptions): tf.Tensor {
    const n = `h.${layer}.mlp`;
    const hidden = gelu(linear(x, this.p(`${n}.wfc`), this.maybe(`${n}.bfc`)));
    const out = linear(hidden, this.p(`${n}.wproj`), this.maybe(`${n}.bproj`));
    return dropout(out, this.config.dropout, opts.training, seedFor(opts, 1000 + layer));
  }

  /** Output layer tied to the token embedding: (N, C) @ wteᵀ → (N, vocab). */
  private head(x: tf.Tensor2D, wteT?: tf.Tensor2D): tf.Tensor2D {
    return wteT ? tf.matMul(x, wteT) : tf.matMul(x, this.p('wte'), false, true);
  }

  startDecoding(batch: number, options?: { weights?: DecodeWeights }): KVCache | NativeKVCache {
    // Native: the whole model per token in one call over caches of plain arrays.
    if (fused()) return startNativeDecoding(this.config, batch, this.params, options?.weights);
    const hs = this.config.dim / this.config.heads;
    const empty = () => tf.keep(tf.zeros([batch, this.config.heads, 0, hs]) as tf.Tensor4D);
    return {
      kind: 'gpt',
      layers: Array.from({ length: this.config.layers }, () => ({ k: empty(), v: empty() })),
      length: 0,
      wteT: tf.keep(tf.transpose(this.p('wte')) as tf.Tensor2D),
    };
  }

  /**
   * Feeds new tokens [B, T] after those already in the cache; returns the logits of the last
   * position [B, vocab]. Throws when the cache would exceed the block size (the sampler's
   * window policy keeps it within).
   */
  decode(idx: tf.Tensor2D, state: DecodeState): tf.Tensor2D {
    const cache = state as KVCache | NativeKVCache;
    const [, t] = idx.shape;
    if (cache.length + t > this.config.blockSize)
      throw new ModelInputError(
        `the KV cache holds ${cache.length} tokens; ${t} more exceed the block size ${this.config.blockSize}`,
      );
    if (cache.kind === 'gpt-native') return decodeNative(this.config, this.params, cache, idx);
    const logits = tf.tidy(() => {
      const h = this.trunk(idx, cache.length, { training: false }, cache);
      const last = tf.reshape(tf.slice(h, [0, t - 1, 0], [-1, 1, -1]), [-1, this.config.dim]) as tf.Tensor2D;
      return this.head(last, cache.wteT);
    });
    cache.length += t;
    return logits;
  }

  restartDecoding(state: DecodeState): void {
    const cache = state as KVCache | NativeKVCache;
    cache.length = 0; // the native caches are overwritten from position 0 on
    if (cache.kind === 'gpt-native') return;
    for (const l of cache.layers) {
      const [batch, heads, , hs] = l.k.shape;
      tf.dispose([l.k, l.v]);
      l.k = tf.keep(tf.zeros([batch, heads, 0, hs]) as tf.Tensor4D);
      l.v = tf.keep(tf.zeros([batch, heads, 0, hs]) as tf.Tensor4D);
    }
  }

  disposeDecoding(state: DecodeState): void {
    if (state.kind === 'gpt-native') return; // plain arrays: nothing to free
    const cache = state as KVCache;
    for (const l of cache.layers) tf.dispose([l.k, l.v]);
    cache.wteT.dispose();
  }

  dispose(): void {
    tf.dispose([...this.params.values(), this.mask]);
  }
}

/** A distinct, reproducible dropout seed per call site and step. */
function seedFor(opts: ForwardOptions, site: number): number {
  return (opts.seed ?? 0) * 7919 + site;
}

/**
 * nanoGPT's initialisation: N(0, 0.02) for weights, with the residual projections scaled by
 * 1/sqrt(2·layers) so the residual stream's variance does not grow with depth; zero biases,
 * unit LayerNorm gains.
 */
function initGPTParams(c: GPTConfig, seed: number): Map<string, tf.Variable> {
  const params = new Map<string, tf.Variable>();
  let k = 0;
  // Variables survive tidy; their initial tensors do not linger. Unnamed: tfjs names are
  // global, and two models may live in one process.
  const normal = (name: string, shape: number[], std = 0.02) =>
    params.set(
      name,
      tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, std, 'float32', seed * 1009 + k++))),
    );
  const constant = (name: string, shape: number[], value: number) =>
    params.set(
      name,
      tf.tidy(() => tf.variable(tf.fill(shape, value))),
    );
  const residualStd = 0.02 / Math.sqrt(2 * c.layers);

  normal('wte', [c.vocabSize, c.dim]);
  normal('wpe', [c.blockSize, c.dim]);
  for (let i = 0; i < c.layers; i++) {
    const h = `h.${i}`;
    constant(`${h}.ln1.g`, [c.dim], 1);
    if (c.bias) constant(`${h}.ln1.b`, [c.dim], 0);
    for (const w of ['q', 'k', 'v']) {
      normal(`${h}.attn.w${w}`, [c.dim, c.dim]);
      if (c.bias) constant(`${h}.attn.b${w}`, [c.dim], 0);
    }
    normal(`${h}.attn.wo`, [c.dim, c.dim], residualStd);
    if (c.bias) constant(`${h}.attn.bo`, [c.dim], 0);
    constant(`${h}.ln2.g`, [c.dim], 1);
    if (c.bias) constant(`${h}.ln2.b`, [c.dim], 0);
    normal(`${h}.mlp.wfc`, [c.dim, 4 * c.dim]);
    if (c.bias) constant(`${h}.mlp.bfc`, [4 * c.dim], 0);
    normal(`${h}.mlp.wproj`, [4 * c.dim, c.dim], residualStd);
    if (c.bias) constant(`${h}.mlp.bproj`, [c.dim], 0);
  }
  constant('lnf.g', [c.dim], 1);
  if (c.bias) constant('lnf.b', [c.dim], 0);
  return params;
}
