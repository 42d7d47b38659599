/**
 * Image decoding and encoding with sharp.
 *
 * Images are planar float32 CHW in [0, 1] (`Planar`), RGB (3 channels); alpha is kept apart.
 * - loading applies the EXIF orientation, expands grayscale to RGB (remembering it was grayscale),
 *   keeps 16-bit PNG/TIFF at 16-bit precision (values / 65535), 8-bit as values / 255;
 * - saving converts to 8 bits by rounding, `round(clip(x, 0, 1) · 255)` (16 bits likewise with 65535
 *   for PNG when `bitDepth: 16`), writes grayscale back as one channel (Rec. 601 luma of the RGB
 *   planes, which is the gray value itself when R = G = B), and writes atomically (temporary file
 *   in the same folder, then rename; nothing is left behind on error).
 */
import sharp from 'sharp';
import type { Sharp } from 'sharp';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { checkPlanar } from '../is.js';

/** Planar float32 CHW image, values in [0, 1]. */
export interface Planar {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** Interleaved (HWC) pixels. Uint8 = 8-bit values, Uint16 = 16-bit values, Float32 = [0, 1]. */
export interface RawPixels {
  data: Uint8Array | Uint8ClampedArray | Uint16Array | Float32Array;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

export interface LoadedImage {
  rgb: Planar;
  alpha: Planar | null;
  width: number;
  height: number;
  /** Precision of the source: 16 for 16-bit PNG/TIFF (and Uint16/Float32 raw input), else 8. */
  bitDepth: 8 | 16;
  hadAlpha: boolean;
  grayscale: boolean;
  /** sharp's format name ('png', 'jpeg', 'webp', ...) or 'raw'. */
  format: string;
}

export interface SaveableImage {
  rgb: Planar;
  alpha?: Planar | null;
  grayscale?: boolean;
  bitDepth?: 8 | 16;
}

export type ImageFormat = 'png' | 'jpg' | 'jpeg' | 'webp';

export interface EncodeOptions {
  format?: ImageFormat;
  /** JPEG/WebP quality 1..100 (default 95). */
  quality?: number;
  /** WebP only: lossless encoding. */
  lossless?: boolean;
}

/** sharp's default pixel limit (0x3FFF · 0x3FFF), used as our limitInputPixels. */
export const MAX_PIXELS = 268402689;
/** Largest accepted side, in pixels. */
export const MAX_SIDE = 65535;

const DECODABLE = new Set(['png', 'jpeg', 'webp', 'tiff', 'gif', 'avif', 'heif']);
const WRITABLE: ImageFormat[] = ['png', 'jpg', 'jpeg', 'webp'];

/** round(clip(x, 0, 1) · 255); NaN → 0. */
export function toUint8Value(x: number): number {
  if (!(x > 0)) return 0;
  if (x >= 1) return 255;
  return Math.round(x * 255);
}

function toUint16Value(x: number): number {
  if (!(x > 0)) return 0;
  if (x >= 1) return 65535;
  return Math.round(x * 65535);
}

class ImageReadError extends Error {}

function readError(name: string, reason: string): ImageReadError {
  return new ImageReadError(`Cannot read image ${name}: ${reason}`);
}

function describeSharpError(msg: string): string {
  if (/unsupported image format/i.test(msg)) return 'not an image, or an unsupported image format';
  if (/pixel limit/i.test(msg)) {
    return `the image has more than ${MAX_PIXELS} pixels (rejected by sharp's limitInputPixels)`;
  }
  if (/empty/i.test(msg)) return 'the data is empty';
  if (/truncat|premature|end of (file|stream|data)|read error|libpng|corrupt|invalid|bad/i.test(msg)) {
    return `corrupt or truncated image data (${msg})`;
  }
  return msg;
}

function isRawPixels(x: unknown): x is RawPixels {
  return typeof x === 'object' && x !== null && !Buffer.isBuffer(x) && 'data' in x && 'width' in x && 'height' in x && 'channels' in x;
}

function checkDims(name: string, width: number, height: number): void {
  if (width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS) {
    throw readError(
      name,
      `absurd dimensions ${width}×${height}: the limits are ${MAX_SIDE} pixels per side and ${MAX_PIXELS} pixels in all ` +
        `(sharp's limitInputPixels enforces the pixel count too)`,
    );
  }
}

/** Split interleaved samples (already scaled to [0, 1] by `scale`) into planar RGB and alpha. */
function splitInterleaved(get: (i: number) => number, width: number, height: number, channels: number, scale: number): { rgb: Planar; alpha: Planar | null } {
  const n = width * height;
  const rgb = new Float32Array(3 * n);
  const hasAlpha = channels === 2 || channels === 4;
  const alpha = hasAlpha ? new Float32Array(n) : null;
  const colour = channels >= 3 ? 3 : 1;
  for (let i = 0; i < n; i++) {
    const b = i * channels;
    if (colour === 1) {
      const v = get(b) * scale;
      rgb[i] = v;
      rgb[n + i] = v;
      rgb[2 * n + i] = v;
    } else {
      rgb[i] = get(b) * scale;
      rgb[n + i] = get(b + 1) * scale;
      rgb[2 * n + i] = get(b + 2) * scale;
    }
    if (alpha) alpha[i] = get(b + colour) * scale;
  }
  return {
    rgb: { data: rgb, channels: 3, height, width },
    alpha: alpha ? { data: alpha, channels: 1, height, width } : null,
  };
}

function fromRawPixels(raw: RawPixels, name: string): LoadedImage {
  const { data, width, height, channels } = raw;
  if (!Number.isInteger(width) || width <= 0) throw new Error(`Expected a positive integer for ${name}.width but received ${width}`);
  if (!Number.isInteger(height) || height <= 0) throw new Error(`Expected a positive integer for ${name}.height but received ${height}`);
  if (![1, 2, 3, 4].includes(channels)) throw new Error(`Expected 1, 2, 3 or 4 for ${name}.channels but received ${channels}`);
  checkDims(name, width, height);
  if (data.length !== width * height * channels) {
    throw new Error(`Expected ${width * height * channels} samples (${width}×${height}×${channels}) for ${name}.data but received ${data.length}`);
  }
  let scale: number;
  let bitDepth: 8 | 16;
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) {
    scale = 1 / 255;
    bitDepth = 8;
  } else if (data instanceof Uint16Array) {
    scale = 1 / 65535;
    bitDepth = 16;
  } else if (data instanceof Float32Array) {
    scale = 1;
    bitDepth = 16;
  } else {
    throw new Error(
      `Expected a Uint8Array, Uint8ClampedArray, Uint16Array or Float32Array for ${name}.data but received ${(data as object)?.constructor?.name}`,
    );
  }
  const { rgb, alpha } = splitInterleaved((i) => data[i], width, height, channels, scale);
  return { rgb, alpha, width, height, bitDepth, hadAlpha: alpha !== null, grayscale: channels <= 2, format: 'raw' };
}

/**
 * Decode an image file, an encoded buffer, or raw interleaved pixels.
 * Errors read `Cannot read image <name>: <reason>`.
 */
export async function loadImage(input: string | Buffer | Uint8Array | RawPixels, opts: { name?: string } = {}): Promise<LoadedImage> {
  if (isRawPixels(input)) return fromRawPixels(input, opts.name ?? 'raw pixels');
  let name: string;
  let source: string | Buffer;
  if (typeof input === 'string') {
    name = opts.name ?? input;
    let st;
    try {
      st = await fsp.stat(input);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw readError(name, 'file not found');
      throw readError(name, (e as Error).message);
    }
    if (st.isDirectory()) throw readError(name, 'it is a folder, not a file');
    if (st.size === 0) throw readError(name, 'the file is empty');
    source = input;
  } else if (input instanceof Uint8Array) {
    name = opts.name ?? '<buffer>';
    if (input.byteLength === 0) throw readError(name, 'the data is empty');
    source = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  } else {
    throw new Error(`Expected a file path, a Buffer or RawPixels for input but received ${input === null ? 'null' : typeof input}`);
  }

  const sharpOpts = { limitInputPixels: MAX_PIXELS, failOn: 'truncated' as const };
  let meta;
  try {
    meta = await sharp(source, sharpOpts).metadata();
  } catch (e) {
    throw readError(name, describeSharpError((e as Error).message));
  }
  const format = String(meta.format ?? 'unknown');
  if (!DECODABLE.has(format)) {
    throw readError(name, `unsupported format '${format}' (supported: ${[...DECODABLE].join(', ')})`);
  }
  if (meta.width === undefined || meta.height === undefined) throw readError(name, 'the image has no dimensions');
  checkDims(name, meta.width, meta.height);
  const sixteen = meta.depth !== undefined && meta.depth !== 'uchar' && meta.depth !== 'char';
  const grayscale = meta.space === 'b-w' || meta.space === 'grey16' || meta.channels === 1 || meta.channels === 2;

  let data: Buffer;
  let info;
  try {
    let pipe: Sharp = sharp(source, sharpOpts).autoOrient();
    pipe = sixteen ? pipe.toColourspace('rgb16').raw({ depth: 'ushort' }) : pipe.toColourspace('srgb').raw();
    ({ data, info } = await pipe.toBuffer({ resolveWithObject: true }));
  } catch (e) {
    throw readError(name, describeSharpError((e as Error).message));
  }
  const { width, height, channels } = info;
  let get: (i: number) => number;
  let scale: number;
  if (sixteen) {
    const u16 = new Uint16Array(data.byteLength / 2);
    new Uint8Array(u16.buffer).set(data);
    get = (i) => u16[i];
    scale = 1 / 65535;
  } else {
    get = (i) => data[i];
    scale = 1 / 255;
  }
  const { rgb, alpha } = splitInterleaved(get, width, height, channels, scale);
  return {
    rgb,
    alpha,
    width,
    height,
    bitDepth: sixteen ? 16 : 8,
    hadAlpha: alpha !== null || meta.hasAlpha === true,
    grayscale,
    format,
  };
}

/**
 * Interleave a planar image for writing: 1 channel (luma) when `grayscale`, else 3; plus alpha.
 * 8-bit: round(clip(x,0,1)·255) as Uint8Array; 16-bit: round(clip(x,0,1)·65535) as Uint16Array.
 */
export function toRawPixels(img: SaveableImage, opts: { bitDepth?: 8 | 16; dropAlpha?: boolean } = {}): RawPixels {
  checkPlanar(img.rgb, 'rgb', 3);
  const { width, height } = img.rgb;
  const alpha = opts.dropAlpha ? null : (img.alpha ?? null);
  if (alpha) {
    checkPlanar(alpha, 'alpha', 1);
    if (alpha.width !== width || alpha.height !== height) {
      throw new Error(`Expected alpha of size ${width}×${height} for alpha but received ${alpha.width}×${alpha.height}`);
    }
  }
  const bitDepth = opts.bitDepth ?? img.bitDepth ?? 8;
  if (bitDepth !== 8 && bitDepth !== 16) throw new Error(`Expected 8 or 16 for bitDepth but received ${bitDepth}`);
  const gray = img.grayscale === true;
  const colour = gray ? 1 : 3;
  const channels = (colour + (alpha ? 1 : 0)) as 1 | 2 | 3 | 4;
  const n = width * height;
  const out = bitDepth === 16 ? new Uint16Array(n * channels) : new Uint8Array(n * channels);
  const q = bitDepth === 16 ? toUint16Value : toUint8Value;
  const d = img.rgb.data;
  for (let i = 0; i < n; i++) {
    const b = i * channels;
    if (gray) {
      out[b] = q(0.299 * d[i] + 0.587 * d[n + i] + 0.114 * d[2 * n + i]);
    } else {
      out[b] = q(d[i]);
      out[b + 1] = q(d[n + i]);
      out[b + 2] = q(d[2 * n + i]);
    }
    if (alpha) out[b + colour] = q(alpha.data[i]);
  }
  return { data: out, width, height, channels };
}

function normaliseFormat(f: string, what: string): ImageFormat {
  const l = f.toLowerCase();
  if ((WRITABLE as string[]).includes(l)) return l as ImageFormat;
  throw new Error(`Expected one of ${WRITABLE.join(', ')} for ${what} but received '${f}'`);
}

/** Blend the colour onto a white background using alpha (for formats without alpha, i.e. JPEG). */
function flattenOnWhite(img: SaveableImage): SaveableImage {
  const a = img.alpha;
  if (!a) return img;
  checkPlanar(a, 'alpha', 1);
  const n = a.data.length;
  const src = img.rgb.data;
  const out = new Float32Array(src.length);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) {
      const al = Math.min(1, Math.max(0, a.data[i]));
      out[c * n + i] = src[c * n + i] * al + (1 - al);
    }
  }
  return { ...img, rgb: { ...img.rgb, data: out }, alpha: null };
}

