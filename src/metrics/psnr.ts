/**
 * PSNR on RGB ×255 (the usual SR practice) and LR-PSNR (consistency of an SR output with its LR).
 */
import type { Planar } from '../io/image.js';
import { downscale } from '../data/bicubic.js';
import { checkSameSize, toScaled255 } from './common.js';

export interface PsnrOptions {
  /** Pixels cropped on each side before comparing (default 0). */
  border?: number;
  /** Round both images to 8 bits, round(clip(x,0,1)·255), before comparing (default true). */
  quantize?: boolean;
}

/** Mean squared error on the ×255 scale over the region inside `border`. */
export function mse255(a: Planar, b: Planar, opts: PsnrOptions = {}): number {
  const border = opts.border ?? 0;
  const quantize = opts.quantize ?? true;
  checkSameSize(a, b, 'psnr', border);
  const { channels: C, height: H, width: W } = a;
  let sum = 0;
  let count = 0;
  for (let c = 0; c < C; c++) {
    for (let y = border; y < H - border; y++) {
      const row = (c * H + y) * W;
      for (let x = border; x < W - border; x++) {
        const d = toScaled255(a.data[row + x], quantize) - toScaled255(b.data[row + x], quantize);
        sum += d * d;
        count++;
      }
    }
  }
  return sum / count;
}

/** PSNR in dB with peak 255 (Infinity for identical images). */
export function psnr(a: Planar, b: Planar, opts: PsnrOptions = {}): number {
  const m = mse255(a, b, opts);
  if (m === 0) return Infinity;
  return 10 * Math.log10((255 * 255) / m);
}

/**
 * LR-PSNR: PSNR between the MATLAB-bicubic downscale of `sr` (float path) by `scale` and `lr`.
 * Options as for psnr (default: quantised, no border).
 */
export function lrPsnr(sr: Planar, lr: Planar, scale: number, opts: PsnrOptions = {}): number {
  const down = downscale(sr, scale);
  return psnr(down, lr, opts);
}
