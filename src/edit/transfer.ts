/**
 * Content transfer in the latent space (SRFlow paper, sec. 4.4): the high-frequency content of a
 * source image is transplanted into a masked region of a target image while the result keeps the
 * target's low-resolution version.
 *
 *   z_t = f(target | LR_t)     z_s = f(source | LR_s)      (LR = MATLAB bicubic ↓ scale)
 *   z   = z_t + m_ℓ ⊙ (z_s − z_t)                            (mask averaged per latent level)
 *   x   = f⁻¹(z | LR_t)
 *
 * The source's latents carry its detail relative to its own LR; decoded against the target's LR
 * they give the target's structure with the source's texture. Outside the mask the latents are the
 * target's; the flow's receptive field reaches a little across the mask's edge, so the result is
 * composited, target + m ⊙ (x − target), with the pixel mask m. Finally the LR mismatch is
 * removed by back-projection confined to the mask (maskedBackProjection), so that the result
 * downscales to the target's LR while the outside stays the target.
 */
import type { Planar } from '../io/image.js';
import { imresize } from '../data/bicubic.js';
import type { SRFlowModel } from '../models/api.js';
import { Tensor } from '../tensor/tensor.js';
import { sizeMultiple } from '../upscale/engine.js';
import { ceilTo, crop, padReflect } from '../upscale/pad.js';
import { checkMap, levelMaps, type Map1 } from '../upscale/tempmap.js';
import { lrPsnr } from '../metrics/psnr.js';
import { mixLatentsByLevel } from './latents.js';

/**
 * Back-projection confined to the mask: x ← x + m ⊙ bicubic↑(lr − bicubic↓(x)), until the LR-PSNR
 * (float) reaches `targetDb` or stops improving; outside the mask x is not touched. Converges when
 * the LR mismatch lies under the mask (as it does when x equals a consistent image outside it).
 */
export function maskedBackProjection(
  x0: Planar,
  lr: Planar,
  s: number,
  mask: Map1,
  opts: { targetDb?: number; maxIterations?: number } = {},
): { image: Planar; lrPsnr: number; iterations: number } {
  const target = opts.targetDb ?? 60;
  const maxIt = opts.maxIterations ?? 100;
  const x: Planar = { ...x0, data: Float32Array.from(x0.data) };
  const n = x.height * x.width;
  let db = lrPsnr(x, lr, s, { quantize: false });
  let it = 0;
  while (db < target && it < maxIt) {
    const prev = x.data.slice();
    const down = imresize(x, 1 / s);
    for (let i = 0; i < down.data.length; i++) down.data[i] = lr.data[i] - down.data[i];
    const up = imresize(down, s, { outHeight: x.height, outWidth: x.width });
    for (let c = 0; c < 3; c++) for (let p = 0; p < n; p++) x.data[c * n + p] += mask.data[p] * up.data[c * n + p];
    it++;
    const next = lrPsnr(x, lr, s, { quantize: false });
    if (!(next > db + 1e-3)) {
      if (!(next >= db)) x.data.set(prev);
      else db = next;
      break;
    }
    db = next;
  }
  return { image: x, lrPsnr: db, iterations: it };
}

export interface TransferOptions {
  /** Back-project inside the mask so that the result's bicubic downscale equals the target's LR (default true). */
  consistency?: boolean;
}

export interface TransferResult {
  /** The result, the target's size, clipped to [0, 1]. */
  image: Planar;
  /** LR-PSNR (float) of the decoded result against the target's LR, before and after projecting. */
  lrPsnrBefore: number;
  lrPsnr: number;
  /** Mean of the mask (the fraction of the image that receives the source's content). */
  maskFraction: number;
  /** Back-projection iterations. */
  iterations: number;
}

/** Mean of a map; throws when the map is black everywhere (nothing to transfer). */
export function maskCoverage(mask: Map1, name = 'mask'): number {
  let s = 0;
  for (const v of mask.data) s += v;
  if (s === 0) throw new Error(`The ${name} is empty (black everywhere): nothing to transfer; paint the region to transfer white`);
  return s / mask.data.length;
}

/** Pad an RGB image by reflection to multiples of q (bottom/right). */
function padTo(img: Planar, q: number): Planar {
  return padReflect(img, ceilTo(img.height, q), ceilTo(img.width, q));
}

/** Encode an image given its own bicubic LR: the latents and the LR. */
export function encodeOwn(model: SRFlowModel, hr: Planar): { latents: Tensor[]; lr: Planar } {
  const lr = imresize(hr, 1 / model.scale);
  const { latents } = model.encode(new Tensor(hr.data, [1, 3, hr.height, hr.width]), new Tensor(lr.data, [1, 3, lr.height, lr.width]));
  return { latents, lr };
}

/** Transplant `source`'s detail into `target` where `mask` is white (same sizes). */
export function transferContent(model: SRFlowModel, target: Planar, source: Planar, mask: Map1, opts: TransferOptions = {}): TransferResult {
  for (const [img, name] of [
    [target, 'target'],
    [source, 'source'],
  ] as const) {
    if (img.channels !== 3) throw new Error(`Expected an RGB image for ${name} but received ${img.channels} channels`);
  }
  if (source.width !== target.width || source.height !== target.height) {
    throw new Error(`Expected the source to be the target's size (${target.width}×${target.height}) but it is ${source.width}×${source.height}`);
  }
  checkMap(mask, 'mask');
  if (mask.width !== target.width || mask.height !== target.height) {
    throw new Error(`Expected the mask to be the target's size (${target.width}×${target.height}) but it is ${mask.width}×${mask.height}`);
  }
  const maskFraction = maskCoverage(mask);
  const s = model.scale;
  if (target.width < s || target.height < s)
    throw new Error(`Expected images of at least ${s}×${s} (the model's scale) but received ${target.width}×${target.height}`);
  const q = s * sizeMultiple(model);
  const tP = padTo(target, q);
  const sP = padTo(source, q);
  const t = encodeOwn(model, tP);
  const src = encodeOwn(model, sP);
  const shapes = t.latents.map((z) => z.shape);
  const maps = levelMaps(mask, shapes, { height: target.height, width: target.width, paddedHeight: tP.height, paddedWidth: tP.width });
  const z = mixLatentsByLevel(t.latents, src.latents, maps);
  const decoded = model.decode(new Tensor(t.lr.data, [1, 3, t.lr.height, t.lr.width]), z).sr;
  let image = crop({ data: decoded.data as Float32Array, channels: 3, height: tP.height, width: tP.width }, 0, 0, target.height, target.width);
  if (image.data === decoded.data) image = { ...image, data: Float32Array.from(image.data) };
  // outside the mask the target itself (the flow's receptive field reaches a few pixels across
  // the mask's edge); gray mask values blend
  const n = target.height * target.width;
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < n; p++) {
      const i = c * n + p;
      image.data[i] = target.data[i] + mask.data[p] * (image.data[i] - target.data[i]);
    }
  }
  // the target's own LR (unpadded), the reference for consistency
  const lrT = imresize(target, 1 / s);
  const exact = target.height % s === 0 && target.width % s === 0;
  const before = exact ? lrPsnr(image, lrT, s, { quantize: false }) : NaN;
  let iterations = 0;
  let after = before;
  if ((opts.consistency ?? true) && exact) {
    const r = maskedBackProjection(image, lrT, s, mask);
    image = r.image;
    after = r.lrPsnr;
    iterations = r.iterations;
  }
  for (let i = 0; i < image.data.length; i++) image.data[i] = Math.min(1, Math.max(0, image.data[i]));
  return { image, lrPsnrBefore: before, lrPsnr: after, maskFraction, iterations };
}