/** Encode to PNG, JPEG or WebP in memory. */
export async function encodeImage(img: SaveableImage, opts: EncodeOptions & { format: ImageFormat }): Promise<Buffer> {
  const format = normaliseFormat(String(opts?.format), 'format');
  const quality = opts.quality ?? 95;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw new Error(`Expected an integer from 1 to 100 for quality but received ${opts.quality}`);
  }
  const isPng = format === 'png';
  const isJpeg = format === 'jpg' || format === 'jpeg';
  const bitDepth = isPng ? (img.bitDepth ?? 8) : 8;
  const src = isJpeg ? flattenOnWhite(img) : img;
  const raw = toRawPixels(src, { bitDepth });
  let pipe: Sharp = sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels } });
  if (img.grayscale) pipe = pipe.toColourspace(bitDepth === 16 ? 'grey16' : 'b-w');
  else if (bitDepth === 16) pipe = pipe.toColourspace('rgb16');
  if (isPng) pipe = pipe.png({ compressionLevel: 6 });
  else if (isJpeg) pipe = pipe.jpeg({ quality, chromaSubsampling: quality >= 90 ? '4:4:4' : '4:2:0' });
  else pipe = pipe.webp({ quality, lossless: opts.lossless ?? false });
  return pipe.toBuffer();
}

