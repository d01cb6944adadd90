/**
 * Picks the TensorFlow.js backend: the best one that loads, or the one the user forces
 * (`backend` option or MINIGLM_BACKEND). tfjs-node backends are optional dependencies whose
 * install downloads libtensorflow; where that failed they are simply absent. `native` is our
 * own (backend/native.ts, built from source by scripts/ensure-deps.mjs); where it cannot be
 * built or loaded, wasm is used and one line on stderr says why and how to get it.
 */
import * as tf from '@tensorflow/tfjs-core';
// The union package registers every op's gradient (tfjs-core's Node bundle has none) and
// the cpu backend; it shares the one tfjs-core instance that the rest of the code imports.
import '@tensorflow/tfjs';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { UserError } from '@miniglm/data';
import os from 'node:os';
import { registerNativeBackend, setNativeThreads } from './native.ts';
import { registerWasmKernels } from './wasm-kernels.ts';

export const BACKEND_NAMES = ['tensorflow-gpu', 'tensorflow', 'native', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** Option and env var spellings users may type for each backend. */
const ALIASES: Record<string, BackendName> = {
  'tfjs-node-gpu': 'tensorflow-gpu',
  gpu: 'tensorflow-gpu',
  'tensorflow-gpu': 'tensorflow-gpu',
  'tfjs-node': 'tensorflow',
  node: 'tensorflow',
  tensorflow: 'tensorflow',
  native: 'native',
  openblas: 'native',
  wasm: 'wasm',
  cpu: 'cpu',
};

export class BackendError extends UserError {}

let active: BackendName | undefined;
let threads = 1;
let fallbackSaid = false;

/**
 * BLAS threads of the native backend (MINIGLM_THREADS, else every core), pinned for the
 * process: two threads sum a product's terms in another order than one, so a run and its
 * resumption must use the same count. Recorded in checkpoints.
 */
export function backendThreads(): number {
  return active === 'native' ? threads : 1;
}

/** The backend in use, for metrics and benchmarks. */
export function activeBackend(): BackendName {
  if (!active) throw new BackendError('no backend initialised: call initBackend() first');
  return active;
}

/**
 * Initialises and returns the backend. `preferred` (or MINIGLM_BACKEND) forces one and fails
 * with a clear message when it cannot load; without it the best available one wins.
 */
export async function initBackend(preferred?: string): Promise<BackendName> {
  const forced = preferred ?? process.env.MINIGLM_BACKEND;
  if (forced) {
    const name = ALIASES[forced.toLowerCase()];
    if (!name) throw new BackendError(`unknown backend "${forced}": choose one of ${Object.keys(ALIASES).join(', ')}`);
    if (active === name) return name;
    const error = await tryBackend(name);
    if (error) throw new BackendError(`backend "${forced}" is not available: ${error}`);
    return (active = name);
  }
  if (active) return active;
  for (const name of BACKEND_NAMES) {
    const why = await tryBackend(name);
    if (!why) return (active = name);
    if (name === 'native' && !fallbackSaid) {
      fallbackSaid = true;
      process.stderr.write(`miniglm: using wasm, not the fast native backend: ${why}\n`);
    }
  }
  throw new BackendError('no TensorFlow.js backend could be initialised');
}

/** Loads and switches to one backend; returns why it failed, or undefined on success. */
async function tryBackend(name: BackendName): Promise<string | undefined> {
  try {
    if (name === 'tensorflow-gpu' || name === 'tensorflow') {
      const pkg = name === 'tensorflow' ? '@tensorflow/tfjs-node' : '@tensorflow/tfjs-node-gpu';
      // Import only with its native binding in place: a package whose install step could not
      // download libtensorflow registers all its kernels before failing, and the second such
      // import prints a warning for every kernel.
      const missing = missingBinding(pkg);
      if (missing) return missing;
      await import(pkg);
    }
    if (name === 'wasm') await loadWasm();
    if (name === 'native') {
      const native = registerNativeBackend();
      if (!native.ok) return native.reason;
      const wanted = Number(process.env.MINIGLM_THREADS ?? os.availableParallelism());
      if (!(Number.isInteger(wanted) && wanted >= 1))
        return `MINIGLM_THREADS must be a positive integer, got "${process.env.MINIGLM_THREADS}"`;
      threads = setNativeThreads(wanted);
    }
    if (!(await tf.setBackend(name))) return `tf.setBackend("${name}") returned false`;
    await tf.ready();
    // The cpu backend prints an advertisement for tfjs-node on its first write unless told
    // it has been used (tfjs' own IS_TEST switch would also turn on per-kernel leak checks).
    if (name === 'cpu') (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
    if (name === 'wasm') registerWasmKernels();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message.split('\n')[0] : String(error);
  }
}

/** Why a tfjs-node package cannot load, or undefined when its binding is installed. */
function missingBinding(pkg: string): string | undefined {
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    return `${pkg} is not installed`;
  }
  const lib = path.join(dir, 'lib');
  const found =
    fs.existsSync(lib) && fs.readdirSync(lib).some((d) => fs.existsSync(path.join(lib, d, 'tfjs_binding.node')));
  return found
    ? undefined
    : `${pkg} has no native binding (its install step downloads libtensorflow; reinstall it where that is possible)`;
}

async function loadWasm(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // Point the backend at its .wasm files inside node_modules: nothing is fetched.
  const require = createRequire(import.meta.url);
  const dist =
    path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
  wasm.setWasmPaths(dist);
}
