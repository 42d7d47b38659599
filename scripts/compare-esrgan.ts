// Dev-only comparison of srflow with UpscalerJS's ESRGAN (npm `@upscalerjs/esrgan-thick`) on a
// folder of HR photographs: bicubic | srflow τ = 0 | srflow τ = 0.8 (several samples) |
// esrgan-thick, each measured with srflow's own metrics (PSNR and SSIM on RGB with a border of
// `scale` pixels cropped, LR-PSNR, diversity), plus a picture grid of detail crops.
//
// The numbers and grid in models/compare/ (and the table in models/README.md) come from, run in the
// repository root (about 2 minutes per 256×256 crop on a loaded 2-core machine):
//
//   npx tsx scripts/compare-esrgan.ts --hr ../shared/data/val --model models/srflow-4x.safetensors --crop 256 --out models/compare
//
// To compare a new model, pass its file as --model and keep everything else the same.
//
// - LR: exactly as `srflow eval` makes it (loadValidationSet: centre crop of --crop pixels, MATLAB
//   bicubic ↓scale on the 8-bit path). Both networks get the same LR, in [0, 1].
// - srflow: superResolve as in `srflow eval` (the network's raw samples, no consistency
//   projection): τ = 0 once (deterministic), τ = --temperature with --samples seeds seed … seed+n−1.
// - esrgan-thick: the package's own model.json and weight shards (they ship in the npm package:
//   nothing is downloaded), its two custom layers registered with the package's own setup(), run by
//   TensorFlow.js on its WebAssembly backend (the .wasm files ship in @tensorflow/tfjs-backend-wasm)
//   or with --backend cpu on the plain JavaScript one, on the whole LR at once; inputs and outputs
//   in 0–1 (the model's inputRange/outputRange), the output clipped to [0, 1].
// - Metrics are quantised to 8 bits, as for every method in srflow (metrics' default).
// - These dependencies are devDependencies: neither the library nor `npm test` uses them.
import { createRequire } from 'node:module';
import { promises as fsp, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import sharp, { type OverlayOptions } from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { loadValidationSet } from '../src/data/dataset.js';
import { upscaleBicubic } from '../src/data/bicubic.js';
import { psnr, ssim, lrPsnr, diversity } from '../src/metrics/index.js';
import { resolveModel } from '../src/upscale/model.js';
import { superResolve, type Draw } from '../src/upscale/engine.js';
import { toUint8Value, writeFileAtomicAsync, type Planar } from '../src/io/image.js';
import { UsageError, parseInteger } from '../src/cli/errors.js';
import { jsonOption, samplesOption, seedOption } from '../src/cli/options.js';

const require = createRequire(import.meta.url);

type MethodKey = 'bicubic' | 'tau0' | 'tauT' | 'esrgan';

interface Metrics {
  psnr: number;
  ssim: number;
  lrPsnr: number;
  /** Mean per-value standard deviation across samples, ×255 (0 for a deterministic method). */
  diversity255: number;
}

interface ImageRow {
  name: string;
  width: number;
  height: number;
  /** Top-left corner of the detail crop in the grid (HR pixels). */
  detail: { top: number; left: number; size: number };
  metrics: Record<MethodKey, Metrics>;
  seconds: { srflow: number; esrgan: number };
  /** srflow draws with non-finite / far out-of-range values before clipping (0 for a sound model). */
  srflowNonFinite: number[];
  srflowOutOfRange: number[];
}

// ---------------------------------------------------------------------------------------------
// esrgan-thick through TensorFlow.js, from the package's local files

/** The installed package's folder (its package.json has the package's name). */
function packageDir(name: string, entry: string): string {
  let dir = dirname(require.resolve(entry));
  for (;;) {
    try {
      if (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name === name) return dir;
    } catch {
      // not the package root yet
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`Cannot find the folder of ${name} above ${require.resolve(entry)}`);
    dir = up;
  }
}

interface EsrganModelDefinition {
  scale: number;
  setup?: (tfjs: typeof tf) => void;
  _internals: { path: string; name: string; version: string };
  inputRange: [number, number];
  outputRange: [number, number];
}

interface Esrgan {
  backend: string;
  version: string;
  modelJson: string;
  weightBytes: number;
  run(lr: Planar): Planar;
}

async function loadEsrgan(scale: number, backend: 'wasm' | 'cpu'): Promise<Esrgan> {
  if (backend === 'wasm') {
    // The .wasm binaries inside the npm package: nothing is fetched.
    const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    setWasmPaths(`${wasmDir}/`);
  }
  if (!(await tf.setBackend(backend))) throw new Error(`Cannot start TensorFlow.js's ${backend} backend`);
  await tf.ready();
  let def: EsrganModelDefinition;
  try {
    def = require(`@upscalerjs/esrgan-thick/${scale}x`) as EsrganModelDefinition;
  } catch {
    throw new UsageError(`Expected a model scale esrgan-thick has (2, 3, 4 or 8) but received ${scale}`);
  }
  if (def.scale !== scale) throw new Error(`esrgan-thick/${scale}x reports scale ${def.scale}`);
  if (def.inputRange[0] !== 0 || def.inputRange[1] !== 1 || def.outputRange[0] !== 0 || def.outputRange[1] !== 1) {
    throw new Error(`Expected esrgan-thick's input and output ranges to be [0, 1] but received ${JSON.stringify([def.inputRange, def.outputRange])}`);
  }
  def.setup?.(tf); // registers its custom layers (MultiplyBeta, PixelShuffle<scale>x)
  const pkg = packageDir('@upscalerjs/esrgan-thick', `@upscalerjs/esrgan-thick/${scale}x`);
  const modelJson = join(pkg, def._internals.path);
  const json = JSON.parse(readFileSync(modelJson, 'utf8')) as tf.io.ModelJSON;
  const shards = json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dirname(modelJson), p))));
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g) => g.weights), weightData }),
  );
  return {
    backend,
    version: def._internals.version,
    modelJson,
    weightBytes: all.byteLength,
    run(lr: Planar): Planar {
      const { height: h, width: w } = lr;
      const n = h * w;
      const hwc = new Float32Array(3 * n);
      for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) hwc[3 * i + c] = lr.data[c * n + i];
      const out = tf.tidy(() => (model.predict(tf.tensor4d(hwc, [1, h, w, 3])) as tf.Tensor4D).clipByValue(0, 1));
      const [, H, W, C] = out.shape;
      if (H !== h * scale || W !== w * scale || C !== 3) throw new Error(`esrgan-thick returned ${out.shape.join('×')} for a ${w}×${h} input`);
      const y = out.dataSync() as Float32Array;
      out.dispose();
      const N = H * W;
      const data = new Float32Array(3 * N);
      for (let i = 0; i < N; i++) for (let c = 0; c < 3; c++) data[c * N + i] = y[3 * i + c];
      return { data, channels: 3, height: H, width: W };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Detail crops and the grid

/** The size×size window (stride 4, inside `margin`) with the most gradient energy in the HR image. */
function busiestWindow(hr: Planar, size: number, margin: number): { top: number; left: number; size: number } {
  const { height: H, width: W, data } = hr;
  const s = Math.min(size, H - 2 * margin, W - 2 * margin);
  if (s < 8) return { top: 0, left: 0, size: Math.min(H, W) };
  const N = H * W;
  // integral image of |∂x| + |∂y| of the luma
  const I = new Float64Array((H + 1) * (W + 1));
  const luma = (i: number) => 0.299 * data[i] + 0.587 * data[N + i] + 0.114 * data[2 * N + i];
  for (let y = 0; y < H; y++) {
    let row = 0;
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      const g = (x + 1 < W ? Math.abs(luma(i + 1) - luma(i)) : 0) + (y + 1 < H ? Math.abs(luma(i + W) - luma(i)) : 0);
      row += g;
      I[(y + 1) * (W + 1) + x + 1] = I[y * (W + 1) + x + 1] + row;
    }
  }
  let best = { top: margin, left: margin, size: s };
  let bestE = -1;
  for (let t = margin; t + s <= H - margin; t += 4) {
    for (let l = margin; l + s <= W - margin; l += 4) {
      const e = I[(t + s) * (W + 1) + l + s] - I[t * (W + 1) + l + s] - I[(t + s) * (W + 1) + l] + I[t * (W + 1) + l];
      if (e > bestE) {
        bestE = e;
        best = { top: t, left: l, size: s };
      }
    }
  }
  return best;
}

