import type { Planar } from '../io/image.js';

/** x·255, optionally rounded to 8 bits first: round(clip(x, 0, 1)·255). */
export function toScaled255(x: number, quantize: boolean): number {
  if (!quantize) return x * 255;
  if (!(x > 0)) return 0;
  if (x >= 1) return 255;
  return Math.round(x * 255);
}

export function checkSameSize(a: Planar, b: Planar, what: string, border = 0): void {
  for (const [img, n] of [
    [a, 'a'],
    [b, 'b'],
  ] as const) {
    if (!img || !(img.data instanceof Float32Array) || img.data.length !== img.channels * img.height * img.width) {
      throw new Error(`Expected a Planar image for ${what}(${n}) but received ${img === null ? 'null' : typeof img}`);
    }
  }
  if (a.channels !== b.channels || a.height !== b.height || a.width !== b.width) {
    throw new Error(`Expected images of the same size for ${what} but received ${a.channels}×${a.height}×${a.width} and ${b.channels}×${b.height}×${b.width}`);
  }
  if (!Number.isInteger(border) || border < 0 || 2 * border >= a.height || 2 * border >= a.width) {
    throw new Error(`Expected a border leaving a non-empty region of the ${a.height}×${a.width} images for border but received ${border}`);
  }
}
