/**
 * Latent arithmetic: scale, mix, mask and normalise the latent lists of `model.encode` (published
 * order: each split level's ε, then z_L; every tensor [B, C, H_ℓ, W_ℓ]) before `model.decode`.
 *
 * Every helper returns new tensors and leaves its inputs alone. Where a helper takes a spatial
 * weight it accepts a number (the same everywhere) or a one-channel map (`{ data: Float32Array,
 * channels: 1, height, width }`, values in [0, 1], any size): the map is resampled to each
 * level's H_ℓ × W_ℓ (linear when enlarging, area average when shrinking; src/upscale/tempmap.ts).
 *
 *   const { latents } = model.encode(hr, lr);
 *   const calm = scaleLatents(latents, 0.5);             // half the detail everywhere
 *   const mixed = mixLatents(latents, other, mask);      // `other` where the mask is white
 *   const img = model.decode(lr, mixed).sr;
 */
import { Tensor } from '../tensor/tensor.js';
import type { TensorLike } from '../models/api.js';
import { checkMap, resizeMap, type Map1 } from '../upscale/tempmap.js';

/** A spatial weight: a number, or a one-channel map in [0, 1] of any size. */
export type LatentWeight = number | Map1;

function asTensors(latents: readonly (TensorLike | Tensor)[], name: string): Tensor[] {
  if (!Array.isArray(latents) || latents.length === 0) throw new Error(`Expected a non-empty list of latent tensors for ${name}`);
  return latents.map((z, i) => {
    if (!z || !Array.isArray(z.shape) || !(z.data instanceof Float32Array) || z.shape.length !== 4) {
      throw new Error(`Expected ${name}[${i}] to be a 4-D tensor { shape: [B, C, H, W], data: Float32Array }`);
    }
    if (z.data.length !== z.shape.reduce((a: number, b: number) => a * b, 1))
      throw new Error(`Expected ${name}[${i}] to hold ${z.shape.join('×')} values but it holds ${z.data.length}`);
    return z instanceof Tensor ? z : new Tensor(z.data, z.shape);
  });
}

function checkSameShapes(a: Tensor[], b: Tensor[]): void {
  if (a.length !== b.length) throw new Error(`Expected latent lists of the same length but received ${a.length} and ${b.length}`);
  a.forEach((z, i) => {
    if (z.shape.some((d, j) => d !== b[i].shape[j])) throw new Error(`Expected latents of the same shapes but latent ${i} is [${z.shape}] and [${b[i].shape}]`);
  });
}

/** The weight at each position of one level, or a number. */
function weightAt(w: LatentWeight, H: number, W: number): number | Float32Array {
  if (typeof w === 'number') return w;
  return resizeMap(w, H, W).data;
}

function checkWeight(w: LatentWeight, name: string, numberOk: (x: number) => boolean, what: string): void {
  if (typeof w === 'number') {
    if (!numberOk(w)) throw new Error(`Expected ${what} for ${name} but received ${w}`);
  } else checkMap(w, name);
}

/** Apply f(value, weight) per element, with the weight broadcast over batch and channels. */
function mapLevels(latents: Tensor[], weight: LatentWeight, f: (i: number, z: Float32Array, w: number, out: Float32Array) => void): Tensor[] {
  return latents.map((z) => {
    const [B, C, H, W] = z.shape;
    const w = weightAt(weight, H, W);
    const out = new Float32Array(z.size);
    const d = z.data as Float32Array;
    const plane = H * W;
    for (let bc = 0; bc < B * C; bc++) {
      const o = bc * plane;
      for (let p = 0; p < plane; p++) f(o + p, d, typeof w === 'number' ? w : w[p], out);
    }
    return new Tensor(out, z.shape);
  });
}

/**
 * Multiply every latent by `factor`: a number (≥ 0; 0 = the mode, 1 = unchanged; the temperature
 * of a draw scales its latents the same way) or a map (black = 0, white = unchanged).
 */
export function scaleLatents(latents: readonly (TensorLike | Tensor)[], factor: LatentWeight): Tensor[] {
  const zs = asTensors(latents, 'latents');
  checkWeight(factor, 'factor', (x) => Number.isFinite(x) && x >= 0, 'a finite number ≥ 0 or a map');
  return mapLevels(zs, factor, (i, d, w, out) => {
    out[i] = d[i] * w;
  });
}

/**
 * (1 − w)·a + w·b per position: `weight` a number in [0, 1] or a map (black = a, white = b).
 * Both lists must have the same shapes (the same model and LR size).
 */
