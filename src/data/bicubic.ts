/**
 * MATLAB-compatible bicubic `imresize`, as the published code makes its LR images with (specified in
 * ../shared/docs/srflow-model.md §5, beside the checkout; the list below is the whole behaviour).
 *
 * - cubic kernel with a = −0.5; when shrinking (s < 1) the kernel is widened to 4/s taps and scaled
 *   (`s·cubic(s·d)`, antialiasing);
 * - output size `ceil(s · n)` (or an explicit size, in which case s = out/in for that axis, like
 *   MATLAB's `imresize(A, [rows cols])`);
 * - output pixel x (1-based) samples input coordinate `u = x/s + 0.5·(1 − 1/s)`, taps
 *   `floor(u − w/2) + k`, k = 0..⌈w⌉+1, weights normalised to sum 1;
 * - half-sample symmetric boundary (index −1 → 0, n → n−1, period 2n);
 * - the axis with the smaller scale is resized first (ties: height first);
 * - accumulation in float64. Float path: no intermediate rounding (output stored as float32).
 *   8-bit path (`uint8: true`): the input holds 8-bit values v/255; it is first quantised to
 *   v = round(x·255) clipped to 0..255, and after *each* 1-D pass the result is rounded half to even
 *   and clipped to 0..255, like MATLAB / the published code on uint8 images; the output holds v/255.
 *
 * Weight/index tables are precomputed per axis and cached.
 */
import type { Planar } from '../io/image.js';
import { checkPlanar, checkPositiveInt } from '../is.js';

export type { Planar };

export interface ImresizeOptions {
  /** Explicit output height; the height axis then uses scale outHeight / inHeight. */
  outHeight?: number;
  /** Explicit output width; the width axis then uses scale outWidth / inWidth. */
  outWidth?: number;
  /** Treat the data as 8-bit values (v/255) and round half-to-even + clip after each pass. */
  uint8?: boolean;
  /** Antialiasing when shrinking (MATLAB default true). */
  antialiasing?: boolean;
}

/** An NCHW float32 batch. */
export interface BatchTensor {
  shape: number[];
  data: Float32Array;
}

/** The cubic convolution kernel with a = −0.5 (Keys), as in MATLAB. */
export function cubic(x: number): number {
  const ax = Math.abs(x);
  const ax2 = ax * ax;
  const ax3 = ax2 * ax;
  if (ax <= 1) return 1.5 * ax3 - 2.5 * ax2 + 1;
  if (ax <= 2) return -0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2;
  return 0;
}

/** Per-axis weight table: output o uses input indices idx[o*taps + k] with weights w[o*taps + k]. */
export interface AxisTable {
  inLength: number;
  outLength: number;
  taps: number;
  weights: Float64Array;
  indices: Int32Array;
}

const tableCache = new Map<string, AxisTable>();

/** Half-sample symmetric boundary (0-based): −1 → 0, −2 → 1, n → n−1, period 2n. */
function mirrorIndex(i: number, n: number): number {
  const p = 2 * n;
  let m = i % p;
  if (m < 0) m += p;
  return m < n ? m : p - 1 - m;
}

/** MATLAB's `contributions(in_length, out_length, scale, @cubic, 4, antialiasing)`. */
export function contributions(inLength: number, outLength: number, scale: number, antialiasing = true): AxisTable {
  const key = `${inLength}|${outLength}|${scale}|${antialiasing}`;
  const hit = tableCache.get(key);
  if (hit) return hit;
  const shrinkAA = scale < 1 && antialiasing;
  const kernelWidth = shrinkAA ? 4 / scale : 4;
  const taps = Math.ceil(kernelWidth) + 2;
  const weights = new Float64Array(outLength * taps);
  const indices = new Int32Array(outLength * taps);
  for (let o = 0; o < outLength; o++) {
    const x = o + 1; // 1-based output coordinate
    const u = x / scale + 0.5 * (1 - 1 / scale); // 1-based input coordinate
    const left = Math.floor(u - kernelWidth / 2);
    let sum = 0;
    for (let k = 0; k < taps; k++) {
      const ind = left + k; // 1-based
      const d = u - ind;
      const w = shrinkAA ? scale * cubic(scale * d) : cubic(d);
      weights[o * taps + k] = w;
      sum += w;
      indices[o * taps + k] = mirrorIndex(ind - 1, inLength);
    }
    for (let k = 0; k < taps; k++) weights[o * taps + k] /= sum;
  }
  const table: AxisTable = { inLength, outLength, taps, weights, indices };
  if (tableCache.size > 256) tableCache.clear();
  tableCache.set(key, table);
  return table;
}

/** Round half to even (banker's rounding), like numpy.round / MATLAB-style uint8 conversion used here. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function clip255(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resize one channel plane (float64, H×W) along one axis. `axis` 0 = height, 1 = width.
 * src has shape h×w; the result has the resized axis replaced by table.outLength.
 */
function resizeAxis(src: Float64Array, h: number, w: number, axis: 0 | 1, t: AxisTable, uint8: boolean): Float64Array {
  const { taps, weights, indices, outLength } = t;
  if (axis === 0) {
    const out = new Float64Array(outLength * w);
    for (let o = 0; o < outLength; o++) {
      const row = out.subarray(o * w, o * w + w);
      for (let k = 0; k < taps; k++) {
        const wt = weights[o * taps + k];
        if (wt === 0) continue;
        const base = indices[o * taps + k] * w;
        for (let x = 0; x < w; x++) row[x] += wt * src[base + x];
      }
      if (uint8) for (let x = 0; x < w; x++) row[x] = clip255(roundHalfEven(row[x]));
    }
    return out;
  }
  const out = new Float64Array(h * outLength);
  for (let y = 0; y < h; y++) {
    const sOff = y * w;
    const oOff = y * outLength;
    for (let o = 0; o < outLength; o++) {
      let acc = 0;
      const tb = o * taps;
      for (let k = 0; k < taps; k++) acc += weights[tb + k] * src[sOff + indices[tb + k]];
      out[oOff + o] = uint8 ? clip255(roundHalfEven(acc)) : acc;
    }
  }
  return out;
}