/** The window of a planar image as interleaved 8-bit RGB, each pixel repeated zoom×zoom (nearest). */
function cropZoom(p: Planar, top: number, left: number, size: number, zoom: number): Buffer {
  const { height: H, width: W, data } = p;
  const Z = size * zoom;
  const out = Buffer.alloc(Z * Z * 3);
  for (let y = 0; y < Z; y++) {
    for (let x = 0; x < Z; x++) {
      const src = (top + Math.floor(y / zoom)) * W + left + Math.floor(x / zoom);
      for (let c = 0; c < 3; c++) out[3 * (y * Z + x) + c] = toUint8Value(data[c * H * W + src]);
    }
  }
  return out;
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

async function makeGrid(
  rows: { name: string; detail: { top: number; left: number; size: number }; cells: Planar[] }[],
  labels: string[],
  zoom: number,
): Promise<Buffer> {
  const cell = Math.max(...rows.map((r) => r.detail.size)) * zoom;
  const gap = 4;
  const head = 26;
  const side = 120;
  const width = side + labels.length * (cell + gap);
  const rowH = cell + gap;
  const height = head + rows.length * rowH;
  const composites: OverlayOptions[] = [];
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><style>text{font-family:DejaVu Sans,sans-serif;fill:#000}</style>`;
  labels.forEach((l, k) => {
    svg += `<text x="${side + k * (cell + gap) + cell / 2}" y="${head - 8}" font-size="15" text-anchor="middle">${escapeXml(l)}</text>`;
  });
  rows.forEach((r, i) => {
    const y0 = head + i * rowH;
    svg += `<text x="6" y="${y0 + cell / 2}" font-size="14">${escapeXml(r.name)}</text>`;
    svg += `<text x="6" y="${y0 + cell / 2 + 18}" font-size="11" fill="#555">${r.detail.size}×${r.detail.size} at</text>`;
    svg += `<text x="6" y="${y0 + cell / 2 + 32}" font-size="11" fill="#555">(${r.detail.left}, ${r.detail.top}), ${zoom}x</text>`;
    r.cells.forEach((p, k) => {
      const Z = r.detail.size * zoom;
      composites.push({
        input: cropZoom(p, r.detail.top, r.detail.left, r.detail.size, zoom),
        raw: { width: Z, height: Z, channels: 3 },
        top: y0,
        left: side + k * (cell + gap),
      });
    });
  });
  svg += '</svg>';
  return sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }, ...composites])
    .png({ compressionLevel: 9 })
    .toBuffer();
}

