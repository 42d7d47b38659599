/**
 * Calibrating the sampling guard (flow/guard.ts) of an srflow-trained model on training photos:
 * for each (HR, LR) pair, the flow forward on the HR image (the activations of real data) and the
 * inverse at each calibration temperature (what sampling meets), recording per guarded layer the
 * per-channel range of its forward output / inverse input and the smallest injector and coupling
 * scales. Run by scripts/calibrate-guard.ts; the result goes into the model file's `flow_guard`
 * metadata (GUARD_METADATA_KEY).
 */
import { Tensor, noGrad } from '../tensor/tensor.js';
import { Rng } from '../tensor/random.js';
import { Workspace, flowContext } from '../flow/layer.js';
import { runFlow } from '../flow/run.js';
import { GuardStats, type GuardCalibration } from '../flow/guard.js';
import type { SRFlowNet } from './srflow.js';

export const GUARD_METADATA_KEY = 'flow_guard';
export const DEFAULT_GUARD_MARGIN = 1;
export const DEFAULT_GUARD_FLOOR_FACTOR = 1;

export interface CalibrateOptions {
  /** Sampling temperatures to run the inverse at (default [0, 0.8, 1]). */
  temperatures?: number[];
  margin?: number;
  floorFactor?: number;
  /** Seed of the calibration latents (default 0). */
  seed?: number;
  /** What the pairs are (recorded in the calibration). */
  source: string;
}

/** The guard calibration of `net` on (HR, LR) pairs (NCHW, batch 1 or more). */
export function calibrateGuard(net: SRFlowNet, pairs: Iterable<{ hr: Tensor; lr: Tensor }>, opts: CalibrateOptions): GuardCalibration {
  const stats = new GuardStats();
  const eps = net.config.flow.eps;
  const guarded = (i: number) => net.guardableLayer(i) !== null;
  const observe = (i: number, which: 'inj' | 'cp', raw: Tensor) => stats.scales(i, which, raw, eps);
  const temperatures = opts.temperatures ?? [0, 0.8, 1];
  const rng = new Rng(opts.seed ?? 0);
  const ws = new Workspace();
  let n = 0;
  noGrad(() => {
    for (const { hr, lr } of pairs) {
      net.checkPair(hr, lr);
      const cache = net.prepareConditioning(lr, { guard: false });
      runFlow(net.plan, hr, 'forward', flowContext(), {
        caches: cache.steps,
        observe,
        visit: (i, _input, output) => guarded(i) && stats.activation(i, output),
      });
      for (const t of temperatures) {
        const z = net.drawLatents(lr.shape, t, rng);
        runFlow(net.plan, z[z.length - 1], 'inverse', flowContext({ latents: z.slice(0, -1), needLogdet: false, workspace: ws }), {
          caches: cache.steps,
          observe,
          visit: (i, input) => guarded(i) && stats.activation(i, input),
        });
      }
      n += lr.shape[0];
    }
  });
  if (!n) throw new Error('Expected at least one (HR, LR) pair to calibrate the sampling guard on but received none');
  return stats.calibration({
    margin: opts.margin ?? DEFAULT_GUARD_MARGIN,
    floorFactor: opts.floorFactor ?? DEFAULT_GUARD_FLOOR_FACTOR,
    source: `${opts.source}; ${n} pairs; forward on HR and inverse at τ = ${temperatures.join(', ')}`,
  });
}