function outSize(n: number, scale: number): number {
  // Guard against 0.25·64 = 16.000000000000004-style drift before ceil.
  const v = scale * n;
  const r = Math.round(v);
  return Math.abs(v - r) < 1e-9 * Math.max(1, v) ? r : Math.ceil(v);
}

/**
 * MATLAB-compatible bicubic resize of a planar CHW float32 image by `scale` (both axes).
 * See the module comment for the exact definition of the float and 8-bit paths.
 */
export function imresize(img: Planar, scale: number, opts: ImresizeOptions = {}): Planar {
  checkPlanar(img, 'img');
  const { channels: C, height: H, width: W } = img;
  const uint8 = opts.uint8 ?? false;
  const aa = opts.antialiasing ?? true;
  // per axis: the requested output size (the scale then out/in), else `scale`
  const axis = (outOpt: number | undefined, name: string, n: number): [number, number] => {
    if (outOpt !== undefined) {
      checkPositiveInt(outOpt, name);
      return [outOpt, outOpt / n];
    }
    if (!(Number.isFinite(scale) && scale > 0)) throw new Error(`Expected a positive finite number for scale but received ${scale}`);
    return [outSize(n, scale), scale];
  };
  const [outH, sH] = axis(opts.outHeight, 'outHeight', H);
  const [outW, sW] = axis(opts.outWidth, 'outWidth', W);
  const tH = contributions(H, outH, sH, aa);
  const tW = contributions(W, outW, sW, aa);
  const heightFirst = sH <= sW;
  const out = new Float32Array(C * outH * outW);
  const plane = new Float64Array(H * W);
  for (let c = 0; c < C; c++) {
    const src = img.data.subarray(c * H * W, (c + 1) * H * W);
    if (uint8) for (let i = 0; i < H * W; i++) plane[i] = clip255(Math.round(src[i] * 255));
    else for (let i = 0; i < H * W; i++) plane[i] = src[i];
    let res: Float64Array;
    if (heightFirst) {
      const a = resizeAxis(plane, H, W, 0, tH, uint8);
      res = resizeAxis(a, outH, W, 1, tW, uint8);
    } else {
      const a = resizeAxis(plane, H, W, 1, tW, uint8);
      res = resizeAxis(a, H, outW, 0, tH, uint8);
    }
    const dst = out.subarray(c * outH * outW, (c + 1) * outH * outW);
    if (uint8) for (let i = 0; i < res.length; i++) dst[i] = res[i] / 255;
    else for (let i = 0; i < res.length; i++) dst[i] = res[i];
  }
  return { data: out, channels: C, height: outH, width: outW };
}

function checkFactor(factor: number, name: string): void {
  if (!(Number.isFinite(factor) && factor > 0)) throw new Error(`Expected a positive finite number for ${name} but received ${factor}`);
}

/** MATLAB bicubic downscale by an integer (or any positive) factor: imresize(img, 1/factor). */
export function downscale(img: Planar, factor: number, opts: Omit<ImresizeOptions, 'outHeight' | 'outWidth'> = {}): Planar {
  checkFactor(factor, 'factor');
  return imresize(img, 1 / factor, opts);
}

/**
 * The bicubic SR baseline: MATLAB bicubic upscale by `factor` (float path, not clipped; metrics
 * clip/quantise when they compare).
 */
export function upscaleBicubic(img: Planar, factor: number, opts: Omit<ImresizeOptions, 'outHeight' | 'outWidth'> = {}): Planar {
  checkFactor(factor, 'factor');
  return imresize(img, factor, opts);
}

/** imresize applied to each image of an NCHW float32 batch. */
export function imresizeBatch(batch: BatchTensor, scale: number, opts: ImresizeOptions = {}): BatchTensor {
  if (!batch || batch.shape.length !== 4) throw new Error(`Expected an NCHW shape [N,C,H,W] for batch.shape but received [${batch?.shape?.join(',')}]`);
  const [N, C, H, W] = batch.shape;
  const per = C * H * W;
  if (batch.data.length !== N * per) throw new Error(`Expected ${N * per} values for batch.data but received ${batch.data.length}`);
  let out: Float32Array | null = null;
  let oh = 0;
  let ow = 0;
  for (let n = 0; n < N; n++) {
    const r = imresize({ data: batch.data.subarray(n * per, (n + 1) * per), channels: C, height: H, width: W }, scale, opts);
    if (!out) {
      oh = r.height;
      ow = r.width;
      out = new Float32Array(N * C * oh * ow);
    }
    out.set(r.data, n * C * oh * ow);
  }
  if (!out) {
    const probe = imresize({ data: new Float32Array(C * H * W), channels: C, height: H, width: W }, scale, opts);
    return { shape: [0, C, probe.height, probe.width], data: new Float32Array(0) };
  }
  return { shape: [N, C, oh, ow], data: out };
}

/** Downscale each image of an NCHW batch by `factor` (MATLAB bicubic). */
export function downscaleBatch(batch: BatchTensor, factor: number, opts: Omit<ImresizeOptions, 'outHeight' | 'outWidth'> = {}): BatchTensor {
  checkFactor(factor, 'factor');
  return imresizeBatch(batch, 1 / factor, opts);
}
