/** Reflection padding (bottom/right, as the published test script's `np.pad(..., 'reflect')`) and crops. */
import type { Planar } from '../io/image.js';

/** numpy 'reflect' index (the edge is not repeated): −1 → 1, n → n − 2; a single row/column repeats. */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const p = 2 * (n - 1);
  let m = i % p;
  if (m < 0) m += p;
  return m < n ? m : p - m;
}

/** Round `n` up to a multiple of `m`. */
export function ceilTo(n: number, m: number): number {
  return Math.ceil(n / m) * m;
}

/** Pad `img` at the bottom and right to `height`×`width` by reflection. */
export function padReflect(img: Planar, height: number, width: number): Planar {
  const { data, channels: C, height: H, width: W } = img;
  if (height < H || width < W) throw new Error(`Expected a padded size of at least ${W}×${H} but received ${width}×${height}`);
  if (height === H && width === W) return img;
  const out = new Float32Array(C * height * width);
  const xs = new Int32Array(width);
  for (let x = 0; x < width; x++) xs[x] = reflectIndex(x, W);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < height; y++) {
      const src = (c * H + reflectIndex(y, H)) * W;
      const dst = (c * height + y) * width;
      for (let x = 0; x < width; x++) out[dst + x] = data[src + xs[x]];
    }
  }
  return { data: out, channels: C, height, width };
}

/** The `height`×`width` window of `img` at (top, left). */
export function crop(img: Planar, top: number, left: number, height: number, width: number): Planar {
  const { data, channels: C, height: H, width: W } = img;
  if (top < 0 || left < 0 || top + height > H || left + width > W) {
    throw new Error(`Expected a crop inside ${W}×${H} but received ${width}×${height} at (${left}, ${top})`);
  }
  if (top === 0 && left === 0 && height === H && width === W) return img;
  const out = new Float32Array(C * height * width);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < height; y++) {
      const s = (c * H + top + y) * W + left;
      out.set(data.subarray(s, s + width), (c * height + y) * width);
    }
  }
  return { data: out, channels: C, height, width };
}

// clip01 lives in src/io/planar.ts (no sharp there: the web bundle imports it) so that training can use it too; re-exported for upscale/.
export { clip01 } from '../io/planar.js';
