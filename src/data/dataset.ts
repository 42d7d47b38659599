/**
 * Training and validation data.
 *
 * `ImageFolderDataset` lists PNG/JPEG/WebP files in a folder (sorted by name), decodes them once
 * (kept in memory as 8-bit planar RGB unless `cacheInMemory: false`), and samples batches of
 * random HR patches with random horizontal flips and 90° rotations. The LR patch is either made on
 * the fly with MATLAB bicubic from the 8-bit HR patch (the `uint8` path of `imresize`: the
 * published LR data was made from 8-bit crops), so `lr = imresize(hr, 1/scale, { uint8: true })`
 * holds for every sample, or cropped from a paired LR folder (crop positions aligned to `scale`).
 *
 * All randomness comes from the `rng` argument (uniform [0, 1)); per sample the draws are, in
 * order: image index, crop row, crop column, flip (if enabled), rotation (if enabled), then, when
 * `synthetic` > 0, whether the patch is synthetic, its mode (crisp LR, over the photo patch, alone),
 * and the synthetic patch's own draws (data/synthetic.ts). `Rng` below is a seeded generator with saveable
 * state for reproducible, resumable training.
 *
 * Several folders can be given: their images are pooled (each image equally likely).
 */
import { promises as fsp } from 'node:fs';
import { extname, join, basename } from 'node:path';
import { loadImage, toUint8Value } from '../io/image.js';
import type { Planar } from '../io/image.js';
import { imresize } from './bicubic.js';
import { checkPositiveInt } from '../is.js';
import { drawSynthetic } from './synthetic.js';

import { Rng, mulberry32, type RandomFn } from '../tensor/random.js';

export { Rng, mulberry32, type RandomFn };

// ---------------------------------------------------------------------------------------------
// Dataset

export interface AugmentOptions {
  /** Random horizontal flip with probability 1/2. */
  flip?: boolean;
  /** Random rotation by k·90°, k uniform in {0, 1, 2, 3}. */
  rot90?: boolean;
}

export interface DatasetOptions {
  /** Integer downscaling factor. */
  scale: number;
  /** HR patch size (a multiple of `scale`). */
  patchSize: number;
  augment?: AugmentOptions;
  /** Folder of paired LR images (same name stem, optionally followed by `x<scale>`). */
  lrDir?: string;
  /** Skip images whose shorter side is below this (default: patchSize; never below patchSize). */
  minSize?: number;
  /** Keep decoded images in memory (default true). `sampleBatch` needs it; `sampleBatchAsync` does not. */
  cacheInMemory?: boolean;
  /** Receives one message per skipped file. */
  onWarning?: (message: string) => void;
  /**
   * Fraction of patches replaced by synthetic non-photographic content (data/synthetic.ts), in
   * [0, 1]; default 0. Of those, 30 % are drawn crisp at LR size — the LR is that drawing and the HR
   * its nearest-neighbour enlargement (pixel art, screenshots, a logo at its own size: LR content
   * sharper than any bicubic downscale makes) —, 17.5 % are drawn over the photo patch (logos on
   * photographs), and the rest alone at HR size, with the LR made by MATLAB bicubic (also for
   * paired datasets).
   */
  synthetic?: number;
}

/** An NCHW float32 batch. */
export interface Batch {
  hr: { shape: [number, number, number, number]; data: Float32Array };
  lr: { shape: [number, number, number, number]; data: Float32Array };
}

interface Entry {
  name: string;
  path: string;
  width: number;
  height: number;
  lrPath?: string;
  lrWidth?: number;
  lrHeight?: number;
  /** 8-bit planar RGB (3×H×W) when cached. */
  hr?: Uint8Array;
  lr?: Uint8Array;
}

interface Draw {
  index: number;
  y: number;
  x: number;
  flip: boolean;
  rot: number;
}

