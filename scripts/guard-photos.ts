/**
 * The sampling guard must not change photographs: upscales HR crops of photos (LR by the MATLAB
 * kernel) with the guard on and off, at τ = 0 and τ = 0.8, and prints per crop the PSNR against
 * the ground truth of both, their difference and how many values the guard touched.
 *
 *   npx tsx scripts/guard-photos.ts --model FILE [--hr ../shared/data/val] [--crop 128] [--crops 2] [--samples 2]
 */
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadImage, type Planar } from '../src/io/image.js';
import { downscale } from '../src/data/bicubic.js';
import { loadModel } from '../src/models/api.js';
import { superResolve } from '../src/upscale/engine.js';
import { psnr } from '../src/metrics/index.js';
import { crop } from '../src/upscale/pad.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};

async function main(): Promise<void> {
  const model = await loadModel(resolve(opt('--model', 'models/srflow-4x.safetensors')));
  if (!model.net.guard) throw new Error('the model carries no sampling-guard calibration');
  const dir = resolve(opt('--hr', '../shared/data/val'));
  const size = Number(opt('--crop', '128'));
  const per = Number(opt('--crops', '2'));
  const samples = Number(opt('--samples', '2'));
  const s = model.scale;
  const draws = [{ temperature: 0, seed: 1 }, ...Array.from({ length: samples }, (_v, i) => ({ temperature: 0.8, seed: 1 + i }))];
  let worst = 0;
  let touchedAll = 0;
  console.log('| crop | τ | PSNR guard off | PSNR guard on | difference (dB) | values touched |');
  console.log('|---|---|---|---|---|---|');
  for (const f of readdirSync(dir)
    .filter((x) => /\.(png|jpe?g)$/i.test(x))
    .sort()) {
    const img = (await loadImage(join(dir, f))).rgb;
    for (let k = 0; k < per; k++) {
      // crops spread along the diagonal
      const y0 = Math.floor(((k + 1) * (img.height - size)) / (per + 1));
      const x0 = Math.floor(((k + 1) * (img.width - size)) / (per + 1));
      const hr: Planar = crop(img, y0, x0, size, size);
      const lr = downscale(hr, s);
      const off = await superResolve(model, lr, { draws, guard: false });
      const on = await superResolve(model, lr, { draws, guard: true });
      draws.forEach((d, j) => {
        const a = psnr(off.samples[j], hr);
        const b = psnr(on.samples[j], hr);
        worst = Math.max(worst, Math.abs(a - b));
        touchedAll += on.guard.touched[j];
        console.log(
          `| ${f} @${y0},${x0} | ${d.temperature} (seed ${d.seed}) | ${a.toFixed(3)} | ${b.toFixed(3)} | ${(b - a).toFixed(4)} | ${on.guard.touched[j]} |`,
        );
      });
    }
  }
  console.log(`largest |difference|: ${worst.toFixed(4)} dB; values touched in all: ${touchedAll}`);
}

main().catch((e) => {
  process.stderr.write(`guard-photos: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
