import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Rng } from '../../src/tensor/random.js';
import { createModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadImage, saveImage } from '../../src/io/image.js';
import { imresize } from '../../src/data/bicubic.js';
import { psnr } from '../../src/metrics/index.js';
import { runCli } from '../helpers/cli.js';

let dir = '';
let model = '';

const run = runCli;

function smooth(w: number, h: number, phase: number): Buffer {
  const out = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) out[(y * w + x) * 3 + c] = Math.round(255 * (0.5 + 0.3 * Math.sin(x / 5 + c + phase) * Math.cos(y / 7 - phase)));
    }
  }
  return out;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'srflow-cli-eval-'));
  const m = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 }), 2);
  const r = new Rng(3);
  for (const [name, p] of m.parameters()) {
    if (name.endsWith('invconv.weight')) continue;
    const std = /logs$/.test(name) ? 0.02 : /\.4\.(weight|bias)$|conv\.(weight|bias)$/.test(name) ? 0.01 : null;
    if (std !== null) for (let i = 0; i < p.size; i++) p.data[i] = std * r.normal();
  }
  model = join(dir, 'tiny.safetensors');
  await m.save(model);
  mkdirSync(join(dir, 'hr'));
  await sharp(smooth(40, 36, 0), { raw: { width: 40, height: 36, channels: 3 } })
    .png()
    .toFile(join(dir, 'hr', 'a.png'));
  await sharp(smooth(34, 30, 1), { raw: { width: 34, height: 30, channels: 3 } })
    .png()
    .toFile(join(dir, 'hr', 'b.png'));
  writeFileSync(join(dir, 'hr', 'broken.png'), 'not an image');
  await sharp(smooth(48, 40, 2), { raw: { width: 48, height: 40, channels: 3 } })
    .png()
    .toFile(join(dir, 'photo.png'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('eval --json: per image and mean PSNR, SSIM, LR-PSNR, diversity, NLL, bicubic baseline', async () => {
  const r = await run(['eval', '--hr', join(dir, 'hr'), '--model', model, '--temperatures', '0,0.8', '--samples', '2', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^srflow: warning: Skipping broken\.png/);
  const j = JSON.parse(r.stdout);
  assert.equal(j.scale, 4);
  assert.equal(j.border, 4);
  assert.equal(j.images.length, 2);
  const a = j.images[0];
  assert.equal(a.name, 'a');
  assert.equal(a.width, 40);
  assert.equal(a.height, 36);
  assert.ok(Number.isFinite(a.nllBitsPerDim), `nll ${a.nllBitsPerDim}`);
  assert.ok(a.bicubic.psnr > 20 && a.bicubic.ssim > 0.5, JSON.stringify(a.bicubic));
  assert.deepEqual(
    a.results.map((x: { temperature: number }) => x.temperature),
    [0, 0.8],
  );
  assert.equal(a.results[0].diversity, 0);
  assert.ok(a.results[1].diversity > 0, 'τ = 0.8 samples differ');
  for (const x of a.results) assert.ok(Number.isFinite(x.psnr) && Number.isFinite(x.ssim) && Number.isFinite(x.lrPsnr), JSON.stringify(x));
  for (const h of [a.results[0].hatching, a.results[1].hatching, a.bicubic.hatching, a.hatchingHr]) assert.ok(h >= 0 && h <= 1, `hatching share ${h}`);
  // b is 34×30: modcropped to 32×28; its LR (8×7) is padded for sampling and cropped for the NLL
  assert.equal(j.images[1].width, 32);
  assert.equal(j.images[1].nllRegion.height, 24);
  assert.ok(Math.abs(j.mean.bicubic.psnr - (a.bicubic.psnr + j.images[1].bicubic.psnr) / 2) < 1e-9, 'mean');
  assert.equal(j.mean.results.length, 2);
});

test('eval prints a readable table', async () => {
  const r = await run(['eval', '--hr', join(dir, 'hr'), '--model', model, '--temperatures', '0', '--quiet', '--crop', '24']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /image\s+τ\s+PSNR\s+SSIM\s+LR-PSNR\s+diversity\s+hatch %\s+NLL b\/d\s+bic PSNR\s+bic SSIM\s+bic hatch %\s+HR hatch %/);
  assert.match(r.stdout, /^a\s+0\s+\d/m);
  assert.match(r.stdout, /^mean \(2\)/m);
});

test('encode → decode reproduces the HR image; --lr gives the same latents; decode --temperature 0 differs', async () => {
  const lat = join(dir, 'z.safetensors');
  const r = await run(['encode', '--model', model, '--hr', join(dir, 'photo.png'), '-o', lat, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.lr.width, 12);
  assert.ok(Number.isFinite(info.nllBitsPerDim), 'nll');
  const file = readSafetensors(lat);
  assert.equal(file.metadata.format, 'srflow-latents');
  assert.equal(file.metadata.lr_width, '12');
  assert.equal(file.metadata.lr_height, '10');
  assert.deepEqual([...file.tensors.keys()], ['z.0', 'z.1']);
  // the same LR as a file (8-bit path values are exact in a PNG)
  const hr = await loadImage(join(dir, 'photo.png'));
  const lr = imresize(hr.rgb, 1 / 4, { uint8: true });
  const lrPath = join(dir, 'photo_lr.png');
  await saveImage(lrPath, { rgb: lr });
  const lat2 = join(dir, 'z2.safetensors');
  const r2 = await run(['encode', '--model', model, '--hr', join(dir, 'photo.png'), '--lr', lrPath, '-o', lat2, '--quiet']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual(readSafetensors(lat2).tensors.get('z.1')!.data, file.tensors.get('z.1')!.data);

  const dec = join(dir, 'dec.png');
  const d = await run(['decode', '--model', model, '--lr', lrPath, '--latents', lat, '-o', dec]);
  assert.equal(d.code, 0, d.stderr);
  const back = await loadImage(dec);
  const p = psnr(back.rgb, hr.rgb);
  assert.ok(p > 45, `round trip ${p} dB`);
  const d0 = await run(['decode', '--model', model, '--lr', lrPath, '--latents', lat, '-o', join(dir, 'dec0.png'), '--temperature', '0']);
  assert.equal(d0.code, 0, d0.stderr);
  const mode = await loadImage(join(dir, 'dec0.png'));
  assert.ok(psnr(mode.rgb, hr.rgb) < p, 'the mode is not the HR image');
  // an LR of another size does not fit the latents
  const bad = await run(['decode', '--model', model, '--lr', join(dir, 'hr', 'a.png'), '--latents', lat, '-o', join(dir, 'x.png')]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^srflow: The latents .* were made for a 12×10 LR image but .*a\.png is 40×36\n$/);
});