/** Shares of the synthetic patches: drawn crisp at LR size (HR = its nearest enlargement), drawn over the photo patch; the rest are drawn at HR size alone. */
const CRISP_LR = 0.3;
const OVER_PHOTO = 0.175;

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp'];

async function listImages(dir: string, what: string): Promise<string[]> {
  let names: string[];
  try {
    const st = await fsp.stat(dir);
    if (!st.isDirectory()) throw new Error(`Cannot open ${what} ${dir}: it is not a folder`);
    names = await fsp.readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new Error(`Cannot open ${what} ${dir}: folder not found`);
    throw e;
  }
  return names.filter((n) => !n.startsWith('.') && IMAGE_EXTENSIONS.includes(extname(n).toLowerCase())).sort();
}

function stem(name: string): string {
  return basename(name, extname(name));
}

/** 8-bit planar RGB of a loaded image. */
function toUint8Planar(rgb: Planar): Uint8Array {
  const out = new Uint8Array(rgb.data.length);
  for (let i = 0; i < out.length; i++) out[i] = toUint8Value(rgb.data[i]);
  return out;
}

async function loadUint8(path: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const img = await loadImage(path);
  return { data: toUint8Planar(img.rgb), width: img.width, height: img.height };
}

/**
 * Copy a size×size window at (y0, x0) of a 3×H×W uint8 plane into dst (float32, v/255, at dstOff),
 * flipped horizontally (first) and rotated by rot·90° counter-clockwise (like numpy.rot90).
 */
function cropAugment(
  src: Uint8Array,
  H: number,
  W: number,
  y0: number,
  x0: number,
  size: number,
  flip: boolean,
  rot: number,
  dst: Float32Array,
  dstOff: number,
): void {
  const last = size - 1;
  for (let c = 0; c < 3; c++) {
    const sBase = c * H * W;
    const dBase = dstOff + c * size * size;
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        let a: number;
        let b: number;
        switch (rot) {
          case 1:
            a = j;
            b = last - i;
            break;
          case 2:
            a = last - i;
            b = last - j;
            break;
          case 3:
            a = last - j;
            b = i;
            break;
          default:
            a = i;
            b = j;
        }
        if (flip) b = last - b;
        dst[dBase + i * size + j] = src[sBase + (y0 + a) * W + x0 + b] / 255;
      }
    }
  }
}

export class ImageFolderDataset {
  /** The first folder (see `dirs`). */
  readonly dir: string;
  readonly dirs: string[];
  readonly synthetic: number;
  readonly scale: number;
  readonly patchSize: number;
  readonly augment: Required<AugmentOptions>;
  readonly paired: boolean;
  readonly cacheInMemory: boolean;
  /** Files that were skipped (corrupt, too small, no LR pair, ...). */
  readonly skipped: number;
  private readonly entries: Entry[];

  private constructor(dirs: string[], opts: DatasetOptions, entries: Entry[], skipped: number) {
    this.dir = dirs[0];
    this.dirs = dirs;
    this.synthetic = opts.synthetic ?? 0;
    this.scale = opts.scale;
    this.patchSize = opts.patchSize;
    this.augment = { flip: opts.augment?.flip ?? false, rot90: opts.augment?.rot90 ?? false };
    this.paired = opts.lrDir !== undefined;
    this.cacheInMemory = opts.cacheInMemory ?? true;
    this.entries = entries;
    this.skipped = skipped;
  }

  /** Number of usable images. */
  get length(): number {
    return this.entries.length;
  }

  /** File names of the usable images, sorted. */
  get names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /** Sizes of the usable images. */
  get sizes(): { name: string; width: number; height: number }[] {
    return this.entries.map((e) => ({ name: e.name, width: e.width, height: e.height }));
  }