// ---------------------------------------------------------------------------------------------
// Tables

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const f = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : 'inf');

function markdown(o: { rows: ImageRow[]; meanMetrics: Record<MethodKey, Metrics>; names: Record<MethodKey, string>; header: string; draws: number }): string {
  const keys: MethodKey[] = ['bicubic', 'tau0', 'tauT', 'esrgan'];
  const secs: Record<MethodKey, string> = {
    bicubic: '—',
    tau0: '',
    tauT: '',
    esrgan: f(mean(o.rows.map((r) => r.seconds.esrgan)), 1),
  };
  const srSecs = f(mean(o.rows.map((r) => r.seconds.srflow)), 1);
  let md = `${o.header}\n\n`;
  md += '| method | PSNR (dB) | vs bicubic | SSIM | LR-PSNR (dB) | diversity (/255) | seconds per image |\n|---|---|---|---|---|---|---|\n';
  for (const k of keys) {
    const m = o.meanMetrics[k];
    const gain = k === 'bicubic' ? '—' : `${m.psnr - o.meanMetrics.bicubic.psnr >= 0 ? '+' : ''}${f(m.psnr - o.meanMetrics.bicubic.psnr, 2)} dB`;
    const s = k === 'tau0' ? `${srSecs} (all ${o.draws} draws)` : k === 'tauT' ? '(in the row above)' : secs[k];
    md += `| ${o.names[k]} | ${f(m.psnr, 2)} | ${gain} | ${f(m.ssim, 4)} | ${f(m.lrPsnr, 2)} | ${f(m.diversity255, 2)} | ${s} |\n`;
  }
  md += `\nPer image (PSNR dB / SSIM / LR-PSNR dB; diversity /255 for the sampled column):\n\n`;
  md += `| image | ${keys.map((k) => o.names[k]).join(' | ')} |\n|---|${keys.map(() => '---').join('|')}|\n`;
  const cell = (m: Metrics, k: MethodKey) => `${f(m.psnr, 2)} / ${f(m.ssim, 3)} / ${f(m.lrPsnr, 1)}${k === 'tauT' ? ` / div ${f(m.diversity255, 2)}` : ''}`;
  for (const r of o.rows) md += `| ${r.name} (${r.width}×${r.height}) | ${keys.map((k) => cell(r.metrics[k], k)).join(' | ')} |\n`;
  md += `| **mean** | ${keys.map((k) => cell(o.meanMetrics[k], k)).join(' | ')} |\n`;
  return md;
}

