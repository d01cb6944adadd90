/**
 * AdamW (Loshchilov & Hutter) with decoupled weight decay, as torch.optim.AdamW computes it:
 *   p ← p·(1 − lr·wd)              (only for parameters that decay)
 *   m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²
 *   p ← p − lr · m̂ / (√v̂ + ε)     with m̂, v̂ bias-corrected by the step count
 * The moments are plain tensors keyed by parameter name, so they go into checkpoints.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeBackend, type NativeBackend } from './backend/native.ts';

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface AdamWState {
  step: number;
  m: Map<string, tf.Tensor>;
  v: Map<string, tf.Tensor>;
}

export class AdamW {
  step = 0;
  readonly m = new Map<string, tf.Tensor>();
  readonly v = new Map<string, tf.Tensor>();

  constructor(
    readonly options: AdamWOptions,
    /** Which parameters get weight decay. */
    private readonly decays: (name: string) => boolean,
  ) {}

  /** One update of every parameter that has a gradient. Frees nothing the caller owns. */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.options;
    this.step += 1;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    const native = nativeBackend();
    if (native) return this.applyNative(native, params, grads, lr, c1, c2);
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (!g) continue;
      tf.tidy(() => {
        const m0 = this.m.get(name) ?? tf.zerosLike(p);
        const v0 = this.v.get(name) ?? tf.zerosLike(p);
        const m = tf.add(tf.mul(m0, beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(v0, beta2), tf.mul(tf.square(g), 1 - beta2));
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), eps));
        const decayed = weightDecay > 0 && this.decays(name) ? tf.mul(p, 1 - lr * weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
        this.m.get(name)?.dispose();
        this.v.get(name)?.dispose();
        this.m.set(name, tf.keep(m));
        this.v.set(name, tf.keep(v));
      });
    }
  }

  /**
   * The same update as one native call over every parameter, in place on the weights' and
   * moments' own storage. A weight whose storage another tensor shares gets its own first.
   */
  private applyNative(
    native: NativeBackend,
    params: Map<string, tf.Variable>,
    grads: Map<string, tf.Tensor>,
    lr: number,
    c1: number,
    c2: number,
  ): void {
    const { beta1, beta2, eps, weightDecay } = this.options;
    const [ps, gs, ms, vs, decay] = [[], [], [], [], []] as [
      Float32Array[],
      Float32Array[],
      Float32Array[],
      Float32Array[],
      number[],
    ];
    const own = (t: tf.Tensor) => native.refCount(t.dataId) === 1;
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (!g) continue;
      if (!own(p)) tf.tidy(() => p.assign(tf.add(p, 0)));
      for (const moments of [this.m, this.v]) {
        const t = moments.get(name);
        if (!t || !own(t)) {
          // A fresh array of our own (a moment read from a checkpoint may share its storage).
          moments.set(name, t ? tf.add(t, 0) : tf.zerosLike(p));
          t?.dispose();
        }
      }
      ps.push(native.f32(p));
      gs.push(native.f32(g));
      ms.push(native.f32(this.m.get(name)!));
      vs.push(native.f32(this.v.get(name)!));
      decay.push(weightDecay > 0 && this.decays(name) ? 1 : 0);
    }
    native.kernels.adamw(ps, gs, ms, vs, Uint8Array.from(decay), lr, beta1, beta2, eps, weightDecay, c1, c2, 1);
  }

  /** Replaces the moments and step (from a checkpoint); takes ownership of the tensors. */
  load(state: AdamWState): void {
    this.dispose();
    this.step = state.step;
    for (const [k, t] of state.m) this.m.set(k, t);
    for (const [k, t] of state.v) this.v.set(k, t);
  }

  dispose(): void {
    tf.dispose([...this.m.values(), ...this.v.values()]);
    this.m.clear();
    this.v.clear();
  }
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm` (0 = no clipping), as
 * torch.nn.utils.clip_grad_norm_ does. Returns the norm before clipping and the new grads;
 * the old grads are disposed when replaced.
 */
export function clipByGlobalNorm(
  grads: Map<string, tf.Tensor>,
  maxNorm: number,
): { norm: number; grads: Map<string, tf.Tensor> } {
  const native = nativeBackend();
  const norm = native
    ? Math.fround(Math.sqrt(native.kernels.sumSquares([...grads.values()].map((g) => native.f32(g)))))
    : tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))).dataSync()[0]!);
  if (!(maxNorm > 0) || !(norm > maxNorm)) return { norm, grads };
  const scale = maxNorm / (norm + 1e-6);
  const clipped = new Map<string, tf.Tensor>();
  for (const [k, g] of grads) {
    clipped.set(k, tf.mul(g, scale));
    g.dispose();
  }
  return { norm, grads: clipped };
}