  static async open(dirOrDirs: string | string[], opts: DatasetOptions): Promise<ImageFolderDataset> {
    const dirs = Array.isArray(dirOrDirs) ? dirOrDirs : [dirOrDirs];
    if (dirs.length === 0) throw new Error('Expected at least one folder path for dir but received an empty list');
    for (const dir of dirs) if (typeof dir !== 'string' || !dir) throw new Error(`Expected a folder path for dir but received ${String(dir)}`);
    if (!opts || typeof opts !== 'object') throw new Error(`Expected an options object for opts but received ${String(opts)}`);
    if (opts.synthetic !== undefined && !(typeof opts.synthetic === 'number' && opts.synthetic >= 0 && opts.synthetic <= 1)) {
      throw new Error(`Expected a fraction in [0, 1] for synthetic but received ${String(opts.synthetic)}`);
    }
    checkPositiveInt(opts.scale, 'scale');
    checkPositiveInt(opts.patchSize, 'patchSize');
    if (opts.patchSize % opts.scale !== 0) {
      throw new Error(`Expected a multiple of scale ${opts.scale} for patchSize but received ${opts.patchSize}`);
    }
    if (opts.minSize !== undefined) checkPositiveInt(opts.minSize, 'minSize');
    const minSide = Math.max(opts.patchSize, opts.minSize ?? 0);
    const cache = opts.cacheInMemory ?? true;
    const warn = opts.onWarning ?? (() => undefined);
    const files: { dir: string; name: string }[] = [];
    for (const dir of dirs) {
      const names = await listImages(dir, 'dataset folder');
      if (names.length === 0) {
        throw new Error(`Cannot open dataset folder ${dir}: no images found (looked for ${IMAGE_EXTENSIONS.join(', ')})`);
      }
      for (const name of names) files.push({ dir, name });
    }
    const dir = dirs.join(', ');
    let lrByStem: Map<string, string> | null = null;
    if (opts.lrDir !== undefined) {
      const lrFiles = await listImages(opts.lrDir, 'LR folder');
      lrByStem = new Map(lrFiles.map((n) => [stem(n), n]));
    }
    const scale = opts.scale;
    const p = opts.patchSize / scale;
    const entries: Entry[] = [];
    let skipped = 0;
    for (const { dir: folder, name } of files) {
      const path = join(folder, name);
      let hr;
      try {
        hr = await loadUint8(path);
      } catch (e) {
        warn(`Skipping ${name}: ${(e as Error).message}`);
        skipped++;
        continue;
      }
      if (hr.width < minSide || hr.height < minSide) {
        warn(`Skipping ${name}: ${hr.width}×${hr.height} is smaller than the minimum ${minSide}×${minSide}`);
        skipped++;
        continue;
      }
      const entry: Entry = { name, path, width: hr.width, height: hr.height };
      if (cache) entry.hr = hr.data;
      if (lrByStem && opts.lrDir !== undefined) {
        const s = stem(name);
        const lrName = lrByStem.get(s) ?? lrByStem.get(`${s}x${scale}`) ?? lrByStem.get(`${s}_x${scale}`);
        if (!lrName) {
          warn(`Skipping ${name}: no LR image with the same name in ${opts.lrDir}`);
          skipped++;
          continue;
        }
        const lrPath = join(opts.lrDir, lrName);
        let lr;
        try {
          lr = await loadUint8(lrPath);
        } catch (e) {
          warn(`Skipping ${name}: its LR image ${lrName} is unusable: ${(e as Error).message}`);
          skipped++;
          continue;
        }
        const okW = lr.width === Math.floor(hr.width / scale) || lr.width === Math.ceil(hr.width / scale);
        const okH = lr.height === Math.floor(hr.height / scale) || lr.height === Math.ceil(hr.height / scale);
        if (!okW || !okH || lr.width < p || lr.height < p) {
          warn(`Skipping ${name}: its LR image ${lrName} is ${lr.width}×${lr.height}, expected about ${hr.width / scale}×${hr.height / scale} (HR / ${scale})`);
          skipped++;
          continue;
        }
        entry.lrPath = lrPath;
        entry.lrWidth = lr.width;
        entry.lrHeight = lr.height;
        if (cache) entry.lr = lr.data;
      }
      entries.push(entry);
    }
    if (entries.length === 0) {
      throw new Error(`Cannot open dataset folder ${dir}: no usable images, all ${files.length} were skipped (see the warnings)`);
    }
    return new ImageFolderDataset(dirs, opts, entries, skipped);
  }

