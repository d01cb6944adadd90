/**
 * Helpers for end-to-end tests of the `miniglm` command: run the real binary in a child
 * process (no shell), in a private temp folder, on the wasm backend, and look at what it left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { StepMetrics } from '@miniglm/model';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect } from 'vitest';

export const CLI = fileURLToPath(new URL('../bin/miniglm.js', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

export interface CliProcess {
  child: ChildProcess;
  done: Promise<CliResult>;
}

/** Starts `miniglm ...args` in `cwd`. A run that hangs is killed after `timeoutMs`. */
export function startCli(
  args: string[],
  cwd: string,
  timeoutMs = 110_000,
  extraEnv: NodeJS.ProcessEnv = {},
): CliProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, MINIGLM_BACKEND: 'wasm', ...extraEnv };
  delete env.MINIGLM_DEBUG; // stack traces on would defeat the one-line error checks
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
  return { child, done };
}

export function runCli(args: string[], cwd: string, timeoutMs?: number): Promise<CliResult> {
  return startCli(args, cwd, timeoutMs).done;
}

/** Fails with the command's output when it did not exit 0. */
export function expectSuccess(r: CliResult): void {
  if (r.code !== 0)
    throw new Error(`miniglm exited ${r.code} (signal ${r.signal})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

/**
 * The failure contract: exit status 1, and stderr is exactly one short line
 * "miniglm: error: ..." that matches `pattern`: no stack trace, no source dump, not an
 * "internal error".
 */
export function expectOneLineError(r: CliResult, pattern: RegExp): string {
  const context = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  expect(r.signal, context).toBeNull();
  expect(r.code, context).toBe(1);
  expect(r.stderr.endsWith('\n'), context).toBe(true);
  const lines = r.stderr.slice(0, -1).split('\n');
  expect(lines, context).toHaveLength(1);
  const line = lines[0]!;
  expect(line).toMatch(/^miniglm: error: \S/);
  expect(line.length, line).toBeLessThan(400);
  expect(line).not.toMatch(/internal error|MINIGLM_DEBUG/);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(line).toMatch(pattern);
  return line;
}

/** A private temp folder for the tests of one file, removed afterwards. */
export function useTempDir(prefix: string): () => string {
  let dir = '';
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `miniglm-cli-${prefix}-`));
  });
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => dir;
}

export function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** sha256 of every file under `dir` (relative path -> hash), optionally skipping some names. */
export function snapshot(dir: string, skip: (rel: string) => boolean = () => false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const rel = path.relative(dir, path.join(entry.parentPath, entry.name));
    if (!skip(rel)) out[rel] = sha256(path.join(dir, rel));
  }
  return out;
}

/** One line of a stage's metrics.jsonl: the trainer's metrics and the stage name. */
export type MetricsLine = StepMetrics & { stage: string };

export function readMetrics(file: string): MetricsLine[] {
  const text = fs.readFileSync(file, 'utf8');
  expect(text === '' || text.endsWith('\n')).toBe(true);
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as MetricsLine);
}

export function countLines(file: string): number {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '').length;
  } catch {
    return 0;
  }
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * A small English corpus of simple, repetitive sentences, as .txt paragraphs separated by
 * blank lines (the .txt reader's document boundary). Deterministic.
 */
export function englishParagraphs(count: number): string {
  const who = ['the cat', 'the dog', 'a bird', 'my friend', 'the teacher'];
  const verb = ['runs to', 'looks at', 'sings for', 'walks with', 'waits for'];
  const what = ['the house', 'the river', 'the tree', 'the school', 'the garden'];
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const s = (k: number) => `${who[(i + k) % 5]} ${verb[(i * 3 + k) % 5]} ${what[(i * 7 + 2 * k) % 5]}.`;
    out.push(`${s(0)} ${s(1)} ${s(2)}`);
  }
  return `${out.join('\n\n')}\n`;
}

/** {question, answer} records as JSON lines; each fits a 32-token char row with its [SEP] and [EOT]. */
export function qaJsonl(): string {
  const who = ['cat', 'dog', 'bird', 'fox', 'owl'];
  const where = ['house', 'river', 'tree', 'school', 'park'];
  const lines: string[] = [];
  for (const [i, w] of who.entries()) {
    for (let j = 0; j < 5; j++)
      lines.push(JSON.stringify({ question: `where is ${w} ${j}?`, answer: `in the ${where[(i + j) % 5]}.` }));
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Writes a copy of a checkpoint whose tensor `name` is all NaN, patching the float32 data
 * section in place (layout in packages/model/src/checkpoint.ts: "MGLMCKPT", uint32 LE header
 * length, JSON header, zero padding to a multiple of 4, then float32 tensors at their offsets).
 */
export function writeCheckpointWithNaN(src: string, dst: string, name: string): void {
  const bytes = Buffer.from(fs.readFileSync(src));
  const headerLength = bytes.readUInt32LE(8);
  const headerEnd = 12 + headerLength;
  const header = JSON.parse(bytes.toString('utf8', 12, headerEnd)) as {
    tensors: { name: string; shape: number[]; offset: number }[];
  };
  const dataStart = headerEnd + ((4 - (headerEnd % 4)) % 4);
  const entry = header.tensors.find((t) => t.name === name);
  if (!entry) throw new Error(`${src} has no tensor ${name}`);
  const size = entry.shape.reduce((n, d) => n * d, 1);
  for (let i = 0; i < size; i++) bytes.writeFloatLE(NaN, dataStart + 4 * (entry.offset + i));
  fs.writeFileSync(dst, bytes);
}
