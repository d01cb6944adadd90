/**
 * The few numeric building blocks the models share. Each one is written for the wasm
 * backend's fast paths (see backend/wasm-kernels.ts for the measurements).
 */
import * as tf from '@tensorflow/tfjs-core';

/** LayerNorm over the last axis; `bias` may be absent (the course's bias-free setup). */
export function layerNorm(x: tf.Tensor, gain: tf.Tensor, bias?: tf.Tensor, eps = 1e-5): tf.Tensor {
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
