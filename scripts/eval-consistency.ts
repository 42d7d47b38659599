/**
 * Side-by-side check of `--consistency exact` (iterative back-projection, src/upscale/consistency.ts)
 * against the raw network: PSNR / LR-PSNR of τ = 0 and τ = 0.8 outputs, both ways, on a folder of HR
 * photos (LR = MATLAB bicubic ↓scale, 8-bit). Usage:
 *   npx tsx scripts/eval-consistency.ts --hr DIR [--scale 4|8] [--model FILE] [--samples 2]
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadImage } from '../src/io/image.js';
import { downscale } from '../src/data/bicubic.js';
import { psnr, lrPsnr } from '../src/metrics/psnr.js';
import { upscale } from '../src/upscale/index.js';
import { resolveModel } from '../src/upscale/model.js';

const { values } = parseArgs({
  options: { hr: { type: 'string' }, scale: { type: 'string', default: '8' }, model: { type: 'string' }, samples: { type: 'string', default: '2' } },
});
if (!values.hr) throw new Error('Expected --hr DIR');
const scale = Number(values.scale);
const model = await resolveModel(values.model, { scale });
const q8 = (p: { data: Float32Array; channels: number; height: number; width: number }) => ({
  ...p,
  data: p.data.map((v) => Math.round(Math.min(1, Math.max(0, v)) * 255) / 255),
});
const rows: string[] = [];
const sums: Record<string, number[]> = {};
for (const f of readdirSync(values.hr)
  .filter((n) => /\.(png|jpe?g|webp)$/i.test(n))
  .sort()) {
  const img = await loadImage(join(values.hr, f));
  const H = img.height - (img.height % scale),
    W = img.width - (img.width % scale);
  const hr = { data: new Float32Array(3 * H * W), channels: 3, height: H, width: W };
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) hr.data[(c * H + y) * W + x] = img.rgb.data[(c * img.height + y) * img.width + x];
  const lr = q8(downscale(hr, scale));
  const out: Record<string, number> = {};
  for (const consistency of ['none', 'exact'] as const) {
    for (const t of [0, 0.8]) {
      const r = await upscale({ data: interleave8(lr), width: lr.width, height: lr.height, channels: 3 }, {
        model,
        temperature: t,
        samples: t ? Number(values.samples) : 1,
        consistency,
        output: 'raw',
      } as never);
      let p = 0,
        l = 0;
      for (const im of r.images as { data: Float32Array; width: number; height: number }[]) {
        const planar = { data: new Float32Array(3 * im.width * im.height), channels: 3, height: im.height, width: im.width };
        for (let i = 0; i < im.width * im.height; i++) for (let c = 0; c < 3; c++) planar.data[c * im.width * im.height + i] = im.data[i * 3 + c] / 255;
        const sr = q8(planar);
        p += psnr(sr, hr, { border: scale });
        l += lrPsnr(sr, lr, scale);
      }
      const n = r.images.length;
      out[`${consistency} τ${t} psnr`] = p / n;
      out[`${consistency} τ${t} lr`] = l / n;
    }
  }
  const bic = psnr(q8(upscaleBicubicOf(lr)), hr, { border: scale });
  out['bicubic psnr'] = bic;
  for (const [k, v] of Object.entries(out)) (sums[k] ??= []).push(v);
  rows.push(
    `${f}: ` +
      Object.entries(out)
        .map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(', '),
  );
  console.log(rows[rows.length - 1]);
}
console.log(
  'mean: ' +
    Object.entries(sums)
      .map(([k, v]) => `${k} ${(v.reduce((a, b) => a + b, 0) / v.length).toFixed(2)}`)
      .join(', '),
);

/** Planar 0..1 (8-bit values) → interleaved Uint8 RGB. */
function interleave8(p: { data: Float32Array; height: number; width: number }): Uint8Array {
  const n = p.height * p.width;
  const out = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(p.data[c * n + i] * 255);
  return out;
}

function upscaleBicubicOf(lr: { data: Float32Array; channels: number; height: number; width: number }) {
  return upscaleB(lr, scale);
}
import { upscaleBicubic as upscaleB } from '../src/data/bicubic.js';