// ---------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<void> {
  const program = new Command('compare-esrgan')
    .description('compare bicubic, srflow τ = 0 and τ = T, and UpscalerJS esrgan-thick on a folder of HR images')
    .requiredOption('--hr <dir>', 'folder of HR images; LR = MATLAB bicubic ↓scale (8-bit path), as srflow eval')
    .option('--model <path>', 'srflow model (default: the shipped models/srflow-4x.safetensors)')
    .option('--crop <n>', 'centre N×N crop of each HR image (multiple of the scale; 0 = whole images)', '256')
    .option('--temperature <t>', 'temperature of the sampled column', '0.8')
    .addOption(samplesOption('samples at that temperature (diversity needs ≥ 2)', '4'))
    .addOption(seedOption('first seed'))
    .option('--detail <n>', 'side of the HR detail crop in the grid', '96')
    .option('--zoom <n>', 'nearest-neighbour enlargement of the detail crops', '2')
    .option('--backend <name>', "TensorFlow.js backend for esrgan-thick: 'wasm' or 'cpu'", 'wasm')
    .option('--out <dir>', 'write compare-esrgan.md, compare-esrgan.json and compare-esrgan-grid.png there')
    .addOption(jsonOption('print one JSON object instead of the markdown table'))
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  try {
    program.parse(argv);
  } catch (e) {
    if (e instanceof CommanderError && (e.code === 'commander.helpDisplayed' || e.code === 'commander.version')) return;
    throw new UsageError((e as Error).message.replace(/^error:\s*/i, ''));
  }
  const o = program.opts<{
    hr: string;
    model?: string;
    crop: string;
    temperature: string;
    samples: string;
    seed: string;
    detail: string;
    zoom: string;
    backend: string;
    out?: string;
    json?: boolean;
  }>();
  const cropN = parseInteger(o.crop, '--crop', 0);
  const T = Number(o.temperature);
  if (o.temperature.trim() === '' || !Number.isFinite(T) || T < 0)
    throw new UsageError(`Expected a finite number ≥ 0 for --temperature but received ${JSON.stringify(o.temperature)}`);
  const samples = parseInteger(o.samples, '--samples', 1);
  const seed = parseInteger(o.seed, '--seed', 0);
  const detailN = parseInteger(o.detail, '--detail', 8);
  const zoom = parseInteger(o.zoom, '--zoom', 1);
  if (o.backend !== 'wasm' && o.backend !== 'cpu') throw new UsageError(`Expected 'wasm' or 'cpu' for --backend but received ${JSON.stringify(o.backend)}`);
  if (o.out !== undefined) {
    const st = await fsp.stat(o.out).catch(() => null);
    if (st && !st.isDirectory()) throw new UsageError(`Expected a folder for --out but received ${o.out} (a file)`);
  }
  const log = (s: string) => process.stderr.write(`compare-esrgan: ${s}\n`);

  const t0 = performance.now();
  const model = await resolveModel(o.model, { hint: 'pass --model PATH' });
  const s = model.scale;
  if (cropN !== 0 && cropN % s !== 0) throw new UsageError(`Expected a multiple of the scale ${s} for --crop but received ${cropN}`);
  const set = await loadValidationSet(o.hr, { scale: s, crop: cropN === 0 ? undefined : cropN, onWarning: (m) => log(`warning: ${m}`) });
  const esrgan = await loadEsrgan(s, o.backend);
  log(
    `esrgan-thick ${esrgan.version} ${s}x from ${esrgan.modelJson} (${(esrgan.weightBytes / 1048576).toFixed(1)} MB of weights), TensorFlow.js ${tf.version.tfjs} ${tf.getBackend()} backend`,
  );

  const draws: Draw[] = [{ temperature: 0, seed }];
  for (let i = 0; i < samples; i++) draws.push({ temperature: T, seed: seed + i });
  const border = s;
  const rows: ImageRow[] = [];
  const gridRows: { name: string; detail: { top: number; left: number; size: number }; cells: Planar[] }[] = [];
  for (const [i, im] of set.entries()) {
    const measure = (outs: Planar[]): Metrics => ({
      psnr: mean(outs.map((x) => psnr(x, im.hr, { border }))),
      ssim: mean(outs.map((x) => ssim(x, im.hr, { border }))),
      lrPsnr: mean(outs.map((x) => lrPsnr(x, im.lr, s))),
      diversity255: outs.length >= 2 ? 255 * diversity(outs) : 0,
    });
    const bic = upscaleBicubic(im.lr, s);
    let t = performance.now();
    const sr = await superResolve(model, im.lr, { draws });
    const srSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    const esr = esrgan.run(im.lr);
    const esrSeconds = (performance.now() - t) / 1000;
    const tau0 = sr.samples[0];
    const tauT = sr.samples.slice(1);
    const detail = busiestWindow(im.hr, detailN, border);
    rows.push({
      name: im.name,
      width: im.hr.width,
      height: im.hr.height,
      detail,
      metrics: { bicubic: measure([bic]), tau0: measure([tau0]), tauT: measure(tauT), esrgan: measure([esr]) },
      seconds: { srflow: srSeconds, esrgan: esrSeconds },
      srflowNonFinite: sr.nonFinite,
      srflowOutOfRange: sr.outOfRange,
    });
    gridRows.push({ name: im.name, detail, cells: [bic, tau0, tauT[0], esr, im.hr] });
    log(
      `${im.name} (${i + 1}/${set.length}, ${im.hr.width}×${im.hr.height}): srflow ${draws.length} draws ${srSeconds.toFixed(1)} s, esrgan-thick ${esrSeconds.toFixed(1)} s`,
    );
  }
  const keys: MethodKey[] = ['bicubic', 'tau0', 'tauT', 'esrgan'];
  const meanMetrics = Object.fromEntries(
    keys.map((k) => [
      k,
      {
        psnr: mean(rows.map((r) => r.metrics[k].psnr)),
        ssim: mean(rows.map((r) => r.metrics[k].ssim)),
        lrPsnr: mean(rows.map((r) => r.metrics[k].lrPsnr)),
        diversity255: mean(rows.map((r) => r.metrics[k].diversity255)),
      },
    ]),
  ) as Record<MethodKey, Metrics>;
  const names: Record<MethodKey, string> = {
    bicubic: 'bicubic',
    tau0: 'srflow τ = 0',
    tauT: `srflow τ = ${T} (${samples} samples)`,
    esrgan: 'esrgan-thick',
  };
  const modelName = o.model ?? 'models/srflow-4x.safetensors (default)';
  const region = cropN === 0 ? 'whole images (cropped to multiples of the scale)' : `the centre ${cropN}×${cropN} of each image`;
  const header =
    `srflow model \`${modelName}\` (${s}x) against UpscalerJS \`@upscalerjs/esrgan-thick\` ${esrgan.version} (${s}x, TensorFlow.js ${tf.version.tfjs}, ${tf.getBackend()} backend) ` +
    `on ${rows.length} images of \`${o.hr}\`, ${region}. LR: MATLAB bicubic ↓${s} (8-bit path), as \`srflow eval\`. ` +
    `PSNR and SSIM on RGB, 8-bit values, ${border}-pixel border cropped; LR-PSNR: the output's MATLAB-bicubic downscale against the LR; ` +
    `diversity: mean per-value standard deviation across the ${samples} samples ×255 (0 for the deterministic methods); the τ = ${T} metrics are means over the samples (seeds ${seed}–${seed + samples - 1}). ` +
    `srflow outputs are the network's raw samples; seconds are wall time on this machine.`;
  const md = markdown({ rows, meanMetrics, names, header, draws: draws.length });
  const seconds = (performance.now() - t0) / 1000;
  const result = {
    model: modelName,
    hr: o.hr,
    scale: s,
    crop: cropN === 0 ? null : cropN,
    border,
    temperature: T,
    samples,
    seed,
    esrgan: { package: '@upscalerjs/esrgan-thick', version: esrgan.version, tfjs: tf.version.tfjs, backend: tf.getBackend() },
    names,
    images: rows,
    mean: meanMetrics,
    seconds,
  };
  const json = JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
  if (o.out !== undefined) {
    const grid = await makeGrid(gridRows, ['bicubic', 'srflow τ = 0', `srflow τ = ${T} (seed ${seed})`, 'esrgan-thick', 'ground truth'], zoom);
    await fsp.mkdir(o.out, { recursive: true });
    const gridName = 'compare-esrgan-grid.png';
    const mdFull = `${md}\n![detail crops: bicubic | srflow τ = 0 | srflow τ = ${T} | esrgan-thick | ground truth](${gridName})\n\nDetail crops: for each image the ${detailN}×${detailN} HR window with the most gradient energy in the ground truth, enlarged ${zoom}x (nearest).\n`;
    await writeFileAtomicAsync(join(o.out, 'compare-esrgan.md'), Buffer.from(mdFull));
    await writeFileAtomicAsync(join(o.out, 'compare-esrgan.json'), Buffer.from(`${json}\n`));
    await writeFileAtomicAsync(join(o.out, gridName), grid);
    log(`wrote ${['compare-esrgan.md', 'compare-esrgan.json', gridName].map((n) => join(resolve(o.out!), n)).join(', ')}`);
  }
  process.stdout.write(o.json ? `${json}\n` : `${md}\n`);
  log(`${seconds.toFixed(1)} s in all`);
}

main(process.argv).catch((e: unknown) => {
  process.stderr.write(`compare-esrgan: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
