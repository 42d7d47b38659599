/**
 * Tile layout for large images: LR tiles of side `tile` (a multiple of the model's size multiple
 * `m`) placed evenly with at least `overlap` LR pixels shared between neighbours, and feathered
 * (linear) blend weights for their SR outputs.
 *
 * Blend weight along an axis, on a side that has a neighbour sharing `o` HR pixels: 0 over the
 * first o/4 pixels from the tile edge (the part most affected by the tile's zero-padded border,
 * discarded), then a linear ramp to 1 at o − o/4. The two ramps of a shared band sum to 1, so an
 * image region covered by two tiles is a cross-fade of them. A weight never drops below 1e-6 so
 * that every pixel is covered. 2-D weights are the product of the two axes' weights; the SR image
 * is Σ w·tile / Σ w.
 */

export interface AxisTile {
  /** Start and length in LR pixels. */
  start: number;
  length: number;
  /** LR pixels shared with the previous / next tile (0 at the image edge). */
  before: number;
  after: number;
}

export interface Tile {
  y: AxisTile;
  x: AxisTile;
  index: number;
}

/** Round down to a multiple of m (at least m). */
export function floorTo(n: number, m: number): number {
  return Math.max(m, Math.floor(n / m) * m);
}

/** Tiles along one axis of length n (a multiple of m). */
export function planAxis(n: number, tile: number, overlap: number, m: number): AxisTile[] {
  if (n <= tile) return [{ start: 0, length: n, before: 0, after: 0 }];
  const T = tile;
  const O = Math.min(overlap, T - m);
  for (let count = Math.max(2, Math.ceil((n - O) / Math.max(m, T - O))); ; count++) {
    const starts: number[] = [];
    const step = (n - T) / (count - 1);
    for (let k = 0; k < count; k++) starts.push(k === count - 1 ? n - T : Math.round((k * step) / m) * m);
    let ok = true;
    for (let k = 1; k < count; k++) if (starts[k - 1] + T - starts[k] < O || starts[k] <= starts[k - 1]) ok = false;
    if (ok || count > n) {
      return starts.map((s, k) => ({
        start: s,
        length: T,
        before: k > 0 ? starts[k - 1] + T - s : 0,
        after: k < count - 1 ? s + T - starts[k + 1] : 0,
      }));
    }
  }
}

/** Every tile of an H×W LR image (multiples of m), row by row. */
export function planTiles(H: number, W: number, tile: number, overlap: number, m: number): Tile[] {
  const ys = planAxis(H, tile, overlap, m);
  const xs = planAxis(W, tile, overlap, m);
  const out: Tile[] = [];
  for (const y of ys) for (const x of xs) out.push({ y, x, index: out.length });
  return out;
}

/** Blend weights along one axis for a tile, in HR pixels (`scale` HR pixels per LR pixel). */
export function axisWeights(t: AxisTile, scale: number): Float32Array {
  const n = t.length * scale;
  const w = new Float32Array(n).fill(1);
  const side = (o: number, at: (i: number) => number) => {
    if (o <= 0) return;
    const band = o * scale;
    const dead = Math.floor(band / 4);
    const ramp = band - 2 * dead;
    for (let i = 0; i < band && i < n; i++) {
      const v = Math.min(1, Math.max(0, (i - dead + 0.5) / ramp));
      const j = at(i);
      w[j] = Math.min(w[j], v);
    }
  };
  side(t.before, (i) => i);
  side(t.after, (i) => n - 1 - i);
  for (let i = 0; i < n; i++) if (w[i] < 1e-6) w[i] = 1e-6;
  return w;
}
