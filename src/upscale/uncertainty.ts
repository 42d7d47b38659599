/**
 * Uncertainty map: per pixel, the standard deviation across samples (population, per channel),
 * averaged over R, G, B. For display it is divided by its 99.5th percentile (so a few outliers do
 * not wash the map out) and clipped to [0, 1]; `whiteStd` is the standard deviation shown as white.
 */
import type { Planar } from '../io/image.js';
import { sampleStd } from '../metrics/diversity.js';

export interface UncertaintyMap {
  /** One channel, values in [0, 1]. */
  map: Planar;
  /** Std (in [0, 1] image units) that maps to white. */
  whiteStd: number;
  /** Mean and maximum std over the image. */
  meanStd: number;
  maxStd: number;
}

export function uncertaintyMap(samples: Planar[]): UncertaintyMap {
  if (samples.length < 2) throw new Error(`Expected at least 2 samples for an uncertainty map but received ${samples.length}`);
  const { channels: C, height: H, width: W } = samples[0];
  for (const s of samples) {
    if (s.channels !== C || s.height !== H || s.width !== W) throw new Error('Expected samples of one size for the uncertainty map');
  }
  const n = H * W;
  const std = new Float32Array(n);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < n; i++) std[i] += sampleStd(samples, c * n + i) / C;
  }
  let sum = 0;
  let max = 0;
  for (let i = 0; i < n; i++) {
    sum += std[i];
    if (std[i] > max) max = std[i];
  }
  const sorted = Float32Array.from(std).sort();
  let white = sorted[Math.min(n - 1, Math.floor(0.995 * (n - 1)))];
  if (!(white > 0)) white = max;
  const out = new Float32Array(n);
  if (white > 0) for (let i = 0; i < n; i++) out[i] = Math.min(1, std[i] / white);
  return { map: { data: out, channels: 1, height: H, width: W }, whiteStd: white, meanStd: sum / n, maxStd: max };
}

/** A one-channel map as a grayscale RGB image (for saveImage with `grayscale: true`). */
export function grayToRgb(p: Planar): Planar {
  const n = p.height * p.width;
  const data = new Float32Array(3 * n);
  data.set(p.data.subarray(0, n), 0);
  data.set(p.data.subarray(0, n), n);
  data.set(p.data.subarray(0, n), 2 * n);
  return { data, channels: 3, height: p.height, width: p.width };
}
