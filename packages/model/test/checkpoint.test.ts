/**
 * Checkpoints (src/checkpoint.ts): a save → read → restore round trip gives the same model
 * (identical logits) and context; damaged or missing files give a CheckpointError that says
 * what is wrong. Also: GPT inputs longer than the block size give a ModelInputError.
 */
import * as tf from '@tensorflow/tfjs-core';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AdamW,
  CheckpointError,
  createModel,
  decays,
  ModelInputError,
  readCheckpoint,
  restoreModel,
  restoreOptimizer,
  saveCheckpoint,
  type LanguageModel,
  type ModelConfig,
} from '../src/index.ts';
import { gptConfig, lstmConfig, TOKENIZER, useTempDir, useWasm } from './helpers.ts';

useWasm();
const tmp = useTempDir('ckpt');

const input = [
  [3, 1, 4, 1, 5, 9, 2, 6],
  [2, 7, 1, 8, 2, 8, 1, 8],
];

function logitsOf(model: LanguageModel): Float32Array {
  return tf.tidy(
    () => model.logits(tf.tensor2d(input, [2, 8], 'int32'), { training: false }).dataSync() as Float32Array,
  );
}

/** An optimizer with moments, as after one training step. */
function steppedOptimizer(model: LanguageModel): AdamW {
  const opt = new AdamW({ beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 }, (n) => decays(model.params.get(n)!));
  const grads = new Map([...model.params].map(([k, v]) => [k, tf.onesLike(v)]));
  opt.apply(model.params, grads, 1e-3);
  tf.dispose([...grads.values()]);
  return opt;
}

describe('checkpoint round trip', () => {
  it.each([
    ['gpt with bias', gptConfig({ bias: true, dropout: 0.1 })],
    ['gpt without bias', gptConfig({ layers: 1 })],
    ['lstm', lstmConfig({ dropout: 0.1 })],
  ] as [string, ModelConfig][])(
    'save → read → restoreModel gives identical logits and header (%s)',
    async (_, config) => {
      const dir = path.join(tmp(), config.kind + (config.kind === 'gpt' && config.bias ? '-bias' : ''));
      const file = path.join(dir, 'nested', 'model.ckpt');
      const model = createModel(config, 42);
      const optimizer = steppedOptimizer(model); // moves the weights away from the init
      const sampler = { kind: 'pretrain' as const, rng: [1, 2, 3, 4294967295], drawn: 17 };
      await saveCheckpoint(file, {
        model,
        tokenizer: { name: 'char', vocab: [5, 6, 7] },
        step: 123,
        optimizer,
        sampler,
        meta: { stage: 's1', lr: 0.5 },
      });
      // Written atomically: no temporary file is left beside it.
      expect(fs.readdirSync(path.dirname(file))).toEqual(['model.ckpt']);

      const ckpt = await readCheckpoint(file);
      expect(ckpt.header).toMatchObject({
        format: 'miniglm-checkpoint',
        model: config,
        tokenizer: { name: 'char', vocab: [5, 6, 7] },
        step: 123,
        sampler,
        meta: { stage: 's1', lr: 0.5 },
        optimizer: { step: 1, options: optimizer.options },
      });
      const restored = restoreModel(ckpt);
      expect(restored.config).toEqual(config);
      expect([...restored.params.keys()]).toEqual([...model.params.keys()]);
      expect(Array.from(logitsOf(restored))).toEqual(Array.from(logitsOf(model)));
      // A model from another seed really differs (the comparison above can fail).
      const other = createModel(config, 43);
      expect(Array.from(logitsOf(other))).not.toEqual(Array.from(logitsOf(model)));

      const opt2 = restoreOptimizer(ckpt, (n) => decays(restored.params.get(n)!))!;
      expect(opt2.step).toBe(1);
      for (const [name, m] of optimizer.m)
        expect(Array.from(opt2.m.get(name)!.dataSync())).toEqual(Array.from(m.dataSync()));
      for (const [name, v] of optimizer.v)
        expect(Array.from(opt2.v.get(name)!.dataSync())).toEqual(Array.from(v.dataSync()));
      for (const m of [model, restored, other]) m.dispose();
      optimizer.dispose();
      opt2.dispose();
    },
  );

  it('a checkpoint without optimizer restores no optimizer', async () => {
    const file = path.join(tmp(), 'no-opt.ckpt');
    const model = createModel(gptConfig({ layers: 1 }), 1);
    await saveCheckpoint(file, { model, tokenizer: TOKENIZER, step: 0 });
    const ckpt = await readCheckpoint(file);
    expect(restoreOptimizer(ckpt, () => true)).toBeUndefined();
    expect([...ckpt.tensors.keys()].every((k) => k.startsWith('param/'))).toBe(true);
    model.dispose();
  });

  it('restoreModel refuses a parameter of the wrong shape, naming it', async () => {
    const file = path.join(tmp(), 'shape.ckpt');
    const model = createModel(gptConfig({ layers: 1 }), 1);
    await saveCheckpoint(file, { model, tokenizer: TOKENIZER, step: 0 });
    model.dispose();
    const ckpt = await readCheckpoint(file);
    const entry = ckpt.tensors.get('param/wpe')!;
    ckpt.tensors.set('param/wpe', { shape: [entry.shape[0]! / 2, entry.shape[1]! * 2], data: entry.data });
    expect(() => restoreModel(ckpt)).toThrow(CheckpointError);
    expect(() => restoreModel(ckpt)).toThrow(/wpe.*shape/);
    ckpt.tensors.delete('param/wpe');
    expect(() => restoreModel(ckpt)).toThrow(/lacks parameter wpe/);
  });
});

