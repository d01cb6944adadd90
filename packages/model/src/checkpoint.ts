/**
 * One self-contained checkpoint file: model config, tokenizer (with its compact vocabulary),
 * weights, optimizer moments, step, data-sampler state, and whatever the caller adds.
 *
 * Layout: the 8 bytes "MGLMCKPT", a uint32 (little endian) header length, the JSON header,
 * zero padding to a multiple of 4, then every tensor as raw float32 in header order.
 * Files are written to a temporary name and renamed, so a crash mid-write never leaves a
 * torn checkpoint where the last good one was.
 */
import * as tf from '@tensorflow/tfjs-core';
import fs from 'node:fs/promises';
import path from 'node:path';
import { UserError, type SamplerState, type TokenizerSpec } from '@miniglm/data';
import { resolveModelConfig, type ModelConfig } from './config.ts';
import { createModel, type LanguageModel } from './model.ts';
import { AdamW, type AdamWOptions } from './adamw.ts';

const MAGIC = 'MGLMCKPT';
export const CHECKPOINT_VERSION = 1;

export interface TensorEntry {
  name: string;
  shape: number[];
  /** Offset in float32 elements from the start of the data section. */
  offset: number;
}

export interface CheckpointHeader {
  format: 'miniglm-checkpoint';
  version: number;
  model: ModelConfig;
  tokenizer: TokenizerSpec;
  /** Optimizer steps taken in the stage that wrote this checkpoint. */
  step: number;
  optimizer?: { options: AdamWOptions; step: number };
  sampler?: SamplerState;
  /** Free-form context: stage name and kind, hyper-parameters, last losses, backend, parent. */
  meta: Record<string, unknown>;
  createdAt: string;
  tensors: TensorEntry[];
}

export interface Checkpoint {
  header: CheckpointHeader;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

export class CheckpointError extends UserError {}

export interface SaveInput {
  model: LanguageModel;
  tokenizer: TokenizerSpec;
  step: number;
  optimizer?: AdamW;
  sampler?: SamplerState;
  meta?: Record<string, unknown>;
}

export async function saveCheckpoint(file: string, input: SaveInput): Promise<void> {
  const named: [string, tf.Tensor][] = [];
  for (const [k, v] of input.model.params) named.push([`param/${k}`, v]);
  if (input.optimizer) {
    for (const [k, v] of input.optimizer.m) named.push([`adam.m/${k}`, v]);
    for (const [k, v] of input.optimizer.v) named.push([`adam.v/${k}`, v]);
  }
  const entries: TensorEntry[] = [];
  let offset = 0;
  for (const [name, t] of named) {
    entries.push({ name, shape: t.shape, offset });
    offset += t.size;
  }
  const header: CheckpointHeader = {
    format: 'miniglm-checkpoint',
    version: CHECKPOINT_VERSION,
    model: input.model.config,
    tokenizer: input.tokenizer,
    step: input.step,
    optimizer: input.optimizer ? { options: input.optimizer.options, step: input.optimizer.step } : undefined,
    sampler: input.sampler,
    meta: input.meta ?? {},
    createdAt: new Date().toISOString(),
    tensors: entries,
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (4 - ((MAGIC.length + 4 + json.length) % 4)) % 4;
  const prefix = Buffer.alloc(MAGIC.length + 4);
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(json.length, MAGIC.length);
  const data = new Float32Array(offset);
  for (const [i, [, t]] of named.entries()) data.set(t.dataSync() as Float32Array, entries[i]!.offset);

  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const handle = await fs.open(tmp, 'w');
    try {
      await handle.writev([
        prefix,
        json,
        Buffer.alloc(pad),
        Buffer.from(data.buffer, data.byteOffset, data.byteLength),
      ]);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (error) {
    await fs.rm(tmp, { force: true }); // the last good checkpoint at `file` is untouched
    throw error;
  }
}

export async function readCheckpoint(file: string): Promise<Checkpoint> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CheckpointError(
      code === 'ENOENT' ? `checkpoint not found: ${file}` : `cannot read checkpoint ${file}: ${code}`,
    );
  }
  if (bytes.length < MAGIC.length + 4 || bytes.toString('latin1', 0, MAGIC.length) !== MAGIC)
    throw new CheckpointError(`${file} is not a MiniGLM checkpoint (bad magic bytes)`);
  const headerLength = bytes.readUInt32LE(MAGIC.length);
  const headerEnd = MAGIC.length + 4 + headerLength;
  if (headerEnd > bytes.length) throw new CheckpointError(`${file} is truncated (header runs past the end)`);
  let header: CheckpointHeader;
  try {
    header = JSON.parse(bytes.toString('utf8', MAGIC.length + 4, headerEnd)) as CheckpointHeader;
  } catch {
    throw new CheckpointError(`${file} has a corrupt header`);
  }
  if (!header || typeof header !== 'object' || !Array.isArray(header.tensors))
    throw new CheckpointError(`${file} has a corrupt header (no tensor list)`);
  const badEntry = header.tensors.find(
    (e) =>
      !e ||
      typeof e.name !== 'string' ||
      !Number.isInteger(e.offset) ||
      !Array.isArray(e.shape) ||
      !e.shape.every((d) => Number.isInteger(d) && d >= 0),
  );
  if (badEntry !== undefined)
    throw new CheckpointError(`${file} has a corrupt header (bad tensor entry ${JSON.stringify(badEntry)})`);
  if (!header.model || typeof header.model !== 'object' || !header.tokenizer || typeof header.tokenizer !== 'object')
    throw new CheckpointError(`${file} has a corrupt header (no model config or tokenizer)`);
  if (header.format !== 'miniglm-checkpoint' || header.version !== CHECKPOINT_VERSION)
    throw new CheckpointError(`${file}: unsupported checkpoint format ${header.format} v${header.version}`);
  const dataStart = headerEnd + ((4 - (headerEnd % 4)) % 4);
  if (dataStart > bytes.length || (bytes.length - dataStart) % 4 !== 0)
    throw new CheckpointError(`${file} is truncated (its tensor data ends mid-value)`);
  // Copy into an aligned buffer: Float32Array views need 4-byte alignment.
  const floats = new Float32Array(bytes.buffer.slice(bytes.byteOffset + dataStart, bytes.byteOffset + bytes.length));
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const e of header.tensors) {
    const size = e.shape.reduce((n, d) => n * d, 1);
    if (e.offset + size > floats.length)
      throw new CheckpointError(`${file} is truncated (tensor ${e.name} is incomplete)`);
    tensors.set(e.name, { shape: e.shape, data: floats.subarray(e.offset, e.offset + size) });
  }
  return { header, tensors };
}

