/**
 * Restoration at the image's own resolution with an SRFlow model: noise and JPEG artifacts.
 *
 * The degraded image y is its own HR: its bicubic downscale LR(y) averages most of the noise and
 * blocking away, and the flow encodes y given LR(y) into latents z = f(y | LR(y)). The flow was
 * trained so that natural detail encodes to latents of about unit variance; noise encodes to
 * channels of far larger energy, artifacts to structured ones. The latents are edited and the
 * image decoded against the same LR (SRFlow paper, sec. 4.4, latent-space normalisation):
 *
 *   1. per channel, a latent whose root mean square exceeds τ is scaled down to τ
 *      (normaliseLatents, mode 'shrink'): noise is pulled back to the level of natural detail;
 *   2. every latent is then scaled by a per-level factor (first split level, the rest): the
 *      finest latents carry most of the residual artifacts;
 *   3. decode, and repeat for several shifts of the image against the flow's 2^L-pixel grid
 *      (cycle spinning: the squeezes make the flow shift-variant, so each shift restores
 *      differently and their average has fewer artifacts, notably JPEG's 8×8 blocks);
 *   4. blend back a fraction of the input (the average loses some true detail);
 *   5. smooth the chroma with a guided filter steered by the luma (a classical step, not the
 *      model: JPEG's subsampled, coarsely quantised chroma is a large part of its error; off
 *      with `chroma: false`);
 *   6. when the input is a JPEG whose quantisation table is given (`jpeg`, from readJpegTables),
 *      project the luma onto the JPEG's quantisation constraint set (jpeg.ts): every 8×8 block's
 *      DCT coefficients back within half a step of what the file stores.
 *
 * `strength` s ∈ [0, 1] moves every step from doing nothing (s = 0: the input comes back,
 * exactly, up to float rounding) to the full setting (s = 1, the default). Large images are
 * processed in overlapping tiles with feathered blending (the latent statistics of step 1 are
 * per tile, i.e. local).
 */
import type { Planar } from '../io/image.js';
import { imresize } from '../data/bicubic.js';
import type { SRFlowModel } from '../models/api.js';
import { Tensor } from '../tensor/tensor.js';
import { sizeMultiple, abortError } from '../upscale/engine.js';
import { ceilTo, crop, reflectIndex } from '../upscale/pad.js';
import { axisWeights, planTiles } from '../upscale/tiles.js';
import { latentRms, normaliseLatents, scaleLatents } from './latents.js';
import { filterChroma } from './chroma.js';
import { projectJpegLuma, type JpegTables } from './jpeg.js';

/** The full-strength setting (s = 1); chosen on held-out photos, see docs/EDITING.md. */
export const RESTORE_FULL = {
  /** Step 1: rms every latent channel is shrunk to. */
  tau: 0.8,
  /** Step 2: factors for the first split level's latents and for the others. */
  levelFactors: [0.25, 0.75] as [number, number],
  /** Step 4: fraction of the input blended back. */
  blend: 0.3,
  /** Step 5: guided-filter radius and regularisation for the chroma. */
  chromaRadius: 4,
  chromaEps: 1e-3,
};

/** Shifts (rows, columns) of the cycle-spinning passes, in HR pixels. */
export const RESTORE_SHIFTS: readonly [number, number][] = [
  [0, 0],
  [4, 4],
  [2, 6],
  [6, 2],
];

export const DEFAULT_RESTORE_TILE = 256;
const TILE_OVERLAP = 32;

export interface RestoreOptions {
  /** 0 (nothing) … 1 (default, full). */
  strength?: number;
  /** Cycle-spinning passes, 1 … 4 (default 4): more is slower and smoother. */
  passes?: number;
  /** Tile side in pixels (default 256; rounded down to the model's multiple). */
  tile?: number;
  /** Step 5, the luma-guided chroma filter (default true). */
  chroma?: boolean;
  /** Step 6: the input's JPEG tables (readJpegTables of the file it was decoded from), for the quantisation constraint. */
  jpeg?: JpegTables | null;
  onProgress?: (p: { done: number; total: number }) => void;
  signal?: AbortSignal;
}

export interface RestoreReport {
  strength: number;
  passes: number;
  tau: number;
  levelFactors: number[];
  blend: number;
  /** Amount of the chroma filter (0 = off). */
  chroma: number;
  /** Step 6: whether the JPEG quantisation constraint was applied, and the fraction of luma DCT coefficients it moved. */
  jpegConstraint: boolean;
  jpegMoved: number;
  tiles: number;
  /** Root mean square of each latent before and after editing, averaged over tiles and passes. */
  latentRmsBefore: number[];
  latentRmsAfter: number[];
}

