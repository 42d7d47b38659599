/**
 * Measure `srflow restore` on photo crops: for every photo given, 256×256 crops (the centre, and
 * the centres of the four quadrants when the photo is at least 512 pixels on both sides), degraded
 * by JPEG quality 10 (sharp/libjpeg-turbo, 4:2:0) and by Gaussian noise σ = 15/255 (seeded,
 * clipped, 8-bit), restored with the library's restoreImage at full strength (with the JPEG's
 * quantisation table for the JPEG crops, as `srflow restore file.jpg` does). Prints the PSNR
 * (RGB, 8-bit) of the degraded and restored crops and the mean gains: all steps, the model's
 * steps 1–4 alone, and the classical chroma step 5 alone on the degraded input. Usage:
 *
 *   node --import tsx scripts/restore-eval.ts [--model M] [--crops 1|5] [--passes n] photo.png ...
 */
import sharp from 'sharp';
import { loadImage, type Planar } from '../src/io/image.js';
import { psnr } from '../src/metrics/psnr.js';
import { loadModel } from '../src/models/api.js';
import { Rng } from '../src/tensor/random.js';
import { crop } from '../src/upscale/pad.js';
import { restoreImage, RESTORE_FULL } from '../src/edit/restore.js';
import { filterChroma } from '../src/edit/chroma.js';
import { projectJpegLuma, readJpegTables, type JpegTables } from '../src/edit/jpeg.js';

const args = process.argv.slice(2);
let modelPath = 'models/srflow-4x.safetensors';
let crops = 1;
let passes: number | undefined;
const files: string[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--model') modelPath = args[++i];
  else if (args[i] === '--crops') crops = Number(args[++i]);
  else if (args[i] === '--passes') passes = Number(args[++i]);
  else files.push(args[i]);
}
const S = 256;
const model = await loadModel(modelPath);

function toU8(p: Planar): Buffer {
  const n = p.width * p.height;
  const b = Buffer.alloc(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) b[3 * i + c] = Math.round(Math.min(1, Math.max(0, p.data[c * n + i])) * 255);
  return b;
}
async function jpeg(p: Planar, q: number): Promise<{ img: Planar; tables: JpegTables | null }> {
  const buf = await sharp(toU8(p), { raw: { width: p.width, height: p.height, channels: 3 } })
    .jpeg({ quality: q })
    .toBuffer();
  return { img: (await loadImage(buf)).rgb, tables: readJpegTables(buf) };
}
const clip = (p: Planar): Planar => ({ ...p, data: p.data.map((v) => (v > 0 ? (v < 1 ? v : 1) : 0)) });
function noisy(p: Planar, sigma: number, seed: number): Planar {
  const r = new Rng(seed);
  return { ...p, data: Float32Array.from(p.data, (v) => Math.round(Math.min(1, Math.max(0, v + sigma * r.normal())) * 255) / 255) };
}

const gains: Record<string, number[]> = {};
let k = 0;
for (const f of files) {
  const img = (await loadImage(f)).rgb;
  const spots: [number, number][] = [[Math.floor((img.height - S) / 2), Math.floor((img.width - S) / 2)]];
  if (crops > 1 && img.height >= 2 * S && img.width >= 2 * S) {
    for (const fy of [0.25, 0.75]) for (const fx of [0.25, 0.75]) spots.push([Math.floor(img.height * fy - S / 2), Math.floor(img.width * fx - S / 2)]);
  }
  for (const [y0, x0] of spots) {
    const gt = crop(img, y0, x0, S, S);
    const j = await jpeg(gt, 10);
    for (const [name, deg, tables] of [
      ['jpeg q10', j.img, j.tables],
      ['noise 15', noisy(gt, 15 / 255, ++k), null],
    ] as [string, Planar, JpegTables | null][]) {
      const t0 = performance.now();
      // steps 1–4 once; steps 5 (chroma) and 6 (JPEG constraint) applied here as restoreImage does
      const noChroma = (await restoreImage(model, deg, { chroma: false, passes })).image;
      let full = clip(filterChroma(noChroma, { radius: RESTORE_FULL.chromaRadius, eps: RESTORE_FULL.chromaEps }));
      if (tables) full = clip(projectJpegLuma(full, deg, tables.luma).image);
      const pd = psnr(deg, gt);
      const pn = psnr(noChroma, gt);
      const pf = psnr(full, gt);
      const pc = psnr(filterChroma(deg, { radius: RESTORE_FULL.chromaRadius, eps: RESTORE_FULL.chromaEps }), gt);
      (gains[`${name} full`] ??= []).push(pf - pd);
      (gains[`${name} model steps 1-4 only`] ??= []).push(pn - pd);
      (gains[`${name} chroma step alone (no model)`] ??= []).push(pc - pd);
      console.log(
        `${f.split('/').pop()} @${y0},${x0} ${name}: degraded ${pd.toFixed(2)} dB, restored ${pf.toFixed(2)} dB (${(pf - pd >= 0 ? '+' : '') + (pf - pd).toFixed(2)}), model only ${pn.toFixed(2)}, chroma step alone ${pc.toFixed(2)}  [${((performance.now() - t0) / 1000).toFixed(1)} s]`,
      );
    }
  }
}
console.log('\nmean gains over the degraded input (dB):');
for (const [n, v] of Object.entries(gains)) {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  console.log(`  ${n}: ${mean >= 0 ? '+' : ''}${mean.toFixed(3)} (${v.length} crops, min ${Math.min(...v).toFixed(2)})`);
}
