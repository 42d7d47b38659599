import type { Planar } from '../io/image.js';

/**
 * Sample diversity: the mean over all values (channels × pixels) of the per-value population
 * standard deviation across the samples, in [0, 1] units. One sample gives 0.
 */
export function diversity(samples: Planar[]): number {
  if (!Array.isArray(samples) || samples.length === 0) {
    throw new Error(`Expected a non-empty array of images for samples but received ${Array.isArray(samples) ? 'an empty array' : typeof samples}`);
  }
  const first = samples[0];
  for (const [i, s] of samples.entries()) {
    if (s.channels !== first.channels || s.height !== first.height || s.width !== first.width || s.data.length !== first.data.length) {
      throw new Error(
        `Expected every sample to be ${first.channels}×${first.height}×${first.width} for samples[${i}] but received ${s.channels}×${s.height}×${s.width}`,
      );
    }
  }
  const n = first.data.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += sampleStd(samples, i);
  return total / n;
}

/** The population standard deviation of value i (in `data`) across the samples. */
export function sampleStd(samples: Planar[], i: number): number {
  const K = samples.length;
  let mean = 0;
  for (let k = 0; k < K; k++) mean += samples[k].data[i];
  mean /= K;
  let v = 0;
  for (let k = 0; k < K; k++) {
    const d = samples[k].data[i] - mean;
    v += d * d;
  }
  return Math.sqrt(v / K);
}

/** Bits per dimension from the published bits-per-pixel NLL (RGB: 3 dimensions per pixel). */
export function bitsPerDim(nllBitsPerPixel: number): number {
  return nllBitsPerPixel / 3;
}
