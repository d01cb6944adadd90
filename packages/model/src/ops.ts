/**
 * The few numeric building blocks the models share. Each one is written for the wasm
 * backend's fast paths (see backend/wasm-kernels.ts for the measurements); on the native
 * backend each is one fused kernel with its own backward kernel (backend/native.ts), wired
 * up with tf.customGrad so that the model reads the same on every backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NATIVE } from './backend/native.ts';

/** True where the fused native kernels exist (the native backend is the active one). */
export function fused(): boolean {
  return tf.getBackend() === NATIVE;
}

type Grads = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
type Forward = (xs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: Grads };

/** tf.customGrad for a function of any number of tensors (its typing wants exactly one). */
function withGrad(f: Forward): (...xs: tf.Tensor[]) => tf.Tensor {
  const g = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    return f(args as tf.Tensor[], save);
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (...xs) => (g as unknown as (...xs: tf.Tensor[]) => tf.Tensor)(...xs);
}

function run(kernel: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown> = {}): tf.Tensor[] {
  const out = tf.engine().runKernel(kernel, inputs as tf.NamedTensorMap, attrs as tf.NamedAttrMap);
  return Array.isArray(out) ? out : [out as tf.Tensor];
}

/** LayerNorm over the last axis; `bias` may be absent (the course's bias-free setup). */
export function layerNorm(x: tf.Tensor, gain: tf.Tensor, bias?: tf.Tensor, eps = 1e-5): tf.Tensor {
  if (fused()) {
    const f = withGrad(([xx, g, b], save) => {
      const [y, mean, rstd] = run('MiniglmLayerNorm', b ? { x: xx!, gamma: g!, beta: b } : { x: xx!, gamma: g! }, {
        eps,
      });
      save([xx!, g!, mean!, rstd!]);
      return {
        value: y!,
        gradFunc: (dy, [sx, sg, sm, sr]) =>
          run('MiniglmLayerNormGrad', { dy, x: sx!, gamma: sg!, mean: sm!, rstd: sr! }, { hasBeta: !!b }),
      };
    });
    return bias ? f(x, gain, bias) : f(x, gain);
  }
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    const scaled = tf.mul(normed, gain);
    return bias ? tf.add(scaled, bias) : scaled;
  });
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * GELU, GPT-2's tanh form. tanh(z) = 2·sigmoid(2z) − 1 turns it into x·sigmoid(2z): on wasm
 * sigmoid runs in 1.1 ms per million elements where tanh and erf take 15-19 ms.
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (fused()) {
    return withGrad(([xx], save) => {
      save([xx!]);
      return {
        value: run('MiniglmGelu', { x: xx! })[0]!,
        gradFunc: (dy, [sx]) => run('MiniglmGeluGrad', { x: sx!, dy })[0]!,
      };
    })(x);
  }
  return tf.tidy(() => {
    // x·x·x, not pow: pow's gradient also differentiates the exponent (a log per element).
    const cube = tf.mul(tf.mul(x, x), x);
    const inner = tf.mul(tf.add(x, tf.mul(cube, 0.044715)), 2 * SQRT_2_OVER_PI);
    return tf.mul(x, tf.sigmoid(inner));
  });
}

/** x @ w (+ b) for x of any rank: the leading axes are folded into one 2-D matmul. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [inDim, outDim] = w.shape as [number, number];
    const lead = x.shape.slice(0, -1);
    const y = tf.matMul(tf.reshape(x, [-1, inDim]), w);
    return tf.reshape(b ? tf.add(y, b) : y, [...lead, outDim]);
  });
}

/**
 * Mean cross-entropy of `logits` [N, V] against `targets` [N], each row weighted by
 * `weights` [N] (the SFT mask; all ones for pretraining): sum(CE·w) / sum(w).
 *
 * Written with its own gradient because tf.losses.softmaxCrossEntropy on a one-hot
 * [2048, 4096] took ~300 ms on wasm. The loss of a row is lse − logit[target]; lse comes
 * from the softmax we need for the gradient anyway: lse = max − log(p[argmax]), and
 * p[argmax] ≥ 1/V never underflows. The gradient is (softmax − onehot) · w / sum(w).
 */
