/**
 * `srflow upscale <inputs...>`: super-resolve images (any size; large ones tiled), several samples
 * and temperatures per image, uncertainty maps, exact LR consistency.
 *
 * Order of work, so that bad input never leaves anything behind: every option is validated, the
 * output paths are planned and checked, the model is loaded and every input fully decoded before
 * any inference; each input's outputs are encoded in memory and written (atomically: temporary
 * file, then rename) only once all of them are complete.
 */
import type { Command } from 'commander';
import { loadModelArg, parseScale } from './model-arg.js';
import { existsSync, realpathSync, statSync, promises as fsp } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { UsageError, parseInteger, parseList, parseNumber } from './errors.js';
import { createProgressBar, oneLineErrors, progressWanted, toJson } from './progress.js';
import { encodeImage, loadImage, writeFileAtomicAsync, type ImageFormat, type LoadedImage, type Planar } from '../io/image.js';
import { checkOutputSize, makeDraws, upscaleLoaded, type OutputForm } from '../upscale/index.js';
import { DEFAULT_MAX_MEMORY_MB, DEFAULT_OVERLAP, type Draw } from '../upscale/engine.js';
import { grayToRgb, uncertaintyMap } from '../upscale/uncertainty.js';
import { loadMap } from '../upscale/mapfile.js';
import type { SRFlowModel } from '../models/api.js';
import type { ShippedScale } from '../upscale/model.js';
import { applyBackend } from './backend.js';
import { modelOption, scaleOption, configOption } from './options.js';

interface UpscaleCliOptions {
  backend?: string;
  output?: string;
  outDir?: string;
  model?: string;
  config?: string;
  scale?: string;
  temperature: string;
  samples: string;
  seed: string;
  format?: string;
  quality: string;
  tile?: string;
  tileOverlap: string;
  maxMemory: string;
  uncertainty?: string;
  consistency?: string;
  temperatureMap?: string;
  json?: boolean;
  quiet?: boolean;
  /** false with --no-guard. */
  guard?: boolean;
}

export interface ParsedUpscaleOptions {
  /** --scale: the shipped model of this scale, or the scale --model must have. */
  scale?: ShippedScale;
  temperatures: number[];
  samples: number;
  seed: number;
  draws: Draw[];
  format?: 'png' | 'jpg' | 'webp';
  quality: number;
  tile?: number;
  tileOverlap: number;
  maxMemoryMB: number;
  /** undefined: the model's default (SRFlowNet.defaultConsistency). */
  consistency?: 'none' | 'exact';
}

export function parseSeed(v: string, name = '--seed'): number {
  return parseNumber(v, name, (x) => Number.isSafeInteger(x) && x >= 0, 'an integer ≥ 0');
}

export function parseFormat(v: string, name = '--format'): 'png' | 'jpg' | 'webp' {
  const l = v.toLowerCase();
  if (l === 'png' || l === 'webp') return l;
  if (l === 'jpg' || l === 'jpeg') return 'jpg';
  throw new UsageError(`Expected png, jpg or webp for ${name} but received ${JSON.stringify(v)}`);
}

export function parseMemory(v: string, name = '--max-memory'): number {
  return parseNumber(v, name, (x) => Number.isFinite(x) && x >= 64, 'a number of MB ≥ 64');
}

/** Validate every option value (UsageError naming the option). */
export function parseUpscaleOptions(o: UpscaleCliOptions): ParsedUpscaleOptions {
  const scale = parseScale(o.scale);
  const temperatures = parseList(o.temperature, '--temperature');
  const samples = parseInteger(o.samples, '--samples', 1);
  const seed = parseSeed(o.seed);
  const format = o.format !== undefined ? parseFormat(o.format) : undefined;
  const quality = parseNumber(o.quality, '--quality', (x) => Number.isInteger(x) && x >= 1 && x <= 100, 'an integer from 1 to 100');
  const tile = o.tile !== undefined ? parseInteger(o.tile, '--tile', 8) : undefined;
  const tileOverlap = parseInteger(o.tileOverlap, '--tile-overlap', 0);
  const maxMemoryMB = parseMemory(o.maxMemory);
  if (o.consistency !== undefined && o.consistency !== 'none' && o.consistency !== 'exact') {
    throw new UsageError(`Expected none or exact for --consistency but received ${JSON.stringify(o.consistency)}`);
  }
  if (o.uncertainty !== undefined && samples < 2) {
    throw new UsageError(`Expected --samples ≥ 2 with --uncertainty (it measures how much the samples disagree) but received ${samples}`);
  }
  return {
    scale,
    temperatures,
    samples,
    seed,
    draws: makeDraws(temperatures, samples, seed),
    format,
    quality,
    tile,
    tileOverlap,
    maxMemoryMB,
    consistency: o.consistency as 'none' | 'exact' | undefined,
  };
}