  /** Draw one sample's random choices (the fixed draw order documented at the top). */
  private draw(rng: RandomFn): Draw {
    const n = this.entries.length;
    const index = Math.min(n - 1, Math.floor(rng() * n));
    const e = this.entries[index];
    const P = this.patchSize;
    const s = this.scale;
    let y: number;
    let x: number;
    if (this.paired) {
      const p = P / s;
      const maxLy = Math.min(e.lrHeight! - p, Math.floor((e.height - P) / s));
      const maxLx = Math.min(e.lrWidth! - p, Math.floor((e.width - P) / s));
      y = Math.min(maxLy, Math.floor(rng() * (maxLy + 1))) * s;
      x = Math.min(maxLx, Math.floor(rng() * (maxLx + 1))) * s;
    } else {
      y = Math.min(e.height - P, Math.floor(rng() * (e.height - P + 1)));
      x = Math.min(e.width - P, Math.floor(rng() * (e.width - P + 1)));
    }
    const flip = this.augment.flip ? rng() < 0.5 : false;
    const rot = this.augment.rot90 ? Math.min(3, Math.floor(rng() * 4)) : 0;
    return { index, y, x, flip, rot };
  }

  private fill(d: Draw, hrData: Uint8Array, lrData: Uint8Array | undefined, out: Batch, b: number, rng: RandomFn): void {
    const e = this.entries[d.index];
    const P = this.patchSize;
    const s = this.scale;
    const p = P / s;
    cropAugment(hrData, e.height, e.width, d.y, d.x, P, d.flip, d.rot, out.hr.data, b * 3 * P * P);
    let synthetic = false;
    if (this.synthetic > 0 && rng() < this.synthetic) {
      synthetic = true;
      const mode = rng();
      const off = b * 3 * P * P;
      if (mode < CRISP_LR) {
        // crisp LR content (pixel art, screenshots, a logo drawn at its own size): drawn at LR size
        // and kept as the LR; the HR is its nearest-neighbour enlargement
        const lr = out.lr.data.subarray(b * 3 * p * p, (b + 1) * 3 * p * p);
        drawSynthetic(rng, p, lr);
        for (let c = 0; c < 3; c++)
          for (let y = 0; y < P; y++)
            for (let x = 0; x < P; x++) out.hr.data[off + (c * P + y) * P + x] = lr[(c * p + Math.floor(y / s)) * p + Math.floor(x / s)];
        return;
      }
      drawSynthetic(rng, P, out.hr.data, off, mode < CRISP_LR + OVER_PHOTO ? out.hr.data.slice(off, off + 3 * P * P) : undefined);
    }
    if (this.paired && !synthetic) {
      cropAugment(lrData!, e.lrHeight!, e.lrWidth!, d.y / s, d.x / s, p, d.flip, d.rot, out.lr.data, b * 3 * p * p);
    } else {
      const hr: Planar = { data: out.hr.data.subarray(b * 3 * P * P, (b + 1) * 3 * P * P), channels: 3, height: P, width: P };
      const lr = imresize(hr, 1 / s, { uint8: true, outHeight: p, outWidth: p });
      out.lr.data.set(lr.data, b * 3 * p * p);
    }
  }

  private alloc(batch: number): Batch {
    checkPositiveInt(batch, 'batch');
    const P = this.patchSize;
    const p = P / this.scale;
    return {
      hr: { shape: [batch, 3, P, P], data: new Float32Array(batch * 3 * P * P) },
      lr: { shape: [batch, 3, p, p], data: new Float32Array(batch * 3 * p * p) },
    };
  }

