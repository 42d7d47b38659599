/**
 * `srflow eval --hr DIR`: super-resolve the MATLAB-bicubic LR of every HR image and report PSNR,
 * SSIM, LR-PSNR, diversity, NLL (bits/dim) and the bicubic baseline, per image and on average.
 */
import type { Command } from 'commander';
import { loadModelArg, parseScale } from './model-arg.js';
import { isRrdbOnly } from '../models/rrdb-model.js';
import { UsageError, parseInteger, parseList } from './errors.js';
import { createProgressBar, oneLineErrors, progressWanted, toJson } from './progress.js';
import { parseMemory, parseSeed } from './upscale.js';
import { loadValidationSet } from '../data/dataset.js';
import { upscaleBicubic } from '../data/bicubic.js';
import { psnr, ssim, lrPsnr, diversity, bitsPerDim, periodicEnergy } from '../metrics/index.js';
import { makeDraws } from '../upscale/index.js';
import { superResolve, sizeMultiple, DEFAULT_MAX_MEMORY_MB } from '../upscale/engine.js';
import { bytesPerLrPixel } from '../upscale/memory.js';
import { crop } from '../upscale/pad.js';
import { Tensor } from '../tensor/tensor.js';
import type { Planar } from '../io/image.js';
import type { SRFlowModel } from '../models/api.js';
import { addBackendOption, applyBackend } from './backend.js';
import { backendInfo } from '../kernels/index.js';
import { webGpuRunner, type WebGpuSRFlow } from '../models/webgpu.js';
import { releaseWebGpuDevice } from '../kernels/webgpu.js';
import { modelOption, scaleOption, configOption, jsonOption, samplesOption, seedOption } from './options.js';

interface EvalCliOptions {
  hr: string;
  model?: string;
  config?: string;
  scale?: string;
  temperatures: string;
  samples: string;
  seed: string;
  crop?: string;
  border?: string;
  tile?: string;
  maxMemory: string;
  json?: boolean;
  quiet?: boolean;
}

export interface TemperatureResult {
  temperature: number;
  psnr: number;
  ssim: number;
  lrPsnr: number;
  diversity: number | null;
  /** Periodic 2-pixel energy share of the fine-detail band (metrics/periodic.ts), mean over samples; null below 16×16. */
  hatching: number | null;
}

export interface ImageResult {
  name: string;
  width: number;
  height: number;
  /** null for an RRDB network (no likelihood). */
  nllBitsPerDim: number | null;
  /** HR region the NLL was measured on (the whole image unless memory forced a centre crop). */
  nllRegion: { width: number; height: number } | null;
  bicubic: { psnr: number; ssim: number; hatching: number | null };
  /** Periodic 2-pixel energy of the ground truth itself (the reference level). */
  hatchingHr: number | null;
  results: TemperatureResult[];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Mean of the non-null values (null when there are none). */
const meanOrNull = (xs: (number | null)[]) => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? mean(v) : null;
};
/** The periodic 2-pixel share of an image's fine band, or null for an image under 16×16. */
const hatch = (img: Planar, scale: number) => (img.height >= 16 && img.width >= 16 ? periodicEnergy(img, scale).value : null);

/** NLL in bits/dim of hr given lr, on the largest centre region that fits the memory budget. */
async function nllBitsPerDim(
  model: SRFlowModel,
  hr: Planar,
  lr: Planar,
  budgetBytes: number,
  gpu: WebGpuSRFlow | null,
): Promise<{ bpd: number; width: number; height: number }> {
  const s = model.scale;
  const m = sizeMultiple(model);
  // encode keeps more than sampling (the forward flow's activations): assume twice the estimate
  const per = 2 * bytesPerLrPixel(model.config);
  let h = Math.floor(lr.height / m) * m;
  let w = Math.floor(lr.width / m) * m;
  while (h * w * per > budgetBytes && (h > m || w > m)) {
    if (h >= w) h = Math.max(m, Math.floor((h * 0.8) / m) * m);
    else w = Math.max(m, Math.floor((w * 0.8) / m) * m);
  }
  if (h === 0 || w === 0) throw new Error(`Cannot measure the NLL of a ${lr.width}×${lr.height} LR image: it is smaller than the model's multiple ${m}`);
  const top = Math.floor((lr.height - h) / 2);
  const left = Math.floor((lr.width - w) / 2);
  const lrC = crop(lr, top, left, h, w);
  const hrC = crop(hr, top * s, left * s, h * s, w * s);
  const hrT = new Tensor(hrC.data, [1, 3, h * s, w * s]);
  const lrT = new Tensor(lrC.data, [1, 3, h, w]);
  const nll = gpu ? (await gpu.encodeLr(hrT, lrT)).nll.data[0] : model.encode(hrT, lrT).nll[0];
  return { bpd: bitsPerDim(nll), width: w * s, height: h * s };
}