function extFor(f: ImageFormat): string {
  return f === 'jpeg' ? 'jpg' : f;
}

function formatOfPath(path: string, given: 'png' | 'jpg' | 'webp' | undefined, what: string): 'png' | 'jpg' | 'webp' {
  const ext = extname(path).slice(1).toLowerCase();
  if (given) return given;
  if (ext === 'png' || ext === 'webp') return ext;
  if (ext === 'jpg' || ext === 'jpeg') return 'jpg';
  throw new UsageError(`Expected a file name ending in .png, .jpg, .jpeg or .webp (or --format) for ${what} but received ${JSON.stringify(path)}`);
}

/** Number text for file names: 0.8 → "0.8", 1 → "1". */
function num(t: number): string {
  return String(+t.toFixed(6));
}

export interface PlannedInput {
  input: string;
  outputs: { path: string; draw: Draw; sample: number }[];
  format: 'png' | 'jpg' | 'webp';
  uncertainty: { path: string; temperature: number }[];
}

/** Output file names for every input (see the command's help). */
export function planOutputs(
  inputs: string[],
  o: { output?: string; outDir?: string; uncertainty?: string },
  p: ParsedUpscaleOptions,
  scale: number,
): PlannedInput[] {
  const several = p.draws.length > 1;
  return inputs.map((input) => {
    if (o.output !== undefined) {
      const format = formatOfPath(o.output, p.format, '-o');
      return { input, format, outputs: [{ path: o.output, draw: p.draws[0], sample: 1 }], uncertainty: [] };
    }
    const format = p.format ?? 'png';
    const dir = o.outDir ?? dirname(input);
    const stem = basename(input, extname(input));
    const outputs = p.draws.map((draw, k) => {
      const sample = (k % p.samples) + 1;
      const name = several ? `${stem}_x${scale}_t${num(draw.temperature)}_s${sample}.${extFor(format)}` : `${stem}_x${scale}.${extFor(format)}`;
      return { path: join(dir, name), draw, sample };
    });
    let uncertainty: PlannedInput['uncertainty'] = [];
    if (o.uncertainty !== undefined) {
      const u = o.uncertainty;
      if (p.temperatures.length === 1) uncertainty = [{ path: u, temperature: p.temperatures[0] }];
      else {
        const ustem = u.slice(0, u.length - extname(u).length);
        uncertainty = p.temperatures.map((t) => ({ path: `${ustem}_t${num(t)}.png`, temperature: t }));
      }
    }
    return { input, format, outputs, uncertainty };
  });
}