export function maskedCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D): tf.Scalar {
  if (fused()) {
    // The gradient comes out of the same pass over the logits; only worth writing when a
    // gradient will be asked for (not in evaluation).
    const withGradient = tf.engine().isTapeOn();
    return withGrad(([z], save) => {
      const [value, grad] = run('MiniglmCrossEntropy', { logits: z!, targets, weights }, { withGrad: withGradient });
      save(grad ? [grad] : []);
      return {
        value: value!,
        gradFunc: (dy, [g]) => {
          if (!g) throw new Error('maskedCrossEntropy: no gradient was computed in the forward pass');
          // The loss is the last op (dy = 1) in training: no pass over [N, vocab] to scale by it.
          return dy.dataSync()[0] === 1 ? tf.clone(g) : tf.mul(g, dy);
        },
      };
    })(logits) as tf.Scalar;
  }
  const [, vocab] = logits.shape;
  const lossFn = tf.customGrad(((z: tf.Tensor, save: tf.GradSaveFunc) => {
    const zz = z as tf.Tensor2D;
    const probs = tf.softmax(zz);
    const onehot = tf.oneHot(targets, vocab, 1, 0, 'float32');
    const lse = tf.sub(tf.max(zz, -1), tf.log(tf.max(probs, -1)));
    const picked = tf.sum(tf.mul(zz, onehot), -1);
    const total = tf.sum(weights);
    const value = tf.div(tf.sum(tf.mul(tf.sub(lse, picked), weights)), tf.maximum(total, 1e-9)) as tf.Scalar;
    // Saved, not closed over: the caller's tidy frees `weights` before the backward pass runs.
    save([probs, onehot, total, weights]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [p, oh, sum, w] = saved as [tf.Tensor, tf.Tensor, tf.Scalar, tf.Tensor];
        const rowScale = tf.mul(tf.div(w, tf.maximum(sum, 1e-9)), dy);
        return tf.mul(tf.sub(p, oh), tf.expandDims(rowScale, 1));
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return lossFn(logits) as tf.Scalar;
}

/**
 * Causal multi-head self-attention of q [B, T, C] over k, v [B, Tk, C] (query i sits at
 * position Tk − T + i): softmax(q·kᵀ/√hs + mask)·v per head, heads side by side in C.
 * Native only (one fused kernel, no transposes); the model composes it from tfjs ops
 * elsewhere, with dropout on the attention weights where that is asked for.
 */
export function causalAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number): tf.Tensor3D {
  return withGrad(([qq, kk, vv], save) => {
    const [y, p] = run('MiniglmAttention', { q: qq!, k: kk!, v: vv! }, { heads });
    save([qq!, kk!, vv!, p!]);
    return {
      value: y!,
      gradFunc: (dy, [sq, sk, sv, sp]) =>
        run('MiniglmAttentionGrad', { q: sq!, k: sk!, v: sv!, p: sp!, dy }, { heads }),
    };
  })(q, k, v) as tf.Tensor3D;
}

/**
 * The same attention with q, k and v as the column blocks of one projection qkv [B, T, 3C]
 * (T = Tk): training projects x once through [wq | wk | wv] instead of three narrow matrix
 * products. The gradient is one [B, T, 3C] array, split back by the projection's gradient.
 */
export function causalAttentionQkv(qkv: tf.Tensor3D, heads: number): tf.Tensor3D {
  return withGrad(([all], save) => {
    const [y, p] = run('MiniglmAttentionQkv', { qkv: all! }, { heads });
    save([all!, p!]);
    return {
      value: y!,
      gradFunc: (dy, [sqkv, sp]) => run('MiniglmAttentionQkvGrad', { qkv: sqkv!, p: sp!, dy }, { heads }),
    };
  })(qkv) as tf.Tensor3D;
}

/** Token + position embedding: wte[idx] + wpe[offset …] → [B, T, C]. */
export function embed(idx: tf.Tensor2D, wte: tf.Tensor2D, wpe: tf.Tensor2D, offset: number): tf.Tensor3D {
  const [b, t] = idx.shape;
  const dim = wte.shape[1];
  if (fused()) {
    return withGrad(([e, p], save) => {
      save([idx]);
      return {
        value: run('MiniglmEmbedding', { idx, wte: e!, wpe: p! }, { offset })[0]!,
        gradFunc: (dy, [si]) =>
          run('MiniglmEmbeddingGrad', { idx: si!, dy }, { offset, vocab: wte.shape[0], block: wpe.shape[0] }),
      };
    })(wte, wpe) as tf.Tensor3D;
  }
  return tf.tidy(() => {
    const tok = tf.reshape(tf.gather(wte, tf.reshape(idx, [-1])), [b, t, dim]); // (B, T, C)
    const pos = tf.slice(wpe, [offset, 0], [t, dim]); // (T, C)
    return tf.add(tok, pos) as tf.Tensor3D;
  });
}

/** An additive causal mask [T, T]: 0 on and below the diagonal, −1e9 above it. */
export function causalMask(t: number): tf.Tensor2D {
  return tf.tidy(() => {
    const lower = tf.linalg.bandPart(tf.ones([t, t]), -1, 0);
    return tf.mul(tf.sub(1, lower), -1e9) as tf.Tensor2D;
  });
}

/** Dropout that is a no-op at rate 0 or outside training; `seed` makes it reproducible. */
export function dropout(x: tf.Tensor, rate: number, training: boolean, seed: number): tf.Tensor {
  return training && rate > 0 ? tf.dropout(x, rate, undefined, seed) : x;
}
