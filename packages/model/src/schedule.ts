/**
 * nanoGPT's learning-rate schedule: linear warmup to `lr`, then cosine decay to `minLr`
 * at `decayIters`, constant after.
 */
export interface LrSchedule {
  lr: number;
  minLr: number;
  warmup: number;
  decayIters: number;
}

export function learningRate(step: number, s: LrSchedule): number {
  if (step < s.warmup) return (s.lr * (step + 1)) / (s.warmup + 1);
  if (step >= s.decayIters) return s.minLr;
  const progress = (step - s.warmup) / Math.max(1, s.decayIters - s.warmup);
  const coeff = 0.5 * (1 + Math.cos(Math.PI * progress)); // 1 → 0
  return s.minLr + coeff * (s.lr - s.minLr);
}
