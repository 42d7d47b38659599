/**
 * Library-level upscaling: `upscale(input, options)` takes a file path, an encoded image Buffer or
 * raw pixels and returns one SR image per (temperature, sample).
 *
 * - Any input size (reflection padding to the model's multiple, SR cropped to scale × the input);
 *   grayscale stays grayscale, 16-bit stays 16-bit (PNG / raw), alpha is upscaled separately with
 *   bicubic and re-attached, EXIF orientation is applied.
 * - Output form follows the input by default: Buffer in → encoded Buffer in the input's format
 *   (PNG/JPEG/WebP; other formats → PNG); raw in → raw out (same channel layout and sample type);
 *   path in → raw out. `output` overrides. 8-bit values are rounded, round(clip(x,0,1)·255) (the
 *   published test script truncates).
 * - Large inputs are tiled automatically from `maxMemoryMB` (see engine.ts / memory.ts).
 * - `signal` aborts between tiles and samples with a DOMException named 'AbortError'.
 */
import { loadImage, encodeImage, MAX_PIXELS, MAX_SIDE, toRawPixels, type LoadedImage, type Planar, type RawPixels } from '../io/image.js';
import { upscaleBicubic } from '../data/bicubic.js';
import type { SRFlowModel } from '../models/api.js';
import { superResolve, checkSuperResolveOptions, abortError, type Draw, type Progress, type SuperResolveResult } from './engine.js';
import { checkScale, resolveModel } from './model.js';
import { configureEngine, type EngineOptions } from '../models/engine.js';
import type { BackendName } from '../kernels/index.js';
import { clip01 } from './pad.js';
import { uncertaintyMap } from './uncertainty.js';
import type { Map1 } from './tempmap.js';
import { loadMap, type MapInput } from './mapfile.js';

export { superResolve, sizeMultiple, abortError, DEFAULT_MAX_MEMORY_MB, DEFAULT_OVERLAP } from './engine.js';
export type { Draw, Progress, Stage, SuperResolveOptions, SuperResolveResult } from './engine.js';
export { projectConsistent } from './consistency.js';
export type { ConsistencyOptions, ConsistencyResult } from './consistency.js';
export { uncertaintyMap } from './uncertainty.js';
export type { UncertaintyMap } from './uncertainty.js';
export { defaultModelPath, shippedModelPath, resolveModel, checkScale, SHIPPED_SCALES, DefaultModelMissingError, ScaleMismatchError } from './model.js';
export type { ShippedScale } from './model.js';
export { bytesPerLrPixel } from './memory.js';
export { padReflect, reflectIndex, crop } from './pad.js';
export { planTiles, planAxis, axisWeights } from './tiles.js';
export { fillLatentField } from './noise.js';
export { levelMaps, resizeMap, poolMap, lumaMap, checkMap } from './tempmap.js';
export { loadMap } from './mapfile.js';
export type { Map1 } from './tempmap.js';
export type { MapInput } from './mapfile.js';

export type OutputForm = 'raw' | 'png' | 'jpg' | 'webp';

