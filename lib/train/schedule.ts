// Learning-rate schedules, as transformers' get_{linear,cosine,constant}_schedule_with_warmup
// (the official FocusLLM run: lr 5e-5, no warmup, linear decay).

export type ScheduleKind = 'linear' | 'cosine' | 'constant';
export const SCHEDULES: readonly ScheduleKind[] = ['linear', 'cosine', 'constant'];

export interface ScheduleOptions {
  /** peak learning rate */
  lr: number;
  /** optimizer steps of linear warmup from 0 */
  warmup: number;
  /** total optimizer steps */
  steps: number;
  schedule: ScheduleKind;
}

/**
 * The learning rate of optimizer step `step` (0-based): step / warmup during
 * the warmup, then with p = (step - warmup) / max(1, steps - warmup):
 * linear lr * (1 - p), cosine lr * (1 + cos(pi p)) / 2, constant lr.
 */
export function learningRate(step: number, o: ScheduleOptions): number {
  if (step < o.warmup) return (o.lr * step) / Math.max(1, o.warmup);
  const p = (step - o.warmup) / Math.max(1, o.steps - o.warmup);
  if (o.schedule === 'constant') return o.lr;
  if (o.schedule === 'cosine') return o.lr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * p)));
  return o.lr * Math.max(0, 1 - p);
}
