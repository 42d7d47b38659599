/**
 * Checks an uploaded image before it is queued, so that a worker never gets a job that cannot run:
 * the format (PNG, JPEG or WebP), its size against the pixel limit (413), and a full decode (a
 * truncated or corrupt file is a 400 now, not a failed job later). Decoding runs on libvips'
 * threads, not the event loop, and is bounded by the pixel limit.
 */
import sharp from 'sharp';
import { HttpError } from './jobs.js';
import { maxSideFor, type OutputForm } from '../upscale/index.js';
import { MAX_PIXELS } from '../io/image.js';

export const ACCEPTED_FORMATS = ['png', 'jpeg', 'webp'];

export interface ImageInfo {
  format: string;
  width: number;
  height: number;
}

function why(e: unknown): string {
  const m = String((e as Error)?.message ?? e).split('\n')[0];
  if (/unsupported image format/i.test(m)) return 'not an image in a known format';
  return m.replace(/^Input buffer (has|contains) /i, '').replace(/^VipsJpeg: |^pngload_buffer: |^webpload_buffer: /, '');
}

export async function inspectImage(bytes: Buffer, o: { maxPixels: number; scale: number; format: OutputForm }): Promise<ImageInfo> {
  if (bytes.length === 0) throw new HttpError(400, 'The request body is empty: send the image (PNG, JPEG or WebP) as the body, or as a multipart file');
  let meta;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new HttpError(400, `The upload is not a readable image: ${why(e)} (send PNG, JPEG or WebP)`);
  }
  const format = String(meta.format ?? 'unknown');
  if (!ACCEPTED_FORMATS.includes(format)) throw new HttpError(400, `Unsupported image format '${format}' (send PNG, JPEG or WebP)`);
  const { width, height } = meta;
  if (!width || !height) throw new HttpError(400, 'The image has no dimensions');
  if (width * height > o.maxPixels) {
    throw new HttpError(413, `The image is ${width}×${height} = ${width * height} pixels, above this server's limit of ${o.maxPixels} pixels`);
  }
  const W = width * o.scale;
  const H = height * o.scale;
  const side = maxSideFor(o.format);
  if (W > side || H > side || W * H > MAX_PIXELS) {
    throw new HttpError(413, `The ${o.scale}× output would be ${W}×${H}, beyond what ${o.format.toUpperCase()} can hold (${side} pixels per side)`);
  }
  try {
    await sharp(bytes, { limitInputPixels: o.maxPixels, failOn: 'truncated' }).raw().toBuffer();
  } catch (e) {
    throw new HttpError(400, `The ${format.toUpperCase()} image cannot be decoded: ${why(e)}`);
  }
  return { format, width, height };
}
