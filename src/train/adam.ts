/**
 * Adam (Kingma & Ba), with PyTorch's update rule:
 *   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
 *   p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)
 * Parameters are grouped (SRFlow uses a flow group and an RRDB group); each group has its own lr,
 * which the learning-rate schedule sets. State can be exported and restored for exact resume.
 */
import { bumpParameterVersion, type Tensor } from '../tensor/tensor.js';
import { ew } from '../tensor/ew.js';

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export interface ParamGroup {
  name: string;
  params: [string, Tensor][];
  lr: number;
  /** When false, the group's parameters are not updated (e.g. a frozen RRDB). */
  trainable: boolean;
}

export interface AdamState {
  step: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
  steps: Record<string, number>;
}

export class Adam {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly groups: ParamGroup[];
  private m = new Map<string, Float32Array>();
  private v = new Map<string, Float32Array>();
  private t = new Map<string, number>();
  step_ = 0;

  constructor(groups: { name: string; params: [string, Tensor][]; lr?: number }[], opts: AdamOptions) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.groups = groups.map((g) => ({ name: g.name, params: g.params, lr: g.lr ?? opts.lr, trainable: true }));
  }

  /** One update of every trainable parameter that has a gradient. */
  step(): void {
    this.step_++;
    bumpParameterVersion();
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = this;
    for (const grp of this.groups) {
      if (!grp.trainable) continue;
      for (const [name, p] of grp.params) {
        const g = p.grad;
        if (!g) continue;
        let m = this.m.get(name);
        let v = this.v.get(name);
        if (!m || !v) {
          m = new Float32Array(p.size);
          v = new Float32Array(p.size);
          this.m.set(name, m);
          this.v.set(name, v);
        }
        const t = (this.t.get(name) ?? 0) + 1;
        this.t.set(name, t);
        const bc1 = 1 - b1 ** t;
        const bc2s = Math.sqrt(1 - b2 ** t);
        const stepSize = grp.lr / bc1;
        const d = p.data;
        const K = ew(d, g);
        if (K) K.adam(d as Float32Array, g as Float32Array, m, v, b1, b2, stepSize, bc2s, eps, wd);
        else
          for (let i = 0; i < d.length; i++) {
            const gi = wd ? g[i] + wd * d[i] : g[i];
            const mi = (m[i] = b1 * m[i] + (1 - b1) * gi);
            const vi = (v[i] = b2 * v[i] + (1 - b2) * gi * gi);
            d[i] -= (stepSize * mi) / (Math.sqrt(vi) / bc2s + eps);
          }
      }
    }
  }

  zeroGrad(): void {
    for (const grp of this.groups) for (const [, p] of grp.params) p.grad = null;
  }

  state(): AdamState {
    return {
      step: this.step_,
      m: Object.fromEntries(this.m),
      v: Object.fromEntries(this.v),
      steps: Object.fromEntries(this.t),
    };
  }

  loadState(s: AdamState): void {
    this.step_ = s.step;
    this.m = new Map(Object.entries(s.m));
    this.v = new Map(Object.entries(s.v));
    this.t = new Map(Object.entries(s.steps));
  }
}

/** MultiStepLR: lr = base · gamma^(number of milestones ≤ iteration). */
export function multiStepLr(base: number, milestones: readonly number[], gamma: number, iteration: number): number {
  let k = 0;
  for (const m of milestones) if (iteration >= m) k++;
  return base * gamma ** k;
}