export interface UpscaleOptions {
  /**
   * A loaded model, a model file path, or (default) the shipped model of `scale`:
   * models/srflow-4x.safetensors or models/srflow-8x.safetensors.
   */
  model?: SRFlowModel | string;
  /**
   * 4 or 8: without `model`, the shipped model of this scale (default 4); with `model`, the scale
   * that model must have (an error otherwise).
   */
  scale?: 4 | 8;
  /** The folder of the shipped models (srflow-4x.safetensors, srflow-8x.safetensors); default: the package's models/. */
  modelsDir?: string;
  /** Configuration for a .pth checkpoint given by path. */
  config?: string | Record<string, unknown>;
  /** Temperature τ ≥ 0, or several (every temperature × every sample). Default 0.8. */
  temperature?: number | number[];
  /** Samples per temperature (default 1); sample i uses seed + i. */
  samples?: number;
  /** Seed (integer, default 0). */
  seed?: number;
  /** Forced LR tile side; default: chosen from maxMemoryMB. */
  tile?: number;
  /** LR pixels shared by neighbouring tiles (default 16). */
  tileOverlap?: number;
  /** Memory budget in MB (default 2048). */
  maxMemoryMB?: number;
  /** 'exact': every sample's bicubic downscale equals the input (LR-PSNR ≥ 60 dB). Default: the model's (`model.net.defaultConsistency`: 'exact' for the shipped 8x model, else 'none'). */
  consistency?: 'none' | 'exact';
  /**
   * Spatially varying temperature: a grayscale image (file path, encoded bytes or raw pixels; any
   * size, resized to the output) that scales τ per position: black = τ 0 (the deterministic
   * mean), white = the given τ. Colour images count by their luma.
   */
  temperatureMap?: MapInput;
  /** Also return a per-pixel uncertainty map (needs ≥ 2 samples per temperature). */
  uncertainty?: boolean;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
  /** Output form (see the module comment). */
  output?: OutputForm;
  /** JPEG/WebP quality (default 95). */
  quality?: number;
  /** Compute backend: 'webgpu' (the GPU), or auto, native, wasm, reference (CPU). Default: the engine's (auto). */
  backend?: BackendName;
  /**
   * The sampling guard of srflow-trained models (see SuperResolveOptions.guard): default on when
   * the model carries a calibration (CPU backends), false turns it off, true requires it.
   */
  guard?: boolean;
  /** How the engine computes (kernels, threads, conditioning grouping, …): applied first (configureEngine). */
  engine?: EngineOptions;
}

export interface UpscaleResult {
  /** One image per (temperature, sample), temperatures outermost. */
  images: (RawPixels | Buffer)[];
  /** Output size. */
  width: number;
  height: number;
  scale: number;
  inputWidth: number;
  inputHeight: number;
  /** Temperature and seed of each image. */
  draws: Draw[];
  /** The output form of `images`. */
  output: OutputForm;
  grayscale: boolean;
  hasAlpha: boolean;
  bitDepth: 8 | 16;
  tiles: number;
  tileSize: number | null;
  /** With consistency 'exact': LR-PSNR of each image after projection. */
  lrPsnr: number[] | null;
  /** With `uncertainty`: one grayscale map per temperature (same output form; raw = 1 channel, 8-bit). */
  uncertainty: (RawPixels | Buffer)[] | null;
  timings: { modelMs: number; decodeMs: number; inferMs: number; encodeMs: number };
  /** The backend that ran (see SuperResolveResult.backend). */
  backend: string;
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}

/** Every temperature × every sample: sample i uses seed + i. */
export function makeDraws(temperatures: number[], samples: number, seed: number): Draw[] {
  const out: Draw[] = [];
  for (const t of temperatures) for (let i = 0; i < samples; i++) out.push({ temperature: t, seed: seed + i });
  return out;
}

export interface NormalisedOptions {
  temperatures: number[];
  samples: number;
  seed: number;
  draws: Draw[];
}