describe('damaged and missing checkpoint files', () => {
  let good: Buffer;
  let headerEnd: number;
  beforeAll(async () => {
    const file = path.join(tmp(), 'good.ckpt');
    const model = createModel(gptConfig({ layers: 1, dim: 16, heads: 2 }), 1);
    await saveCheckpoint(file, { model, tokenizer: TOKENIZER, step: 5 });
    model.dispose();
    good = fs.readFileSync(file);
    headerEnd = 12 + good.readUInt32LE(8);
  });

  async function readBytes(name: string, bytes: Buffer): Promise<unknown> {
    const file = path.join(tmp(), name);
    fs.writeFileSync(file, bytes);
    return readCheckpoint(file).then(
      () => undefined,
      (error: unknown) => error,
    );
  }

  async function expectCheckpointError(name: string, bytes: Buffer, message: RegExp): Promise<void> {
    const error = await readBytes(name, bytes);
    expect(error, name).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toContain(name);
  }

  it('a missing file says "checkpoint not found" and names the path', async () => {
    const file = path.join(tmp(), 'does-not-exist.ckpt');
    await expect(readCheckpoint(file)).rejects.toThrow(CheckpointError);
    await expect(readCheckpoint(file)).rejects.toThrow(`checkpoint not found: ${file}`);
  });

  it('garbage, an empty file and a JSON file are not checkpoints', async () => {
    const garbage = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7919 + 13) % 256));
    await expectCheckpointError('garbage.ckpt', garbage, /not a MiniGLM checkpoint/);
    await expectCheckpointError('empty.ckpt', Buffer.alloc(0), /not a MiniGLM checkpoint/);
    await expectCheckpointError(
      'json.ckpt',
      Buffer.from('{"format":"miniglm-checkpoint"}'),
      /not a MiniGLM checkpoint/,
    );
  });

  it('a corrupt header or an unknown format version is reported', async () => {
    const corrupt = Buffer.from(good);
    corrupt.write('}}}}', 12, 'latin1');
    await expectCheckpointError('corrupt-header.ckpt', corrupt, /corrupt header/);
    const header = JSON.parse(good.toString('utf8', 12, headerEnd)) as { version: number };
    const json = Buffer.from(JSON.stringify({ ...header, version: 99 }));
    const prefix = Buffer.alloc(12);
    prefix.write('MGLMCKPT', 0, 'latin1');
    prefix.writeUInt32LE(json.length, 8);
    await expectCheckpointError(
      'future.ckpt',
      Buffer.concat([prefix, json, good.subarray(headerEnd)]),
      /unsupported checkpoint format.*v99/,
    );
  });

  it('a file truncated inside the header is reported as truncated', async () => {
    await expectCheckpointError('trunc-header.ckpt', good.subarray(0, headerEnd - 10), /truncated/);
    await expectCheckpointError('trunc-length.ckpt', good.subarray(0, 10), /not a MiniGLM checkpoint|truncated/);
  });

  it('a file truncated inside the tensor data (at a 4-byte boundary) is reported as truncated', async () => {
    await expectCheckpointError(
      'trunc-data-aligned.ckpt',
      good.subarray(0, good.length - 64),
      /truncated \(tensor .* is incomplete\)/,
    );
    await expectCheckpointError('trunc-data-all.ckpt', good.subarray(0, headerEnd), /truncated/);
  });

  it('a file truncated inside the tensor data at any byte is reported as truncated', async () => {
    // A copy cut mid-float (e.g. a partial download or a full disk) must not surface as a RangeError.
    for (const cut of [1, 2, 3, 5]) {
      await expectCheckpointError(`trunc-data-${cut}.ckpt`, good.subarray(0, good.length - cut), /truncated/);
    }
  });
});

describe('model input limits', () => {
  let gpt: LanguageModel;
  beforeAll(() => {
    gpt = createModel(gptConfig({ blockSize: 16, layers: 1 }), 1);
  });
  afterAll(() => gpt.dispose());

  it('GPT.logits on a sequence longer than blockSize throws ModelInputError naming both lengths', () => {
    const idx = tf.zeros([2, 17], 'int32') as tf.Tensor2D;
    const before = tf.memory().numTensors;
    expect(() => gpt.logits(idx, { training: false })).toThrow(ModelInputError);
    expect(() => gpt.logits(idx, { training: true, seed: 1 })).toThrow(/17.*16/);
    expect(tf.memory().numTensors).toBe(before);
    idx.dispose();
    // Exactly blockSize is fine.
    const ok = tf.tidy(() => gpt.logits(tf.zeros([1, 16], 'int32') as tf.Tensor2D, { training: false }).shape);
    expect(ok).toEqual([16, 32]);
  });

  it('GPT.decode past the block size throws ModelInputError naming the numbers', () => {
    const state = gpt.startDecoding(1);
    try {
      tf.tidy(() => gpt.decode(tf.zeros([1, 12], 'int32') as tf.Tensor2D, state));
      expect(() => tf.tidy(() => gpt.decode(tf.zeros([1, 5], 'int32') as tf.Tensor2D, state))).toThrow(ModelInputError);
      expect(() => tf.tidy(() => gpt.decode(tf.zeros([1, 5], 'int32') as tf.Tensor2D, state))).toThrow(/12.*5.*16/);
    } finally {
      gpt.disposeDecoding(state);
    }
  });

  it('an LSTM has no block-size limit', () => {
    const lstm = createModel(lstmConfig({ blockSize: 4, layers: 1, dim: 8 }), 1);
    const shape = tf.tidy(() => lstm.logits(tf.zeros([1, 9], 'int32') as tf.Tensor2D, { training: false }).shape);
    expect(shape).toEqual([9, 32]);
    expect(lstm.contextLimit).toBe(Infinity);
    lstm.dispose();
  });
});
