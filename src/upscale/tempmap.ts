/**
 * Spatial maps over the latents: a grayscale map of any size (a temperature map, an edit mask)
 * brought to the resolution of every latent level.
 *
 * The map is resampled to the output size (h·s × w·s), separably: linear interpolation when
 * enlarging, the exact area average when shrinking (the weights are non-negative, so values stay
 * inside the map's range and a black region stays exactly 0 away from its border), padded by reflection to the padded output (as the
 * engine pads the LR image), and averaged over each latent cell's footprint: a latent of level ℓ
 * with H_ℓ rows covers HS / H_ℓ output rows per cell.
 *
 * No image decoding here (the browser's worker bundles this module): see mapfile.ts.
 */
import type { Planar } from '../io/image.js';
import { padReflect } from './pad.js';

/** A one-channel map, values in [0, 1] (CHW with C = 1, so planar and interleaved agree). */
export type Map1 = Planar;

/** Check a one-channel map: finite values in [0, 1]. Throws naming `name`. */
export function checkMap(map: Map1, name = 'map'): void {
  if (!map || !(map.data instanceof Float32Array) || map.channels !== 1) {
    throw new Error(`Expected a one-channel map { data: Float32Array, channels: 1, height, width } for ${name}`);
  }
  if (!(Number.isInteger(map.height) && Number.isInteger(map.width) && map.height >= 1 && map.width >= 1) || map.data.length !== map.height * map.width) {
    throw new Error(`Expected ${name} to be at least 1×1 with height·width values but received ${map.width}×${map.height} with ${map.data.length} values`);
  }
  for (let i = 0; i < map.data.length; i++) {
    const v = map.data[i];
    if (!(v >= 0 && v <= 1)) throw new Error(`Expected values in [0, 1] for ${name} but found ${v} at pixel ${i}`);
  }
}

/** Luma (Rec. 601) of an RGB planar image as a one-channel map; a one-channel image is copied. */
export function lumaMap(img: Planar): Map1 {
  const n = img.height * img.width;
  const out = new Float32Array(n);
  if (img.channels === 1) out.set(img.data.subarray(0, n));
  else if (img.channels >= 3) {
    const d = img.data;
    for (let i = 0; i < n; i++) {
      const v = 0.299 * d[i] + 0.587 * d[n + i] + 0.114 * d[2 * n + i];
      out[i] = v > 0 ? (v < 1 ? v : 1) : 0;
    }
  } else throw new Error(`Expected a 1- or 3-channel image for a map but received ${img.channels} channels`);
  return { data: out, channels: 1, height: img.height, width: img.width };
}

/**
 * Weights of one axis: output o takes Σ w·in[idx]. Enlarging: linear interpolation between pixel
 * centres (edges held). Shrinking: the exact area average of the input over the output pixel.
 */
function axisTable(inLen: number, outLen: number): { idx: Int32Array[]; w: Float32Array[] } {
  const scale = inLen / outLen;
  const idx: Int32Array[] = [];
  const w: Float32Array[] = [];
  for (let o = 0; o < outLen; o++) {
    const is: number[] = [];
    const ws: number[] = [];
    if (scale <= 1) {
      const c = Math.min(inLen - 1, Math.max(0, (o + 0.5) * scale - 0.5));
      const i0 = Math.floor(c);
      const t = c - i0;
      is.push(i0);
      ws.push(1 - t);
      if (t > 0 && i0 + 1 < inLen) {
        is.push(i0 + 1);
        ws.push(t);
      }
    } else {
      const a = o * scale;
      const b = (o + 1) * scale;
      for (let i = Math.floor(a); i < Math.min(inLen, Math.ceil(b)); i++) {
        const ov = Math.min(b, i + 1) - Math.max(a, i);
        if (ov > 0) {
          is.push(i);
          ws.push(ov / scale);
        }
      }
    }
    idx.push(Int32Array.from(is));
    w.push(Float32Array.from(ws));
  }
  return { idx, w };
}

/** Resample a one-channel map to height × width (see the module comment). */
export function resizeMap(map: Map1, height: number, width: number): Map1 {
  if (map.height === height && map.width === width) return map;
  const { height: H, width: W, data } = map;
  const ty = axisTable(H, height);
  const tx = axisTable(W, width);
  const rows = new Float32Array(height * W);
  for (let o = 0; o < height; o++) {
    const is = ty.idx[o];
    const ws = ty.w[o];
    const dst = o * W;
    for (let k = 0; k < is.length; k++) {
      const src = is[k] * W;
      const wk = ws[k];
      for (let x = 0; x < W; x++) rows[dst + x] += wk * data[src + x];
    }
  }
  const out = new Float32Array(height * width);
  for (let y = 0; y < height; y++) {
    const src = y * W;
    const dst = y * width;
    for (let o = 0; o < width; o++) {
      const is = tx.idx[o];
      const ws = tx.w[o];
      let s = 0;
      for (let k = 0; k < is.length; k++) s += ws[k] * rows[src + is[k]];
      out[dst + o] = s > 0 ? (s < 1 ? s : 1) : 0;
    }
  }
  return { data: out, channels: 1, height, width };
}

/** Average over f×f cells (height and width divisible by f). */
export function poolMap(map: Map1, f: number): Map1 {
  if (f === 1) return map;
  const { height: H, width: W, data } = map;
  if (H % f || W % f) throw new Error(`internal: cannot pool ${W}×${H} by ${f}`);
  const h = H / f;
  const w = W / f;
  const out = new Float32Array(h * w);
  const inv = 1 / (f * f);
  for (let y = 0; y < H; y++) {
    const dst = Math.floor(y / f) * w;
    const src = y * W;
    for (let x = 0; x < W; x++) out[dst + Math.floor(x / f)] += data[src + x];
  }
  for (let i = 0; i < out.length; i++) out[i] *= inv;
  return { data: out, channels: 1, height: h, width: w };
}

/**
 * The map at every latent level: `shapes` are the latent shapes [B, C, H_ℓ, W_ℓ] of the padded
 * image whose output is `paddedHeight` × `paddedWidth`; the map covers the unpadded output
 * `height` × `width` (the top-left part), the rest is reflected.
 */
export function levelMaps(
  map: Map1,
  shapes: readonly (readonly number[])[],
  out: { height: number; width: number; paddedHeight?: number; paddedWidth?: number },
): Map1[] {
  const HS = out.paddedHeight ?? out.height;
  const WS = out.paddedWidth ?? out.width;
  const full = padReflect(resizeMap(map, out.height, out.width), HS, WS);
  return shapes.map((s) => {
    const f = HS / s[2];
    if (!Number.isInteger(f) || WS / s[3] !== f) throw new Error(`Expected latent shapes that divide the ${WS}×${HS} output but received [${s}]`);
    return poolMap(full, f);
  });
}

/** Multiply CHW values (`channels` planes of the window) by the window of a level map at (y0, x0). */
export function multiplyByMap(values: Float32Array, win: { channels: number; height: number; width: number; y0: number; x0: number }, map: Map1): void {
  const { channels: C, height: H, width: W, y0, x0 } = win;
  if (y0 < 0 || x0 < 0 || y0 + H > map.height || x0 + W > map.width) {
    throw new Error(`internal: window ${W}×${H} at (${x0}, ${y0}) outside the ${map.width}×${map.height} map`);
  }
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      const o = (c * H + y) * W;
      const m = (y0 + y) * map.width + x0;
      for (let x = 0; x < W; x++) values[o + x] *= map.data[m + x];
    }
  }
}
