/**
 * The one loop over a flow's layers, for every use: encoding and training (forward), decoding and
 * sampling (inverse), and the recomputing backward walk of low-memory training (inverse with a
 * visitor). Sets the context's per-layer fields (the level's conditioning map, the layer's
 * precomputed conditioning) and sums the per-sample log-determinants in layer order.
 */
import { Tensor, isGradEnabled } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import type { AffineCache } from './affine.js';
import type { FlowContext, FlowLayer } from './layer.js';
import { clampChannels, type FlowGuard } from './guard.js';

export interface FlowPlan {
  readonly layers: readonly FlowLayer[];
  /** Conditioning map index (0-based level) of each layer. */
  readonly levelIndex: readonly number[];
}

export interface RunFlowOptions {
  /** Conditioning map per level (index: `levelIndex`); absent or null entries give null. */
  conds?: readonly (Tensor | null | undefined)[];
  /** Precomputed conditioning per layer index (inference). */
  caches?: ReadonlyMap<number, AffineCache>;
  /** The log-determinant to add the layers' to (default zeros of shape [B]). */
  logdet?: Tensor;
  /** Called after each layer with its index, input and output (in the direction of the run). */
  visit?: (i: number, input: Tensor, output: Tensor) => void;
  /**
   * The sampling guard (flow/guard.ts; inverse without a tape only): each guarded layer's input is
   * clamped to its calibrated range before its inverse, and the layer reads its scale floors from
   * `ctx.guard`.
   */
  guard?: FlowGuard | null;
  /** Sees every affine net's raw output with its layer index (guard calibration). */
  observe?: (i: number, which: 'inj' | 'cp', raw: Tensor) => void;
}

/** Runs the layers forward (first to last) or inverse (last to first) from `x`. */
export function runFlow(plan: FlowPlan, x: Tensor, dir: 'forward' | 'inverse', ctx: FlowContext, o: RunFlowOptions = {}): { out: Tensor; logdet: Tensor } {
  const n = plan.layers.length;
  let h = x;
  let logdet = o.logdet ?? Tensor.zeros([x.shape[0]], x.dtype);
  for (let k = 0; k < n; k++) {
    const i = dir === 'forward' ? k : n - 1 - k;
    const layer = plan.layers[i];
    ctx.cond = o.conds?.[plan.levelIndex[i]] ?? null;
    ctx.cache = o.caches?.get(i) ?? null;
    const observe = o.observe;
    ctx.observe = observe ? (which, raw) => observe(i, which, raw) : null;
    ctx.guard = dir === 'inverse' && o.guard && !isGradEnabled() ? o.guard.layer(i) : null;
    if (ctx.guard?.lo && ctx.guard.hi) {
      if (h === x) h = new Tensor((h.data as Float32Array).slice(), h.shape.slice()); // never the caller's latent
      clampChannels(h, ctx.guard.lo, ctx.guard.hi, ctx.guardCounts);
    }
    const input = h;
    if (dir === 'forward') {
      const r = layer.forward(h, ctx);
      h = r.y;
      logdet = T.add(logdet, r.logdet);
    } else {
      const r = layer.inverse(h, ctx);
      h = r.x;
      logdet = T.add(logdet, r.logdet);
    }
    o.visit?.(i, input, h);
  }
  ctx.cond = null;
  ctx.cache = null;
  ctx.guard = null;
  ctx.observe = null;
  return { out: h, logdet };
}
