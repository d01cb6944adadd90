/**
 * The report's baseline: a token embedding, stacked LSTM layers with dropout between them,
 * and a linear layer to the vocabulary. Same data, loss and sampling interfaces as the GPT.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LSTMConfig } from './config.ts';
import { dropout, linear } from './ops.ts';
import type { DecodeState, ForwardOptions, LanguageModel } from './model.ts';

interface LSTMState extends DecodeState {
  kind: 'lstm';
  h: tf.Tensor2D[];
  c: tf.Tensor2D[];
}

export class LSTM implements LanguageModel {
  readonly params: Map<string, tf.Variable>;
  /** A recurrent state carries any length of context. */
  readonly contextLimit = Infinity;

  constructor(
    readonly config: LSTMConfig,
    seed: number,
  ) {
    this.params = initLSTMParams(config, seed);
  }

  private p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`LSTM parameter ${name} is missing`);
    return v;
  }

  logits(idx: tf.Tensor2D, opts: ForwardOptions): tf.Tensor2D {
    return tf.tidy(() => {
      const state = this.zeroState(idx.shape[0]);
      const out = this.run(idx, state, opts);
      return this.head(tf.reshape(out, [-1, this.config.dim]) as tf.Tensor2D);
    });
  }

  /** Runs the layers over idx [B, T] from `state` (updated in place); returns (B, T, D). */
  private run(idx: tf.Tensor2D, state: { h: tf.Tensor2D[]; c: tf.Tensor2D[] }, opts: ForwardOptions): tf.Tensor3D {
    const { dim, layers } = this.config;
    const [b, t] = idx.shape;
    let x = tf.reshape(tf.gather(this.p('wte'), tf.reshape(idx, [-1])), [b, t, dim]) as tf.Tensor3D;
    for (let l = 0; l < layers; l++) {
      x = dropout(x, this.config.dropout, opts.training, (opts.seed ?? 0) * 7919 + l) as tf.Tensor3D;
      // The input half of every gate for all steps at once: one big matmul instead of T small ones.
      const xw = tf.unstack(tf.transpose(linear(x, this.p(`l.${l}.wx`), this.p(`l.${l}.b`)), [1, 0, 2])); // T × (B, 4D)
      let h = state.h[l]!;
      let c = state.c[l]!;
      const outs: tf.Tensor2D[] = [];
      for (const xt of xw) {
        const gates = tf.add(xt, tf.matMul(h, this.p(`l.${l}.wh`)));
        const [i, f, g, o] = tf.split(gates, 4, 1);
        c = tf.add(tf.mul(tf.sigmoid(f!), c), tf.mul(tf.sigmoid(i!), tf.tanh(g!)));
        h = tf.mul(tf.sigmoid(o!), tf.tanh(c));
        outs.push(h);
      }
      state.h[l] = h;
      state.c[l] = c;
      x = tf.stack(outs, 1) as tf.Tensor3D; // (B, T, D)
    }
    return dropout(x, this.config.dropout, opts.training, (opts.seed ?? 0) * 7919 + layers) as tf.Tensor3D;
  }

  private head(x: tf.Tensor2D): tf.Tensor2D {
    return tf.add(tf.matMul(x, this.p('wout')), this.p('bout'));
  }

  private zeroState(batch: number): { h: tf.Tensor2D[]; c: tf.Tensor2D[] } {
    const zeros = () =>
      Array.from({ length: this.config.layers }, () => tf.zeros([batch, this.config.dim]) as tf.Tensor2D);
    return { h: zeros(), c: zeros() };
  }

  startDecoding(batch: number): LSTMState {
    const { h, c } = this.zeroState(batch);
    return { kind: 'lstm', h: h.map((t) => tf.keep(t)), c: c.map((t) => tf.keep(t)) };
  }

  decode(idx: tf.Tensor2D, decodeState: DecodeState): tf.Tensor2D {
    const state = decodeState as LSTMState;
    const old = [...state.h, ...state.c];
    const logits = tf.tidy(() => {
      const out = this.run(idx, state, { training: false });
      state.h = state.h.map((t) => tf.keep(t));
      state.c = state.c.map((t) => tf.keep(t));
      const t = idx.shape[1];
      return this.head(tf.reshape(tf.slice(out, [0, t - 1, 0], [-1, 1, -1]), [-1, this.config.dim]) as tf.Tensor2D);
    });
    tf.dispose(old);
    return logits;
  }

  restartDecoding(decodeState: DecodeState): void {
    const state = decodeState as LSTMState;
    tf.dispose([...state.h, ...state.c]);
    const { h, c } = this.zeroState(state.h[0]!.shape[0]);
    state.h = h.map((t) => tf.keep(t));
    state.c = c.map((t) => tf.keep(t));
  }

  disposeDecoding(state: DecodeState): void {
    const s = state as LSTMState;
    tf.dispose([...s.h, ...s.c]);
  }

  dispose(): void {
    tf.dispose([...this.params.values()]);
  }
}

/** Uniform(±1/sqrt(D)) as in PyTorch's nn.LSTM; forget-gate bias 1 so memory starts open. */
function initLSTMParams(c: LSTMConfig, seed: number): Map<string, tf.Variable> {
  const params = new Map<string, tf.Variable>();
  let k = 0;
  const bound = 1 / Math.sqrt(c.dim);
  const add = (name: string, make: () => tf.Tensor) =>
    params.set(
      name,
      tf.tidy(() => tf.variable(make())),
    );
  const uniform = (shape: number[]) => () => tf.randomUniform(shape, -bound, bound, 'float32', seed * 1009 + k++);
  add('wte', () => tf.randomNormal([c.vocabSize, c.dim], 0, 0.02, 'float32', seed * 1009 + k++));
  for (let l = 0; l < c.layers; l++) {
    add(`l.${l}.wx`, uniform([c.dim, 4 * c.dim]));
    add(`l.${l}.wh`, uniform([c.dim, 4 * c.dim]));
    // Gate order i, f, g, o: the forget block [D, 2D) starts at 1.
    add(`l.${l}.b`, () => tf.concat([tf.zeros([c.dim]), tf.ones([c.dim]), tf.zeros([2 * c.dim])]));
  }
  add('wout', uniform([c.dim, c.vocabSize]));
  add('bout', () => tf.zeros([c.vocabSize]));
  return params;
}