/** The setting for a strength: every step interpolates from identity (s = 0) to RESTORE_FULL. */
export function restoreSetting(strength: number): { tau: number; levelFactors: number[]; blend: number } {
  const s = strength;
  const f = RESTORE_FULL;
  // τ from "no shrink" (∞, expressed as a huge value) at s = 0 to f.tau at s = 1: shrink by τ/s
  const tau = s === 0 ? Infinity : f.tau / s;
  const levelFactors = f.levelFactors.map((v) => 1 - s * (1 - v));
  const blend = 1 - s * (1 - f.blend);
  return { tau, levelFactors, blend };
}

/** Reflect-pad by (dy, dx) at the top/left, then at the bottom/right up to multiples of q. */
function shiftPad(img: Planar, dy: number, dx: number, q: number): Planar {
  const H = ceilTo(img.height + dy, q);
  const W = ceilTo(img.width + dx, q);
  const { channels: C, height: h, width: w, data } = img;
  const out = new Float32Array(C * H * W);
  const xs = new Int32Array(W);
  for (let x = 0; x < W; x++) xs[x] = reflectIndex(x - dx, w);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      const src = (c * h + reflectIndex(y - dy, h)) * w;
      const dst = (c * H + y) * W;
      for (let x = 0; x < W; x++) out[dst + x] = data[src + xs[x]];
    }
  }
  return { data: out, channels: C, height: H, width: W };
}

/** One tile: the average over the shifted passes of decode(edit(encode(y | LR(y)))). */
function restoreTile(
  model: SRFlowModel,
  y: Planar,
  setting: ReturnType<typeof restoreSetting>,
  passes: number,
  stats: { before: number[]; after: number[]; n: number },
): Float32Array {
  const s = model.scale;
  const q = s * sizeMultiple(model);
  const acc = new Float32Array(y.data.length);
  for (let p = 0; p < passes; p++) {
    const [dy, dx] = RESTORE_SHIFTS[p];
    const hr = shiftPad(y, dy, dx, q);
    const lr = imresize(hr, 1 / s);
    const L = new Tensor(lr.data, [1, 3, lr.height, lr.width]);
    const { latents } = model.encode(new Tensor(hr.data, [1, 3, hr.height, hr.width]), L);
    let z = Number.isFinite(setting.tau) ? normaliseLatents(latents, setting.tau) : latents;
    z = z.map((t, i) => scaleLatents([t], setting.levelFactors[Math.min(i, 1)])[0]);
    const rb = latentRms(latents);
    const ra = latentRms(z);
    rb.forEach((v, i) => (stats.before[i] = (stats.before[i] ?? 0) + v));
    ra.forEach((v, i) => (stats.after[i] = (stats.after[i] ?? 0) + v));
    stats.n++;
    const sr = model.decode(L, z).sr.data as Float32Array;
    const out = crop({ data: sr, channels: 3, height: hr.height, width: hr.width }, dy, dx, y.height, y.width).data;
    for (let i = 0; i < acc.length; i++) acc[i] += out[i] / passes;
  }
  const b = setting.blend;
  for (let i = 0; i < acc.length; i++) acc[i] += b * (y.data[i] - acc[i]);
  return acc;
}

export function checkRestoreOptions(o: RestoreOptions): { strength: number; passes: number; tile: number } {
  const strength = o.strength ?? 1;
  if (!(typeof strength === 'number' && Number.isFinite(strength) && strength >= 0 && strength <= 1)) {
    throw new Error(`Expected a number from 0 to 1 for strength but received ${strength}`);
  }
  const passes = o.passes ?? RESTORE_SHIFTS.length;
  if (!(Number.isInteger(passes) && passes >= 1 && passes <= RESTORE_SHIFTS.length)) {
    throw new Error(`Expected an integer from 1 to ${RESTORE_SHIFTS.length} for passes but received ${passes}`);
  }
  const tile = o.tile ?? DEFAULT_RESTORE_TILE;
  if (!(Number.isInteger(tile) && tile >= 32)) throw new Error(`Expected an integer ≥ 32 for tile but received ${tile}`);
  if (o.chroma !== undefined && typeof o.chroma !== 'boolean') throw new Error(`Expected true or false for chroma but received ${JSON.stringify(o.chroma)}`);
  return { strength, passes, tile };
}

/**
 * Restore an RGB image (values in [0, 1]) at its own size. Returns the restored image (clipped to
 * [0, 1]) and a report of what was done.
 */