  /** A batch of random patches from the in-memory images (needs `cacheInMemory`). */
  sampleBatch(batch: number, rng: RandomFn): Batch {
    if (!this.cacheInMemory) {
      throw new Error(`Expected a dataset opened with cacheInMemory: true for sampleBatch but received cacheInMemory: false (use sampleBatchAsync)`);
    }
    const out = this.alloc(batch);
    for (let b = 0; b < batch; b++) {
      const d = this.draw(rng);
      const e = this.entries[d.index];
      this.fill(d, e.hr!, e.lr, out, b, rng);
    }
    return out;
  }

  /** Like sampleBatch (same random stream, same result), decoding files on demand when not cached. */
  async sampleBatchAsync(batch: number, rng: RandomFn): Promise<Batch> {
    if (this.cacheInMemory) return this.sampleBatch(batch, rng);
    const out = this.alloc(batch);
    for (let b = 0; b < batch; b++) {
      const d = this.draw(rng);
      const e = this.entries[d.index];
      const hr = await loadUint8(e.path);
      const lr = e.lrPath ? await loadUint8(e.lrPath) : undefined;
      this.fill(d, hr.data, lr?.data, out, b, rng);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Validation set

export interface ValidationImage {
  /** File name without extension. */
  name: string;
  hr: Planar;
  lr: Planar;
}

/**
 * Load every image of a folder for validation: HR = the centre crop of size `crop` (clamped to the
 * image, then to a multiple of `scale`), or without `crop` the top-left crop to multiples of
 * `scale` ("modcrop"); LR = MATLAB bicubic of the HR by 1/scale (8-bit path for 8-bit images).
 * Unreadable files are skipped with a warning; an empty result throws.
 */
export async function loadValidationSet(
  dir: string,
  opts: { scale: number; crop?: number; onWarning?: (message: string) => void },
): Promise<ValidationImage[]> {
  checkPositiveInt(opts?.scale, 'scale');
  const scale = opts.scale;
  if (opts.crop !== undefined) {
    checkPositiveInt(opts.crop, 'crop');
    if (opts.crop % scale !== 0) throw new Error(`Expected a multiple of scale ${scale} for crop but received ${opts.crop}`);
  }
  const warn = opts.onWarning ?? (() => undefined);
  const files = await listImages(dir, 'validation folder');
  if (files.length === 0) throw new Error(`Cannot open validation folder ${dir}: no images found (looked for ${IMAGE_EXTENSIONS.join(', ')})`);
  const out: ValidationImage[] = [];
  for (const name of files) {
    let img;
    try {
      img = await loadImage(join(dir, name));
    } catch (e) {
      warn(`Skipping ${name}: ${(e as Error).message}`);
      continue;
    }
    const { width: W, height: H } = img;
    const want = (n: number) => Math.floor(Math.min(opts.crop ?? n, n) / scale) * scale;
    const ch = want(H);
    const cw = want(W);
    if (ch === 0 || cw === 0) {
      warn(`Skipping ${name}: ${W}×${H} is smaller than the scale ${scale}`);
      continue;
    }
    const top = opts.crop !== undefined ? Math.floor((H - ch) / 2) : 0;
    const left = opts.crop !== undefined ? Math.floor((W - cw) / 2) : 0;
    const data = new Float32Array(3 * ch * cw);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < ch; y++) {
        const s = (c * H + top + y) * W + left;
        data.set(img.rgb.data.subarray(s, s + cw), (c * ch + y) * cw);
      }
    }
    const hr: Planar = { data, channels: 3, height: ch, width: cw };
    const lr = imresize(hr, 1 / scale, { uint8: img.bitDepth === 8 });
    out.push({ name: stem(name), hr, lr });
  }
  if (out.length === 0) throw new Error(`Cannot open validation folder ${dir}: no usable images, all ${files.length} were skipped (see the warnings)`);
  return out;
}
