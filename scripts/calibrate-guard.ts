/**
 * Calibrates the sampling guard (src/flow/guard.ts) of an srflow-trained model on training photos
 * and writes a copy of the model file with the calibration in its `flow_guard` metadata (tensors
 * and other metadata unchanged, checked after writing).
 *
 *   npx tsx scripts/calibrate-guard.ts --model models/srflow-4x.safetensors \
 *     --data ../shared/data/train --out /tmp/srflow-4x.guarded.safetensors \
 *     [--crops 2] [--size 96] [--seed 0] [--margin 1] [--floor-factor 1] [--json-out CAL.json]
 *   npx tsx scripts/calibrate-guard.ts --model models/srflow-4x.safetensors \
 *     --apply models/srflow-4x.guard.json --out /tmp/srflow-4x.guarded.safetensors
 *
 * --json-out also writes the calibration alone (models/srflow-4x.guard.json is the shipped
 * model's); --apply writes a given calibration into the copy instead of computing one.
 * --data takes several folders separated by commas. Never calibrate on validation photos. Per
 * photo, --crops random HR crops of --size pixels (a multiple of the model's scale × 8), their LR
 * by the MATLAB bicubic kernel; the flow forward on each HR crop and the inverse at τ = 0, 0.8, 1.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadImage } from '../src/io/image.js';
import type { Planar } from '../src/io/image.js';
import { downscale } from '../src/data/bicubic.js';
import { Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/tensor/random.js';
import { loadNet, saveModelFile } from '../src/models/api.js';
import { calibrateGuard, GUARD_METADATA_KEY } from '../src/models/calibrate-guard.js';
import { FlowGuard, parseGuardCalibration, type GuardCalibration } from '../src/flow/guard.js';
import { openSafetensors } from '../src/io/safetensors.js';

const args = process.argv.slice(2);
const opt = (name: string, def?: string): string => {
  const i = args.indexOf(name);
  if (i >= 0 && args[i + 1] !== undefined) return args[i + 1];
  if (def === undefined) throw new Error(`missing ${name}`);
  return def;
};

async function main(): Promise<void> {
  const modelPath = resolve(opt('--model'));
  const out = resolve(opt('--out'));
  if (out === modelPath) throw new Error('--out must differ from --model (write a copy, check it, then replace)');
  const net = loadNet(modelPath);
  const apply = args.includes('--apply') ? resolve(opt('--apply')) : null;
  const t0 = Date.now();
  const cal = apply ? parseGuardCalibration(readFileSync(apply, 'utf8'), apply) : await calibrate(net);
  net.guard = new FlowGuard(cal, net.config.flow.eps);
  net.guard.check(net.layers.length, (i) => net.guardableLayer(i), apply ?? 'the calibration');
  if (args.includes('--json-out')) writeFileSync(resolve(opt('--json-out')), `${JSON.stringify(cal, null, 1)}\n`);
  writeCopy(net, modelPath, out);
  console.log(`${apply ? `applied ${apply}` : `calibrated in ${((Date.now() - t0) / 1000).toFixed(0)} s`}; wrote ${out}`);
}

async function calibrate(net: ReturnType<typeof loadNet>): Promise<GuardCalibration> {
  const dirs = opt('--data')
    .split(',')
    .map((d) => resolve(d));
  const crops = Number(opt('--crops', '2'));
  const size = Number(opt('--size', '96'));
  const seed = Number(opt('--seed', '0'));
  const margin = Number(opt('--margin', '1'));
  const floorFactor = Number(opt('--floor-factor', '1'));
  if (dirs.some((d) => /(^|\/)val(\/|$)/.test(d))) throw new Error('refusing to calibrate on a validation folder');
  const s = net.scale;
  if (size % (s * 8)) throw new Error(`--size must be a multiple of ${s * 8}`);
  const files = dirs.flatMap((d) =>
    readdirSync(d)
      .filter((f) => /\.(png|jpe?g|webp)$/i.test(f))
      .sort()
      .map((f) => join(d, f)),
  );
  const rng = new Rng(seed);
  const pairs: { hr: Tensor; lr: Tensor }[] = [];
  for (const f of files) {
    const img = (await loadImage(f)).rgb;
    for (let k = 0; k < crops; k++) {
      const y0 = rng.int(img.height - size + 1);
      const x0 = rng.int(img.width - size + 1);
      const hr = new Float32Array(3 * size * size);
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < size; y++) {
          const src = (c * img.height + y0 + y) * img.width + x0;
          hr.set(img.data.subarray(src, src + size), (c * size + y) * size);
        }
      const hrP: Planar = { data: hr, channels: 3, height: size, width: size };
      const lrP = downscale(hrP, s);
      pairs.push({ hr: new Tensor(hr, [1, 3, size, size]), lr: new Tensor(lrP.data, [1, 3, lrP.height, lrP.width]) });
    }
  }
  return calibrateGuard(net, pairs, {
    margin,
    floorFactor,
    seed,
    source: `${files.length} photos in ${dirs.map((d) => d.split('/').slice(-2).join('/')).join(', ')}, ${crops} random ${size}×${size} crops each (seed ${seed})`,
  });
}

/** Writes net (with its guard) to out with modelPath's other metadata; checks the tensors are unchanged. */
function writeCopy(net: ReturnType<typeof loadNet>, modelPath: string, out: string): void {
  const before = openSafetensors(modelPath);
  const meta = { ...before.metadata };
  delete meta[GUARD_METADATA_KEY];
  saveModelFile(net, out, meta);
  // the copy must hold the same tensors, bit for bit
  const after = openSafetensors(out);
  try {
    for (const [name, t] of before.tensors) {
      if (name.startsWith('optimizer.')) continue;
      const u = after.tensors.get(name);
      const a = t.read();
      const b = u?.read();
      if (!b || a.length !== b.length || a.some((v, i) => !Object.is(v, b[i]))) throw new Error(`the copy's tensor ${name} differs from the model's`);
    }
  } finally {
    before.close();
    after.close();
  }
}

main().catch((e) => {
  process.stderr.write(`calibrate-guard: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