export function mixLatents(a: readonly (TensorLike | Tensor)[], b: readonly (TensorLike | Tensor)[], weight: LatentWeight): Tensor[] {
  const za = asTensors(a, 'a');
  const zb = asTensors(b, 'b');
  checkSameShapes(za, zb);
  checkWeight(weight, 'weight', (x) => Number.isFinite(x) && x >= 0 && x <= 1, 'a number in [0, 1] or a map');
  return za.map((z, li) => {
    const [B, C, H, W] = z.shape;
    const w = weightAt(weight, H, W);
    const da = z.data as Float32Array;
    const db = zb[li].data as Float32Array;
    const o = new Float32Array(z.size);
    const plane = H * W;
    for (let bc = 0; bc < B * C; bc++) {
      for (let p = 0; p < plane; p++) {
        const i = bc * plane + p;
        const wp = typeof w === 'number' ? w : w[p];
        o[i] = da[i] + wp * (db[i] - da[i]);
      }
    }
    return new Tensor(o, z.shape);
  });
}

/** Keep the latents where `mask` is white and zero them (the mode) where it is black. */
export function maskLatents(latents: readonly (TensorLike | Tensor)[], mask: Map1): Tensor[] {
  if (typeof mask === 'number') throw new Error('Expected a one-channel map for mask (use scaleLatents for a number)');
  return scaleLatents(latents, mask);
}

/** Root mean square of every latent (per tensor, over batch, channels and positions). */
export function latentRms(latents: readonly (TensorLike | Tensor)[]): number[] {
  return asTensors(latents, 'latents').map((z) => {
    let s = 0;
    for (const v of z.data) s += v * v;
    return Math.sqrt(s / z.size);
  });
}

export interface NormaliseOptions {
  /**
   * 'shrink' (default): scale a channel down to rms τ only when its rms exceeds τ (channels that
   * already look like natural detail at τ are kept); 'exact': scale every channel to rms τ.
   */
  mode?: 'shrink' | 'exact';
  /** Latent indices to touch (default: all). */
  levels?: number[];
}

/**
 * Latent normalisation (SRFlow paper, sec. 4.4): per image and channel, scale the latent so that
 * its root mean square over the positions is τ. Natural detail encodes to roughly unit-variance
 * latents; noise and artifacts show up as channels of far larger (or smaller) energy.
 */
export function normaliseLatents(latents: readonly (TensorLike | Tensor)[], tau: number, opts: NormaliseOptions = {}): Tensor[] {
  const zs = asTensors(latents, 'latents');
  if (!(Number.isFinite(tau) && tau >= 0)) throw new Error(`Expected a finite τ ≥ 0 for tau but received ${tau}`);
  const mode = opts.mode ?? 'shrink';
  if (mode !== 'shrink' && mode !== 'exact') throw new Error(`Expected 'shrink' or 'exact' for mode but received ${JSON.stringify(mode)}`);
  return zs.map((z, li) => {
    const out = Float32Array.from(z.data as Float32Array);
    if (opts.levels && !opts.levels.includes(li)) return new Tensor(out, z.shape);
    const [B, C, H, W] = z.shape;
    const plane = H * W;
    for (let bc = 0; bc < B * C; bc++) {
      const o = bc * plane;
      let s = 0;
      for (let p = 0; p < plane; p++) s += out[o + p] * out[o + p];
      const rms = Math.sqrt(s / plane);
      if (rms === 0) continue;
      const g = mode === 'exact' ? tau / rms : Math.min(1, tau / rms);
      if (g !== 1) for (let p = 0; p < plane; p++) out[o + p] *= g;
    }
    return new Tensor(out, z.shape);
  });
}

/**
 * (1 − m_ℓ)·a + m_ℓ·b with one map per latent, each already at that latent's H_ℓ × W_ℓ (see
 * `levelMaps` in src/upscale/tempmap.ts for maps over a padded image).
 */
export function mixLatentsByLevel(a: readonly (TensorLike | Tensor)[], b: readonly (TensorLike | Tensor)[], maps: readonly Map1[]): Tensor[] {
  const za = asTensors(a, 'a');
  const zb = asTensors(b, 'b');
  checkSameShapes(za, zb);
  if (maps.length !== za.length) throw new Error(`Expected ${za.length} level maps but received ${maps.length}`);
  return za.map((z, li) => {
    const [, , H, W] = z.shape;
    const m = maps[li];
    if (m.height !== H || m.width !== W) throw new Error(`Expected level map ${li} of ${W}×${H} but received ${m.width}×${m.height}`);
    return mixLatents([z], [zb[li]], m)[0];
  });
}
