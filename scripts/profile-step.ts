/**
 * `npx tsx scripts/profile-step.ts [ref|handout] [steps]`: where a native training step's time
 * goes. Trains the bench's torch_ref or handout config on random tokens (3 warm-up steps, then
 * `steps`, default 8) with every native kernel call timed, and prints ms per step by kernel —
 * matrix products by shape, with their GFLOP/s — and how much of the step ran outside native
 * code (tfjs ops in JS). Measure on a quiet machine and compare runs taken side by side.
 */
import os from 'node:os';
import { initBackend } from '@miniglm/model';
import { loadNative, type NativeKernels } from '../packages/native/src/index.ts';
import { HANDOUT, REF, trainOnRandomTokens, WARMUP } from './bench-training.ts';

const CONFIGS = { ref: REF, handout: HANDOUT };
const name = (process.argv[2] ?? 'ref') as keyof typeof CONFIGS;
const c = CONFIGS[name];
if (!c) throw new Error(`unknown config "${process.argv[2]}": use ref or handout`);
const steps = Number(process.argv[3] ?? 8);

const loaded = loadNative();
if (!('kernels' in loaded)) throw new Error(loaded.reason);
// Wrap every kernel of the addon; the backend calls them through this same object.
const kernels = loaded.kernels as unknown as Record<string, (...args: unknown[]) => unknown>;
const spent = new Map<string, { calls: number; ms: number; flops: number }>();
let timing = false;
for (const [kernel, f] of Object.entries(kernels)) {
  if (typeof f !== 'function') continue;
  kernels[kernel] = (...args: unknown[]) => {
    if (!timing) return f(...args);
    const start = performance.now();
    const result = f(...args);
    const ms = performance.now() - start;
    let key = kernel;
    let flops = 0;
    if (kernel === ('sgemm' satisfies keyof NativeKernels)) {
      const [ta, tb, m, n, k] = args as [boolean, boolean, number, number, number];
      const batch = args[19] as number;
      key = `sgemm ${ta ? 'Aᵀ' : 'A'}·${tb ? 'Bᵀ' : 'B'} m${m} n${n} k${k}${batch > 1 ? ` ×${batch}` : ''}`;
      flops = 2 * m * n * k * batch;
    }
    const s = spent.get(key) ?? { calls: 0, ms: 0, flops: 0 };
    s.calls++;
    s.ms += ms;
    s.flops += flops;
    spent.set(key, s);
    return result;
  };
}

await initBackend('native');
const stepMs: number[] = [];
let last = performance.now();
await trainOnRandomTokens(c, steps, (m) => {
  const now = performance.now();
  if (m.step > WARMUP) stepMs.push(now - last);
  last = now;
  timing = m.step >= WARMUP;
});

const perStep = (ms: number) => ms / stepMs.length;
const total = stepMs.reduce((a, b) => a + b, 0);
console.log(
  `${name}: ${perStep(total).toFixed(1)} ms a step, ${((c.batch * c.block * stepMs.length) / (total / 1000)).toFixed(0)} tokens/s, ${steps} steps, load average ${os.loadavg()[0]!.toFixed(2)}`,
);
let native = 0;
for (const [key, s] of [...spent].sort((a, b) => b[1].ms - a[1].ms)) {
  native += s.ms;
  const rate = s.flops ? `${(s.flops / s.ms / 1e6).toFixed(1).padStart(7)} GFLOP/s` : ''.padStart(15);
  console.log(
    `${perStep(s.ms).toFixed(2).padStart(9)} ms  ${String(s.calls / stepMs.length).padStart(4)}×  ${rate}  ${key}`,
  );
}
console.log(
  `${perStep(total - native)
    .toFixed(2)
    .padStart(9)} ms  outside native kernels`,
);