/** Format from the option, else from the file extension. */
export function formatFromPath(path: string, format?: string): ImageFormat {
  if (format !== undefined) return normaliseFormat(format, 'format');
  const ext = extname(path).slice(1);
  if (!ext) throw new Error(`Expected a file name ending in .png, .jpg, .jpeg or .webp (or a format option) for path but received ${path}`);
  try {
    return normaliseFormat(ext, 'the file extension');
  } catch {
    throw new Error(`Expected a file name ending in .png, .jpg, .jpeg or .webp (or a format option) for path but received ${path}`);
  }
}

/**
 * Write `bytes` to `path` atomically: a temporary file in the same folder, then rename.
 * On any error the temporary file is removed and no file appears at `path`.
 */
export async function writeFileAtomicAsync(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await fsp.writeFile(tmp, bytes, { flag: 'wx' });
    await fsp.rename(tmp, path);
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`Cannot write image ${path}: the folder ${dirname(path)} does not exist`);
    if (err.code === 'EISDIR' || err.code === 'ENOTEMPTY' || err.code === 'EEXIST') throw new Error(`Cannot write image ${path}: a folder is in the way`);
    throw new Error(`Cannot write image ${path}: ${err.message}`);
  }
}

/** Encode and write an image; the format comes from `opts.format` or the extension. */
export async function saveImage(path: string, img: SaveableImage, opts: EncodeOptions = {}): Promise<void> {
  if (typeof path !== 'string' || !path) throw new Error(`Expected a file path for path but received ${String(path)}`);
  const format = formatFromPath(path, opts.format);
  const bytes = await encodeImage(img, { ...opts, format });
  await writeFileAtomicAsync(path, bytes);
}

/** Planar [0,1] → Uint8 planar (round(clip·255)). */
export function planarToUint8(p: Planar): Uint8Array {
  const out = new Uint8Array(p.data.length);
  for (let i = 0; i < out.length; i++) out[i] = toUint8Value(p.data[i]);
  return out;
}

export { clip01 } from './planar.js';
