/**
 * Exact LR consistency by iterative back-projection:
 *
 *   x ← x + upscaleBicubic(lr − downscale(x, s), s)
 *
 * with MATLAB bicubic on the float path, until LR-PSNR(x, lr) ≥ target (default 60 dB, float,
 * not quantised) or `maxIterations` (default 50), or until an iteration no longer improves it.
 * The result is clipped to [0, 1]; when clipping costs consistency (an LR value that no image in
 * [0, 1] reproduces, e.g. next to saturated pixels), further iterations clip after every step
 * (projections onto convex sets). Photos reach the target in a few iterations; an LR that no image
 * in [0, 1] downscales to (e.g. 8-bit noise with full-range neighbours) stops short of it, and the
 * LR-PSNR reached is returned.
 */
import type { Planar } from '../io/image.js';
import { downscale, upscaleBicubic } from '../data/bicubic.js';
import { psnr } from '../metrics/psnr.js';
import { clip01 } from './pad.js';

export interface ConsistencyOptions {
  /** LR-PSNR to reach, in dB (default 60). */
  targetDb?: number;
  /** Iteration cap (default 50). */
  maxIterations?: number;
}

export interface ConsistencyResult {
  image: Planar;
  /** Final LR-PSNR (float), dB. */
  lrPsnr: number;
  /** LR-PSNR before projecting. */
  lrPsnrBefore: number;
  iterations: number;
}

function lrDb(x: Planar, lr: Planar, s: number): number {
  return psnr(downscale(x, s), lr, { quantize: false });
}

/** Project `sr` (s× `lr`, not modified) onto the images whose bicubic downscale is `lr`. */
export function projectConsistent(sr: Planar, lr: Planar, scale: number, opts: ConsistencyOptions = {}): ConsistencyResult {
  const target = opts.targetDb ?? 60;
  const maxIt = opts.maxIterations ?? 50;
  if (sr.channels !== lr.channels || sr.height !== lr.height * scale || sr.width !== lr.width * scale) {
    throw new Error(`Expected an SR image of ${lr.width * scale}×${lr.height * scale} (${scale}× the LR) but received ${sr.width}×${sr.height}`);
  }
  const x: Planar = { ...sr, data: Float32Array.from(sr.data) };
  const before = lrDb(x, lr, scale);
  let db = before;
  let it = 0;
  let clipEach = false;
  const step = () => {
    const down = downscale(x, scale);
    const r = down.data;
    for (let i = 0; i < r.length; i++) r[i] = lr.data[i] - r[i];
    const up = upscaleBicubic(down, scale);
    for (let i = 0; i < x.data.length; i++) x.data[i] += up.data[i];
    if (clipEach) clip01(x);
    it++;
  };
  for (let pass = 0; pass < 2; pass++) {
    while (db < target && it < maxIt) {
      const prev = db;
      step();
      db = lrDb(x, lr, scale);
      if (!(db > prev + 1e-3)) break;
    }
    if (pass === 0) {
      const unclipped = x.data.some((v) => !(v >= 0 && v <= 1));
      clip01(x);
      db = lrDb(x, lr, scale);
      if (!unclipped || db >= target) break;
      clipEach = true;
    }
  }
  return { image: x, lrPsnr: db, lrPsnrBefore: before, iterations: it };
}