/** Builds the checkpoint's model and loads its weights. */
export function restoreModel(ckpt: Checkpoint): LanguageModel {
  let model: LanguageModel;
  try {
    model = createModel(resolveModelConfig(ckpt.header.model), 0);
  } catch (error) {
    throw new CheckpointError(`checkpoint has an unusable model config: ${(error as Error).message}`);
  }
  try {
    for (const [name, param] of model.params) {
      const t = ckpt.tensors.get(`param/${name}`);
      if (!t) throw new CheckpointError(`checkpoint lacks parameter ${name}`);
      if (t.shape.join() !== param.shape.join())
        throw new CheckpointError(
          `parameter ${name} has shape [${t.shape}] in the checkpoint but [${param.shape}] in the model`,
        );
      tf.tidy(() => param.assign(tf.tensor(t.data, t.shape)));
    }
  } catch (error) {
    model.dispose(); // do not leave a half-loaded model's tensors behind
    throw error;
  }
  return model;
}

/** The optimizer as it was when the checkpoint was written, or undefined if it was not saved. */
export function restoreOptimizer(ckpt: Checkpoint, decays: (name: string) => boolean): AdamW | undefined {
  const saved = ckpt.header.optimizer;
  if (!saved) return undefined;
  const opt = new AdamW(saved.options, decays);
  const m = new Map<string, tf.Tensor>();
  const v = new Map<string, tf.Tensor>();
  for (const [name, t] of ckpt.tensors) {
    if (name.startsWith('adam.m/')) m.set(name.slice(7), tf.tensor(t.data, t.shape));
    if (name.startsWith('adam.v/')) v.set(name.slice(7), tf.tensor(t.data, t.shape));
  }
  opt.load({ step: saved.step, m, v });
  return opt;
}