export async function restoreImage(model: SRFlowModel, img: Planar, opts: RestoreOptions = {}): Promise<{ image: Planar; report: RestoreReport }> {
  const { strength, passes, tile: tileWanted } = checkRestoreOptions(opts);
  if (img.channels !== 3) throw new Error(`Expected an RGB image (3 channels) but received ${img.channels}`);
  const s = model.scale;
  const q = s * sizeMultiple(model);
  if (img.height < s || img.width < s)
    throw new Error(`Expected an image of at least ${s}×${s} pixels (the model's scale) but received ${img.width}×${img.height}`);
  const setting = restoreSetting(strength);
  const nLevels = model.latentShapes([1, 3, q / s, q / s]).length;
  const report: RestoreReport = {
    strength,
    passes,
    tau: Number.isFinite(setting.tau) ? setting.tau : Infinity,
    levelFactors: setting.levelFactors,
    blend: setting.blend,
    chroma: opts.chroma === false ? 0 : strength,
    jpegConstraint: false,
    jpegMoved: 0,
    tiles: 1,
    latentRmsBefore: new Array(nLevels).fill(0),
    latentRmsAfter: new Array(nLevels).fill(0),
  };
  if (strength === 0) return { image: { ...img, data: Float32Array.from(img.data, (v) => (v > 0 ? (v < 1 ? v : 1) : 0)) }, report: { ...report, tiles: 0 } };
  const { height: H, width: W } = img;
  const tile = Math.max(q, Math.floor(tileWanted / q) * q);
  // tiles over the image (sides need not be multiples of q: each tile is padded on its own)
  const Hq = ceilTo(H, q);
  const Wq = ceilTo(W, q);
  const tiles = Hq <= tile && Wq <= tile ? null : planTiles(Hq, Wq, tile, Math.min(TILE_OVERLAP, tile / 2), q);
  const stats = { before: [] as number[], after: [] as number[], n: 0 };
  const tick = () => new Promise<void>((r) => setImmediate(r));
  let out: Float32Array;
  if (!tiles) {
    opts.onProgress?.({ done: 0, total: 1 });
    out = restoreTile(model, img, setting, passes, stats);
    opts.onProgress?.({ done: 1, total: 1 });
  } else {
    report.tiles = tiles.length;
    const acc = new Float32Array(3 * H * W);
    const wsum = new Float32Array(H * W);
    for (const t of tiles) {
      await tick();
      if (opts.signal?.aborted) throw abortError(opts.signal);
      // tiles are planned on the q-padded size; clamp them into the image
      const y0 = Math.min(t.y.start, Math.max(0, H - t.y.length));
      const x0 = Math.min(t.x.start, Math.max(0, W - t.x.length));
      const th = Math.min(t.y.length, H - y0);
      const tw = Math.min(t.x.length, W - x0);
      const part = crop(img, y0, x0, th, tw);
      const r = restoreTile(model, part, setting, passes, stats);
      const wy = axisWeights({ ...t.y, length: th }, 1);
      const wx = axisWeights({ ...t.x, length: tw }, 1);
      for (let yy = 0; yy < th; yy++) {
        for (let xx = 0; xx < tw; xx++) {
          const w = wy[yy] * wx[xx];
          const p = (y0 + yy) * W + x0 + xx;
          wsum[p] += w;
          for (let c = 0; c < 3; c++) acc[c * H * W + p] += w * r[(c * th + yy) * tw + xx];
        }
      }
      opts.onProgress?.({ done: t.index + 1, total: tiles.length });
    }
    for (let c = 0; c < 3; c++) for (let p = 0; p < H * W; p++) acc[c * H * W + p] /= wsum[p];
    out = acc;
  }
  const clip = (a: Float32Array) => {
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      a[i] = v > 0 ? (v < 1 ? v : 1) : 0;
    }
    return a;
  };
  clip(out);
  if (report.chroma > 0)
    out = clip(
      filterChroma({ data: out, channels: 3, height: H, width: W }, { radius: RESTORE_FULL.chromaRadius, eps: RESTORE_FULL.chromaEps, amount: report.chroma })
        .data,
    );
  if (opts.jpeg) {
    if (opts.jpeg.width !== W || opts.jpeg.height !== H)
      throw new Error(`Expected JPEG tables of a ${W}×${H} image but they are of ${opts.jpeg.width}×${opts.jpeg.height}`);
    const p = projectJpegLuma({ data: out, channels: 3, height: H, width: W }, img, opts.jpeg.luma);
    out = clip(p.image.data);
    report.jpegConstraint = true;
    report.jpegMoved = p.moved;
  }
  report.latentRmsBefore = stats.before.map((v) => v / stats.n);
  report.latentRmsAfter = stats.after.map((v) => v / stats.n);
  return { image: { data: out, channels: 3, height: H, width: W }, report };
}