function f(x: number | null, digits: number): string {
  if (x === null) return '—';
  if (!Number.isFinite(x)) return 'inf';
  return x.toFixed(digits);
}

export function registerEval(program: Command): void {
  const cmd = program
    .command('eval')
    .description('evaluate a model on a folder of HR images: PSNR, SSIM, LR-PSNR, diversity, NLL, bicubic baseline')
    .requiredOption('--hr <dir>', 'folder of HR images (PNG, JPEG, WebP); LR = MATLAB bicubic ↓scale (8-bit path)')
    .addOption(modelOption())
    .addOption(scaleOption())
    .addOption(configOption())
    .option('--temperatures <list>', 'comma list of temperatures', '0,0.8')
    .addOption(samplesOption('samples per temperature (diversity needs ≥ 2)'))
    .addOption(seedOption())
    .option('--crop <n>', 'evaluate the centre N×N of each HR image (a multiple of the scale)')
    .option('--border <n>', 'pixels cropped at each side for PSNR/SSIM (default: the scale)')
    .option('--tile <n>', 'LR tile side (default: from --max-memory)')
    .option('--max-memory <mb>', 'memory budget (MB)', String(DEFAULT_MAX_MEMORY_MB))
    .addOption(jsonOption())
    .option('--quiet', 'no progress bar and no warnings')
    .addHelpText(
      'after',
      `
Metrics: PSNR and SSIM on RGB, 8-bit values, with --border pixels cropped at each side (default:
the scale, i.e. 4 for 4x, as in the training issue); SSIM as scikit-image's defaults. LR-PSNR:
PSNR between the bicubic downscale of the SR and the LR. Diversity: mean per-value standard
deviation across the samples (0..1 units). Hatching: the share of the fine-detail band's energy
(frequencies beyond the LR's Nyquist limit) on the 2-pixel-period lines of the spectrum, on the
centre 256×256 of each output (also given for bicubic and the HR itself). NLL: -log2 p(HR | LR) / (3·H·W) bits per dimension
(no dequantisation), on the whole image unless --max-memory forces a centre region. The bicubic
baseline is MATLAB bicubic ↑scale of the LR.`,
    );
  addBackendOption(cmd);
  oneLineErrors(cmd);
  cmd.action(async (o: EvalCliOptions & { backend?: string }) => {
    const t0 = performance.now();
    const backend = applyBackend(o.backend);
    const temperatures = parseList(o.temperatures, '--temperatures');
    const samples = parseInteger(o.samples, '--samples', 1);
    const seed = parseSeed(o.seed);
    const cropN = o.crop !== undefined ? parseInteger(o.crop, '--crop', 1) : undefined;
    const borderOpt = o.border !== undefined ? parseInteger(o.border, '--border', 0) : undefined;
    const tile = o.tile !== undefined ? parseInteger(o.tile, '--tile', 8) : undefined;
    const maxMemoryMB = parseMemory(o.maxMemory);
    const model = await loadModelArg(o, parseScale(o.scale));
    const s = model.scale;
    if (cropN !== undefined && cropN % s !== 0) throw new UsageError(`Expected a multiple of the scale ${s} for --crop but received ${cropN}`);
    const border = borderOpt ?? s;
    const warn = (msg: string) => {
      if (!o.quiet) process.stderr.write(`srflow: warning: ${msg}\n`);
    };
    const set = await loadValidationSet(o.hr, { scale: s, crop: cropN, onWarning: warn });
    for (const im of set) {
      if (2 * border >= im.hr.height || 2 * border >= im.hr.width) {
        throw new UsageError(`Expected a --border leaving some of ${im.name} (${im.hr.width}×${im.hr.height}) but received ${border}`);
      }
    }
    const draws = makeDraws(temperatures, samples, seed);
    const bar = createProgressBar(progressWanted(o.quiet || o.json));
    const rows: ImageResult[] = [];
    try {
      for (const [i, im] of set.entries()) {
        bar.start(`${im.name} (${i + 1}/${set.length})`, 1);
        const bic = upscaleBicubic(im.lr, s);
        const gpu = backend === 'webgpu' && !isRrdbOnly(model.net) ? await webGpuRunner(model.net) : null;
        // an RRDB network (published RRDB_*.pth) has no likelihood: its NLL is null
        const nll = isRrdbOnly(model.net) ? null : await nllBitsPerDim(model, im.hr, im.lr, maxMemoryMB * 1048576, gpu);
        const sr = await superResolve(model, im.lr, { draws, tile, maxMemoryMB, onProgress: (q) => bar.update(q), backend });
        const results: TemperatureResult[] = temperatures.map((temperature, ti) => {
          const group = sr.samples.slice(ti * samples, (ti + 1) * samples);
          return {
            temperature,
            psnr: mean(group.map((x) => psnr(x, im.hr, { border }))),
            ssim: mean(group.map((x) => ssim(x, im.hr, { border }))),
            lrPsnr: mean(group.map((x) => lrPsnr(x, im.lr, s))),
            diversity: samples >= 2 ? diversity(group) : null,
            hatching: meanOrNull(group.map((x) => hatch(x, s))),
          };
        });
        rows.push({
          name: im.name,
          width: im.hr.width,
          height: im.hr.height,
          nllBitsPerDim: nll ? nll.bpd : null,
          nllRegion: nll ? { width: nll.width, height: nll.height } : null,
          bicubic: { psnr: psnr(bic, im.hr, { border }), ssim: ssim(bic, im.hr, { border }), hatching: hatch(bic, s) },
          hatchingHr: hatch(im.hr, s),
          results,
        });
      }
    } finally {
      bar.stop();
      if (backend === 'webgpu') await releaseWebGpuDevice();
    }
    const meanRow = {
      nllBitsPerDim: rows.some((r) => r.nllBitsPerDim === null) ? null : mean(rows.map((r) => r.nllBitsPerDim as number)),
      bicubic: {
        psnr: mean(rows.map((r) => r.bicubic.psnr)),
        ssim: mean(rows.map((r) => r.bicubic.ssim)),
        hatching: meanOrNull(rows.map((r) => r.bicubic.hatching)),
      },
      hatchingHr: meanOrNull(rows.map((r) => r.hatchingHr)),
      results: temperatures.map((temperature, ti) => ({
        temperature,
        psnr: mean(rows.map((r) => r.results[ti].psnr)),
        ssim: mean(rows.map((r) => r.results[ti].ssim)),
        lrPsnr: mean(rows.map((r) => r.results[ti].lrPsnr)),
        diversity: samples >= 2 ? mean(rows.map((r) => r.results[ti].diversity as number)) : null,
        hatching: meanOrNull(rows.map((r) => r.results[ti].hatching)),
      })),
    };
    if (o.json) {
      process.stdout.write(
        `${toJson({ model: o.model ?? 'default', backend: backend === 'webgpu' ? 'webgpu' : backendInfo().name, hr: o.hr, scale: s, border, crop: cropN ?? null, samples, seed, temperatures, images: rows, mean: meanRow, seconds: (performance.now() - t0) / 1000 })}\n`,
      );
      return;
    }
    const header = ['image', 'τ', 'PSNR', 'SSIM', 'LR-PSNR', 'diversity', 'hatch %', 'NLL b/d', 'bic PSNR', 'bic SSIM', 'bic hatch %', 'HR hatch %'];
    const table: string[][] = [];
    const add = (
      name: string,
      r: {
        nllBitsPerDim: number | null;
        bicubic: { psnr: number; ssim: number; hatching: number | null };
        hatchingHr: number | null;
        results: TemperatureResult[];
      },
    ) => {
      r.results.forEach((t, k) =>
        table.push([
          k === 0 ? name : '',
          String(t.temperature),
          f(t.psnr, 2),
          f(t.ssim, 4),
          f(t.lrPsnr, 2),
          f(t.diversity, 4),
          f(t.hatching === null ? null : 100 * t.hatching, 1),
          k === 0 ? f(r.nllBitsPerDim, 3) : '',
          k === 0 ? f(r.bicubic.psnr, 2) : '',
          k === 0 ? f(r.bicubic.ssim, 4) : '',
          k === 0 ? f(r.bicubic.hatching === null ? null : 100 * r.bicubic.hatching, 1) : '',
          k === 0 ? f(r.hatchingHr === null ? null : 100 * r.hatchingHr, 1) : '',
        ]),
      );
    };
    for (const r of rows) add(r.name, r);
    add(`mean (${rows.length})`, meanRow);
    const widths = header.map((h, c) => Math.max(h.length, ...table.map((row) => row[c].length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
    process.stdout.write(`${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
    table.forEach((row, i) => {
      if (i === table.length - temperatures.length) process.stdout.write(`${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
      process.stdout.write(`${line(row)}\n`);
    });
    process.stdout.write(`scale ${s}x, border ${border} px, ${samples} sample(s) per temperature, ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  });
}