function sameFile(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  try {
    return existsSync(b) && realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** Checks that need no model and no pixels: output rules, collisions, folders. */
export function checkPlan(plan: PlannedInput[], o: { output?: string; outDir?: string; uncertainty?: string }): void {
  const all: string[] = [];
  for (const p of plan) {
    for (const out of [...p.outputs.map((x) => x.path), ...p.uncertainty.map((x) => x.path)]) {
      for (const q of plan) {
        if (sameFile(q.input, out)) throw new UsageError(`Refusing to overwrite the input ${q.input} with an output; choose another -o/--out-dir`);
      }
      const key = resolve(out);
      if (all.includes(key)) throw new UsageError(`Two outputs would be written to ${out} (inputs with the same name?); use separate runs or --out-dir`);
      all.push(key);
    }
  }
  const folders = new Set<string>();
  if (o.output !== undefined) folders.add(dirname(o.output));
  if (o.uncertainty !== undefined) folders.add(dirname(o.uncertainty));
  for (const f of folders) {
    let st;
    try {
      st = statSync(f);
    } catch {
      throw new UsageError(`Cannot write to ${f}: the folder does not exist`);
    }
    if (!st.isDirectory()) throw new UsageError(`Cannot write to ${f}: not a folder`);
  }
  if (o.outDir !== undefined && existsSync(o.outDir) && !statSync(o.outDir).isDirectory()) {
    throw new UsageError(`Expected a folder for --out-dir but ${o.outDir} is a file`);
  }
  for (const p of plan) {
    for (const out of p.outputs) {
      if (existsSync(out.path) && statSync(out.path).isDirectory()) throw new UsageError(`Cannot write ${out.path}: a folder is in the way`);
    }
  }
}

async function encodeSr(rgb: Planar, alpha: Planar | null, img: LoadedImage, format: 'png' | 'jpg' | 'webp', quality: number): Promise<Buffer> {
  return encodeImage({ rgb, alpha, grayscale: img.grayscale, bitDepth: format === 'png' ? img.bitDepth : 8 }, { format, quality });
}

export function registerUpscale(program: Command): void {
  const cmd = program
    .command('upscale')
    .description('super-resolve images with SRFlow: several samples/temperatures, any size (large images are tiled)')
    .argument('<inputs...>', 'input images (PNG, JPEG, WebP, TIFF, GIF, AVIF/HEIF)')
    .option('-o, --output <file>', 'output file (only with one input and one output)')
    .option('--out-dir <dir>', 'output folder (default: next to each input); created if missing')
    .addOption(modelOption())
    .addOption(scaleOption())
    .addOption(configOption())
    .option('--temperature <list>', 'temperature τ ≥ 0, or a comma list such as 0.4,0.8 (τ = 0: deterministic)', '0.8')
    .option('--samples <n>', 'samples per temperature (sample i uses seed + i)', '1')
    .option('--seed <n>', 'random seed (an integer ≥ 0)', '0')
    .option('--format <fmt>', 'output format: png, jpg or webp (default: from -o, else png)')
    .option('--quality <q>', 'JPEG/WebP quality, 1..100', '95')
    .option('--tile <n>', 'LR tile side in pixels (default: chosen from --max-memory)')
    .option('--tile-overlap <n>', 'LR pixels shared by neighbouring tiles', String(DEFAULT_OVERLAP))
    .option('--max-memory <mb>', 'memory budget (MB) that picks the tile size', String(DEFAULT_MAX_MEMORY_MB))
    .option('--uncertainty <file>', 'write a grayscale PNG of how much the samples disagree (needs --samples ≥ 2; one input)')
    .option(
      '--consistency <mode>',
      "none, or exact: project every output so that its bicubic downscale equals the input (default: the model's: exact for the shipped 8x model, none otherwise)",
    )
    .option('--temperature-map <image>', 'grayscale image (any size, resized to the output) scaling τ per pixel: black = τ 0, white = --temperature')
    .option('--json', 'print one JSON object with outputs, timings and sizes')
    .option('--quiet', 'no progress bar and no messages')
    .option('--backend <name>', 'compute backend: auto, native, wasm, reference or webgpu (the GPU through WebGPU; default: $SRFLOW_BACKEND, else auto)')
    .option('--no-guard', 'turn off the sampling guard of srflow-trained models that carry a calibration (on by default; see models/README.md)')
    .addHelpText(
      'after',
      `
Models: models/srflow-4x.safetensors (the default) and, with --scale 8, models/srflow-8x.safetensors
(shipped in the package; $SRFLOW_MODELS_DIR is another folder holding them); --model picks any other.

Outputs: -o FILE for one input and one output; otherwise <stem>_x4.png (<stem>_x8.png at 8x) in
--out-dir (default: next to the input), or <stem>_x4_t0.8_s1.png, … with several samples or
temperatures. Inputs are never
overwritten. Grayscale inputs stay grayscale, 16-bit PNG/TIFF inputs give 16-bit PNG, alpha is
upscaled with bicubic and kept, EXIF orientation is applied. 8-bit outputs are ROUNDED,
round(clip(x, 0, 1) · 255); the published SRFlow test script truncates, which is darker by half a
level on average.

Sizes: any size; the input is padded by reflection (bottom/right, as the published test script)
to the model's multiple and the output cropped back to scale × the input. Images too large for
--max-memory are processed in overlapping tiles with feathered blending; latents are a fixed
random field per seed, so tiles agree in their overlaps at any temperature and the result does
not depend on the tile size (at τ = 0 tiled and whole-image results agree to ≥ 45 dB).

Uncertainty: the per-pixel standard deviation across the samples, averaged over RGB and scaled so
that its 99.5th percentile is white. With several temperatures, one map per temperature
(FILE_t0.4.png, …).

Temperature map: --temperature-map map.png scales the temperature per position (black = τ 0, the
deterministic mean; white = the given τ; gray in between; colour maps count by their luma). The
map is resized to the output and averaged over each latent's footprint, so it decides where
detail is invented and where the output stays the mean.

Consistency exact: iterative back-projection x ← x + bicubic↑(lr − bicubic↓(x)) (MATLAB bicubic,
float) until the LR-PSNR is ≥ 60 dB (at most 50 iterations), clipped to [0, 1]. The LR-PSNR
reached is in --json; an LR with pixel-level contrast that no image in [0, 1] downscales to
(noise, not photos) gets as close as the clipping allows.

Exit codes: 0 success, 1 failure (unreadable input or model, …), 2 usage error.`,
    );
  oneLineErrors(cmd);
  cmd.action(async (inputs: string[], o: UpscaleCliOptions) => {
    const t0 = performance.now();
    const p = parseUpscaleOptions(o);
    const backend = applyBackend(o.backend);
    if (o.output !== undefined && o.outDir !== undefined) throw new UsageError('Expected either -o or --out-dir, not both');
    if (o.output !== undefined && inputs.length > 1) throw new UsageError(`Expected one input with -o but received ${inputs.length}; use --out-dir`);
    if (o.output !== undefined && p.draws.length > 1) {
      throw new UsageError(`Expected one output with -o but --temperature/--samples ask for ${p.draws.length}; use --out-dir`);
    }
    if (o.uncertainty !== undefined) {
      if (inputs.length > 1) throw new UsageError(`Expected one input with --uncertainty but received ${inputs.length}`);
      if (extname(o.uncertainty).toLowerCase() !== '.png')
        throw new UsageError(`Expected a .png file for --uncertainty but received ${JSON.stringify(o.uncertainty)}`);
    }
    if (p.format && o.output !== undefined) {
      const ext = extname(o.output).slice(1).toLowerCase();
      const f = ext === 'jpeg' ? 'jpg' : ext;
      if (['png', 'jpg', 'webp'].includes(f) && f !== p.format) throw new UsageError(`-o ${o.output} does not match --format ${p.format}`);
    }
    // Output names without the model first (the scale only changes the names), to fail fast.
    const plan0 = planOutputs(inputs, o, p, p.scale ?? 4);
    checkPlan(plan0, o);

    if (o.temperatureMap !== undefined) {
      for (const q of [...plan0.flatMap((x) => x.outputs.map((y) => y.path)), ...plan0.flatMap((x) => x.uncertainty.map((y) => y.path))]) {
        if (sameFile(o.temperatureMap, q)) throw new UsageError(`Refusing to overwrite the temperature map ${o.temperatureMap} with an output`);
      }
    }
    const temperatureMap = o.temperatureMap !== undefined ? await loadMap(o.temperatureMap, 'temperature map') : undefined;
    const model: SRFlowModel = await loadModelArg(o, p.scale);
    const tModel = performance.now();
    const plan = planOutputs(inputs, o, p, model.scale);
    checkPlan(plan, o);

    // Decode every input before any inference; keep the decoded pixels when they are small.
    const kept = new Map<string, LoadedImage>();
    let keptBytes = 0;
    for (const item of plan) {
      const img = await loadImage(item.input);
      checkOutputSize(item.input, img.width, img.height, model.scale, item.format as OutputForm);
      const bytes = img.rgb.data.byteLength + (img.alpha?.data.byteLength ?? 0);
      if (keptBytes + bytes <= 256 * 1048576) {
        kept.set(item.input, img);
        keptBytes += bytes;
      }
    }

    const bar = createProgressBar(progressWanted(o.quiet || o.json));
    const ac = new AbortController();
    const onSigint = () => ac.abort(new Error('interrupted'));
    process.once('SIGINT', onSigint);
    const results: Record<string, unknown>[] = [];
    let ranOn = '';
    try {
      if (o.outDir !== undefined) await fsp.mkdir(o.outDir, { recursive: true });
      for (const item of plan) {
        const ti0 = performance.now();
        const img = kept.get(item.input) ?? (await loadImage(item.input));
        const ti1 = performance.now();
        bar.start(basename(item.input), 1);
        const up = await upscaleLoaded(model, img, {
          draws: p.draws,
          tile: p.tile,
          tileOverlap: p.tileOverlap,
          maxMemoryMB: p.maxMemoryMB,
          consistency: p.consistency,
          temperatureMap,
          onProgress: (q) => bar.update(q),
          signal: ac.signal,
          backend,
          guard: o.guard === false ? false : undefined,
        });
        ranOn = up.engine.backend;
        const ti2 = performance.now();
        bar.stop();
        up.engine.nonFinite.forEach((bad, k) => {
          const far = up.engine.outOfRange[k];
          if ((bad > 0 || far > 0) && !o.quiet) {
            const what = [bad > 0 ? `${bad} non-finite values (written as black)` : '', far > 0 ? `${far} values far outside [0, 1] (clipped)` : '']
              .filter(Boolean)
              .join(' and ');
            process.stderr.write(
              `warning: ${basename(item.input)}: sample ${k + 1} (τ = ${p.draws[k].temperature}) had ${what}; the model's inverse exploded there: try a lower --temperature\n`,
            );
          }
        });
        const files: { path: string; bytes: Buffer }[] = [];
        for (let k = 0; k < item.outputs.length; k++) {
          files.push({ path: item.outputs[k].path, bytes: await encodeSr(up.samples[k], up.alpha, img, item.format, p.quality) });
        }
        const maps: Record<string, unknown>[] = [];
        for (const u of item.uncertainty) {
          const group = up.samples.filter((_, k) => p.draws[k].temperature === u.temperature);
          const map = uncertaintyMap(group);
          files.push({ path: u.path, bytes: await encodeImage({ rgb: grayToRgb(map.map), grayscale: true }, { format: 'png' }) });
          maps.push({ path: u.path, temperature: u.temperature, whiteStd: map.whiteStd, meanStd: map.meanStd, maxStd: map.maxStd });
        }
        for (const f of files) await writeFileAtomicAsync(f.path, f.bytes);
        const ti3 = performance.now();
        const outW = up.samples[0].width;
        const outH = up.samples[0].height;
        if (!o.quiet && !o.json) {
          for (const f of files) process.stdout.write(`${f.path} (${outW}×${outH})\n`);
        }
        results.push({
          input: item.input,
          inputWidth: img.width,
          inputHeight: img.height,
          width: outW,
          height: outH,
          grayscale: img.grayscale,
          bitDepth: item.format === 'png' ? img.bitDepth : 8,
          alpha: up.alpha !== null,
          format: item.format,
          tiles: up.engine.tiles,
          tileSize: up.engine.tileSize,
          tileOverlap: up.engine.overlap,
          estimatedMemoryMB: Math.round(up.engine.estimatedBytes / 1048576),
          guard: up.engine.guard.enabled,
          outputs: item.outputs.map((x, k) => ({
            path: x.path,
            temperature: x.draw.temperature,
            seed: x.draw.seed,
            sample: x.sample,
            bytes: files[k].bytes.length,
            nonFinite: up.engine.nonFinite[k],
            outOfRange: up.engine.outOfRange[k],
            guardTouched: up.engine.guard.touched[k],
            ...(up.engine.consistency
              ? {
                  lrPsnrBefore: up.engine.consistency[k].lrPsnrBefore,
                  lrPsnr: up.engine.consistency[k].lrPsnr,
                  iterations: up.engine.consistency[k].iterations,
                }
              : {}),
          })),
          ...(maps.length ? { uncertainty: maps } : {}),
          seconds: { decode: (ti1 - ti0) / 1000, infer: (ti2 - ti1) / 1000, write: (ti3 - ti2) / 1000 },
        });
      }
    } finally {
      bar.stop();
      process.removeListener('SIGINT', onSigint);
      if (backend === 'webgpu') await (await import('../kernels/webgpu.js')).releaseWebGpuDevice();
    }
    if (o.json) {
      process.stdout.write(
        `${toJson({
          model: o.model ?? 'default',
          scale: model.scale,
          temperatures: p.temperatures,
          samples: p.samples,
          seed: p.seed,
          consistency: p.consistency ?? model.net.defaultConsistency,
          ...(o.temperatureMap !== undefined ? { temperatureMap: o.temperatureMap } : {}),
          maxMemoryMB: p.maxMemoryMB,
          backend: ranOn,
          images: results,
          seconds: { model: (tModel - t0) / 1000, total: (performance.now() - t0) / 1000 },
        })}\n`,
      );
    }
  });
}
