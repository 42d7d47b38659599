/**
 * The JPEG quantisation constraint. A JPEG file stores, for every 8×8 block of its luma, DCT
 * coefficients quantised to multiples of its table: the true image's coefficient c lies within
 * ±Q/2 of the stored k·Q. Projecting an estimate's luma coefficients into those intervals (the
 * "quantisation constraint set", a convex set that contains the true image) can only bring the
 * estimate nearer the truth in luma; restoration uses it when the input is a JPEG file.
 *
 * Read here: the quantisation tables (DQT) and the frame header (SOF0–SOF2: size, components,
 * their sampling factors and tables). The luma is the first component.
 */
import type { Planar } from '../io/image.js';

/** Zig-zag position → natural (row-major) index. */
const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22,
  15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

export interface JpegTables {
  width: number;
  height: number;
  /** Luma quantisation table, natural order (row-major over the 8×8 frequencies). */
  luma: Int32Array;
  /** Components in the frame. */
  components: number;
}

/** The luma quantisation table of a baseline/extended/progressive JPEG, or null when `bytes` is no JPEG or lacks one. */
export function readJpegTables(bytes: Uint8Array): JpegTables | null {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  const tables = new Map<number, Int32Array>();
  let frame: { width: number; height: number; lumaTable: number; components: number } | null = null;
  let i = 2;
  while (i + 4 <= bytes.length) {
    if (bytes[i] !== 0xff) return null;
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      i += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break; // end of image / start of scan: the headers are read
    const len = (bytes[i + 2] << 8) | bytes[i + 3];
    const end = i + 2 + len;
    if (len < 2 || end > bytes.length) return null;
    if (marker === 0xdb) {
      let p = i + 4;
      while (p < end) {
        const pq = bytes[p] >> 4;
        const tq = bytes[p] & 15;
        p++;
        const t = new Int32Array(64);
        for (let k = 0; k < 64; k++) {
          if (pq === 0) t[ZIGZAG[k]] = bytes[p++];
          else {
            t[ZIGZAG[k]] = (bytes[p] << 8) | bytes[p + 1];
            p += 2;
          }
        }
        if (p > end) return null;
        tables.set(tq, t);
      }
    } else if (marker >= 0xc0 && marker <= 0xc2) {
      const height = (bytes[i + 5] << 8) | bytes[i + 6];
      const width = (bytes[i + 7] << 8) | bytes[i + 8];
      const nf = bytes[i + 9];
      if (nf < 1) return null;
      frame = { width, height, components: nf, lumaTable: bytes[i + 12] };
    }
    i = end;
  }
  if (!frame) return null;
  const luma = tables.get(frame.lumaTable);
  if (!luma || luma.some((v) => v <= 0)) return null;
  return { width: frame.width, height: frame.height, luma, components: frame.components };
}

/** The orthonormal 8-point DCT-II matrix (JPEG's FDCT is its 2-D form). */
const DCT = (() => {
  const m = new Float64Array(64);
  for (let u = 0; u < 8; u++) for (let x = 0; x < 8; x++) m[u * 8 + x] = (u === 0 ? Math.SQRT1_2 : 1) * 0.5 * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  return m;
})();

function dct8x8(block: Float64Array, out: Float64Array, inverse: boolean): void {
  const tmp = new Float64Array(64);
  // rows then columns: F = D·B·Dᵀ (forward), B = Dᵀ·F·D (inverse)
  for (let r = 0; r < 8; r++) {
    for (let u = 0; u < 8; u++) {
      let s = 0;
      for (let x = 0; x < 8; x++) s += (inverse ? DCT[x * 8 + u] : DCT[u * 8 + x]) * block[r * 8 + x];
      tmp[r * 8 + u] = s;
    }
  }
  for (let c = 0; c < 8; c++) {
    for (let v = 0; v < 8; v++) {
      let s = 0;
      for (let y = 0; y < 8; y++) s += (inverse ? DCT[y * 8 + v] : DCT[v * 8 + y]) * tmp[y * 8 + c];
      out[v * 8 + c] = s;
    }
  }
}

function luma255(img: Planar): Float64Array {
  const n = img.height * img.width;
  const d = img.data;
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = 255 * (0.299 * d[i] + 0.587 * d[n + i] + 0.114 * d[2 * n + i]);
  return y;
}

/**
 * Project the luma of `estimate` onto the JPEG's quantisation constraint set, the intervals being
 * centred on the coefficients of `decoded` (the JPEG as decoded) rounded to the table's steps.
 * Every full 8×8 block is projected (partial blocks at the right/bottom edge are left alone); the
 * correction is added to R, G and B alike, so the chroma is kept. Returns a new image and the
 * fraction of coefficients that were moved.
 */
export function projectJpegLuma(estimate: Planar, decoded: Planar, table: Int32Array): { image: Planar; moved: number } {
  if (estimate.width !== decoded.width || estimate.height !== decoded.height || estimate.channels !== 3 || decoded.channels !== 3) {
    throw new Error("Expected an RGB estimate of the decoded JPEG's size");
  }
  const { height: H, width: W } = estimate;
  const ye = luma255(estimate);
  const yd = luma255(decoded);
  const out = Float32Array.from(estimate.data);
  const n = H * W;
  const be = new Float64Array(64);
  const bd = new Float64Array(64);
  const fe = new Float64Array(64);
  const fd = new Float64Array(64);
  const back = new Float64Array(64);
  let moved = 0;
  let total = 0;
  for (let by = 0; by + 8 <= H; by += 8) {
    for (let bx = 0; bx + 8 <= W; bx += 8) {
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 8; x++) {
          be[y * 8 + x] = ye[(by + y) * W + bx + x] - 128;
          bd[y * 8 + x] = yd[(by + y) * W + bx + x] - 128;
        }
      }
      dct8x8(be, fe, false);
      dct8x8(bd, fd, false);
      let any = false;
      for (let k = 0; k < 64; k++) {
        const q = table[k];
        const c = Math.round(fd[k] / q) * q;
        const lo = c - q / 2;
        const hi = c + q / 2;
        total++;
        if (fe[k] < lo) {
          fe[k] = lo;
          any = true;
          moved++;
        } else if (fe[k] > hi) {
          fe[k] = hi;
          any = true;
          moved++;
        }
      }
      if (!any) continue;
      dct8x8(fe, back, true);
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 8; x++) {
          const p = (by + y) * W + bx + x;
          const delta = (back[y * 8 + x] + 128 - ye[p]) / 255;
          out[p] += delta;
          out[n + p] += delta;
          out[2 * n + p] += delta;
        }
      }
    }
  }
  return { image: { data: out, channels: 3, height: H, width: W }, moved: total ? moved / total : 0 };
}