/** Validate the sampling options (plain Errors naming the option). */
export function normaliseOptions(o: UpscaleOptions): NormalisedOptions {
  if (typeof o !== 'object' || o === null) throw new Error(`Expected an options object but received ${o === null ? 'null' : typeof o}`);
  const temps = o.temperature === undefined ? [0.8] : Array.isArray(o.temperature) ? o.temperature : [o.temperature];
  if (temps.length === 0) throw new Error('Expected at least one temperature for temperature but received an empty list');
  for (const t of temps) {
    if (!(typeof t === 'number' && Number.isFinite(t) && t >= 0)) throw new Error(`Expected a finite temperature ≥ 0 for temperature but received ${t}`);
  }
  const samples = o.samples ?? 1;
  if (!(Number.isInteger(samples) && samples >= 1)) throw new Error(`Expected an integer ≥ 1 for samples but received ${samples}`);
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new Error(`Expected an integer for seed but received ${seed}`);
  if (o.output !== undefined && !['raw', 'png', 'jpg', 'webp'].includes(o.output)) {
    throw new Error(`Expected 'raw', 'png', 'jpg' or 'webp' for output but received ${JSON.stringify(o.output)}`);
  }
  if (o.scale !== undefined) checkScale(o.scale);
  if (o.modelsDir !== undefined && (typeof o.modelsDir !== 'string' || !o.modelsDir))
    throw new Error(`Expected a folder path for modelsDir but received ${JSON.stringify(o.modelsDir)}`);
  if (o.uncertainty && samples < 2) throw new Error(`Expected samples ≥ 2 for an uncertainty map but received ${samples}`);
  if (o.quality !== undefined && !(Number.isInteger(o.quality) && o.quality >= 1 && o.quality <= 100)) {
    throw new Error(`Expected an integer from 1 to 100 for quality but received ${o.quality}`);
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new Error('Expected an AbortSignal for signal');
  if (o.temperatureMap !== undefined) {
    const m = o.temperatureMap;
    const ok = typeof m === 'string' ? m.length > 0 : m instanceof Uint8Array || (typeof m === 'object' && m !== null && 'data' in m);
    if (!ok) throw new Error('Expected an image (file path, Buffer or raw pixels) for temperatureMap');
  }
  const draws = makeDraws(temps, samples, seed);
  checkSuperResolveOptions({
    draws,
    tile: o.tile,
    overlap: o.tileOverlap,
    maxMemoryMB: o.maxMemoryMB,
    consistency: o.consistency,
    onProgress: o.onProgress,
    backend: o.backend,
    guard: o.guard,
  });
  return { temperatures: temps, samples, seed, draws };
}

/** Largest side an output format can hold. */
export function maxSideFor(format: OutputForm): number {
  return format === 'webp' ? 16383 : MAX_SIDE;
}

/** Throw when scale × the input would be an absurd output. */
export function checkOutputSize(name: string, width: number, height: number, scale: number, format: OutputForm): void {
  const W = width * scale;
  const H = height * scale;
  const side = maxSideFor(format);
  if (W > side || H > side || W * H > MAX_PIXELS) {
    throw new Error(
      `Cannot upscale ${name}: the ${scale}× output would be ${W}×${H}, beyond the limits (${side} pixels per side${format === 'webp' ? ' for WebP' : ''}, ${MAX_PIXELS} pixels in all)`,
    );
  }
}

export interface UpscaledImage {
  /** RGB SR images, one per draw. */
  samples: Planar[];
  /** Alpha upscaled with bicubic (clipped), or null. */
  alpha: Planar | null;
  engine: SuperResolveResult;
}

/** Super-resolve a decoded image: the engine on its RGB planes, bicubic on its alpha. */
export async function upscaleLoaded(
  model: SRFlowModel,
  img: LoadedImage,
  opts: { draws: Draw[]; temperatureMap?: Map1 } & Omit<
    UpscaleOptions,
    'model' | 'scale' | 'modelsDir' | 'temperature' | 'samples' | 'seed' | 'output' | 'uncertainty' | 'quality' | 'config' | 'temperatureMap'
  >,
): Promise<UpscaledImage> {
  const engine = await superResolve(model, img.rgb, {
    draws: opts.draws,
    tile: opts.tile,
    overlap: opts.tileOverlap,
    maxMemoryMB: opts.maxMemoryMB,
    consistency: opts.consistency ?? model.net.defaultConsistency,
    temperatureMap: opts.temperatureMap,
    onProgress: opts.onProgress,
    signal: opts.signal,
    backend: opts.backend,
    guard: opts.guard,
  });
  const alpha = img.alpha ? clip01(upscaleBicubic(img.alpha, model.scale)) : null;
  return { samples: engine.samples, alpha, engine };
}

/** Interleave a float RGB(+alpha) image as Float32 raw pixels (values clipped to [0, 1]). */
function toFloatRaw(rgb: Planar, alpha: Planar | null, grayscale: boolean): RawPixels {
  const n = rgb.width * rgb.height;
  const colour = grayscale ? 1 : 3;
  const channels = (colour + (alpha ? 1 : 0)) as 1 | 2 | 3 | 4;
  const out = new Float32Array(n * channels);
  const d = rgb.data;
  const c01 = (v: number) => (v > 0 ? (v < 1 ? v : 1) : 0);
  for (let i = 0; i < n; i++) {
    const b = i * channels;
    if (grayscale) out[b] = c01(0.299 * d[i] + 0.587 * d[n + i] + 0.114 * d[2 * n + i]);
    else {
      out[b] = c01(d[i]);
      out[b + 1] = c01(d[n + i]);
      out[b + 2] = c01(d[2 * n + i]);
    }
    if (alpha) out[b + colour] = c01(alpha.data[i]);
  }
  return { data: out, width: rgb.width, height: rgb.height, channels };
}

/**
 * Upscale an image with SRFlow. See the module comment for the input and output forms.
 *
 * @example
 *   const { images } = await upscale('photo.png', { model: 'models/srflow-4x.safetensors', samples: 4, output: 'png' });
 *   const x8 = await upscale('photo.png', { scale: 8 }); // the shipped models/srflow-8x.safetensors
 */
export async function upscale(input: string | Buffer | Uint8Array | RawPixels, options: UpscaleOptions = {}): Promise<UpscaleResult> {
  const norm = normaliseOptions(options);
  configureEngine(options.engine);
  const signal = options.signal;
  if (signal?.aborted) throw abortError(signal);
  const isRaw = isObj(input) && !(input instanceof Uint8Array) && 'data' in input;
  const t0 = performance.now();
  const model = await resolveModel(options.model, { config: options.config, scale: options.scale, modelsDir: options.modelsDir });
  const t1 = performance.now();
  const img = await loadImage(input);
  const tmap = options.temperatureMap !== undefined ? await loadMap(options.temperatureMap, 'temperature map') : undefined;
  const t2 = performance.now();
  const writable = new Set(['png', 'jpeg', 'webp']);
  const form: OutputForm =
    options.output ??
    (isRaw || typeof input === 'string' ? 'raw' : writable.has(img.format) ? (img.format === 'jpeg' ? 'jpg' : (img.format as OutputForm)) : 'png');
  const name = typeof input === 'string' ? input : isRaw ? 'raw pixels' : '<buffer>';
  checkOutputSize(name, img.width, img.height, model.scale, form);
  const up = await upscaleLoaded(model, img, { ...options, draws: norm.draws, temperatureMap: tmap });
  const t3 = performance.now();

  const floatRaw = isRaw && (input as RawPixels).data instanceof Float32Array;
  const encode = async (rgb: Planar, alpha: Planar | null, grayscale: boolean, bitDepth: 8 | 16): Promise<RawPixels | Buffer> => {
    if (form === 'raw') return floatRaw ? toFloatRaw(rgb, alpha, grayscale) : toRawPixels({ rgb, alpha, grayscale, bitDepth });
    return encodeImage({ rgb, alpha, grayscale, bitDepth }, { format: form, quality: options.quality });
  };
  const images: (RawPixels | Buffer)[] = [];
  for (const s of up.samples) {
    if (signal?.aborted) throw abortError(signal);
    images.push(await encode(s, up.alpha, img.grayscale, img.bitDepth));
  }
  let unc: (RawPixels | Buffer)[] | null = null;
  if (options.uncertainty) {
    unc = [];
    for (let t = 0; t < norm.temperatures.length; t++) {
      const group = up.samples.slice(t * norm.samples, (t + 1) * norm.samples);
      const u = uncertaintyMap(group);
      const rgb = { data: new Float32Array(3 * u.map.data.length), channels: 3, height: u.map.height, width: u.map.width };
      for (let c = 0; c < 3; c++) rgb.data.set(u.map.data, c * u.map.data.length);
      unc.push(
        form === 'raw'
          ? toRawPixels({ rgb, grayscale: true, bitDepth: 8 })
          : await encodeImage({ rgb, grayscale: true }, { format: form === 'jpg' ? 'jpg' : form }),
      );
    }
  }
  const t4 = performance.now();
  const first = up.samples[0];
  return {
    images,
    width: first.width,
    height: first.height,
    scale: model.scale,
    inputWidth: img.width,
    inputHeight: img.height,
    draws: norm.draws,
    output: form,
    grayscale: img.grayscale,
    hasAlpha: up.alpha !== null,
    bitDepth: form === 'raw' || form === 'png' ? img.bitDepth : 8,
    tiles: up.engine.tiles,
    tileSize: up.engine.tileSize,
    lrPsnr: up.engine.consistency ? up.engine.consistency.map((c) => c.lrPsnr) : null,
    uncertainty: unc,
    timings: { modelMs: t1 - t0, decodeMs: t2 - t1, inferMs: t3 - t2, encodeMs: t4 - t3 },
    backend: up.engine.backend,
  };
}
