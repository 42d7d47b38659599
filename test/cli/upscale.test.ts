import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { Rng } from '../../src/tensor/random.js';
import { createModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { runCli } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let dir = '';
let model = '';

const run = runCli;

/** A smooth 8-bit RGB test image. */
function smooth(w: number, h: number, channels: 1 | 2 | 3 | 4 = 3): Buffer {
  const out = Buffer.alloc(w * h * channels);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < channels; c++) out[(y * w + x) * channels + c] = Math.round(255 * (0.5 + 0.3 * Math.sin(x / 3 + c) * Math.cos(y / 4)));
    }
  }
  return out;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'srflow-cli-upscale-'));
  const m = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 }), 1);
  const r = new Rng(7);
  for (const [name, p] of m.parameters()) {
    if (/\.4\.(weight|bias)$|conv\.(weight|bias)$|logs$/.test(name) && !name.startsWith('RRDB.'))
      for (let i = 0; i < p.size; i++) p.data[i] = 0.01 * r.normal();
  }
  model = join(dir, 'tiny.safetensors');
  await m.save(model);
  await sharp(smooth(13, 11), { raw: { width: 13, height: 11, channels: 3 } })
    .png()
    .toFile(join(dir, 'rgb.png'));
  await sharp(smooth(10, 8, 1), { raw: { width: 10, height: 8, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(join(dir, 'gray.png'));
  await sharp(smooth(9, 7, 4), { raw: { width: 9, height: 7, channels: 4 } })
    .png()
    .toFile(join(dir, 'rgba.png'));
  const u16 = Uint16Array.from(smooth(8, 6), (v) => v * 257);
  await sharp(Buffer.from(u16.buffer), { raw: { width: 8, height: 6, channels: 3 } })
    .toColourspace('rgb16')
    .png()
    .toFile(join(dir, 'deep.png'));
  await sharp(smooth(30, 28), { raw: { width: 30, height: 28, channels: 3 } })
    .jpeg()
    .toFile(join(dir, 'photo.jpg'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('one input, -o FILE: 4× output, path printed; default name next to the input', async () => {
  const out = join(dir, 'single.png');
  const r = await run(['upscale', join(dir, 'rgb.png'), '--model', model, '-o', out, '--temperature', '0']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /single\.png \(52×44\)/);
  const meta = await sharp(out).metadata();
  assert.equal(meta.width, 52);
  assert.equal(meta.height, 44);
  const d = join(dir, 'nextto');
  mkdirSync(d);
  await sharp(smooth(6, 6), { raw: { width: 6, height: 6, channels: 3 } })
    .png()
    .toFile(join(d, 'pic.png'));
  const r2 = await run(['upscale', join(d, 'pic.png'), '--model', model, '--quiet']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(r2.stdout, '');
  assert.equal(r2.stderr, '');
  assert.deepEqual(readdirSync(d).sort(), ['pic.png', 'pic_x4.png']);
});

test('several temperatures × samples into --out-dir (created), numbered names, --json', async () => {
  const outDir = join(dir, 'many');
  const r = await run([
    'upscale',
    join(dir, 'rgb.png'),
    join(dir, 'photo.jpg'),
    '--model',
    model,
    '--out-dir',
    outDir,
    '--temperature',
    '0,0.8',
    '--samples',
    '2',
    '--seed',
    '3',
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.scale, 4);
  assert.deepEqual(j.temperatures, [0, 0.8]);
  assert.equal(j.images.length, 2);
  const names = readdirSync(outDir).sort();
  assert.deepEqual(names, [
    'photo_x4_t0.8_s1.png',
    'photo_x4_t0.8_s2.png',
    'photo_x4_t0_s1.png',
    'photo_x4_t0_s2.png',
    'rgb_x4_t0.8_s1.png',
    'rgb_x4_t0.8_s2.png',
    'rgb_x4_t0_s1.png',
    'rgb_x4_t0_s2.png',
  ]);
  const img = j.images[1];
  assert.equal(img.inputWidth, 30);
  assert.equal(img.width, 120);
  assert.equal(img.height, 112);
  assert.equal(img.outputs.length, 4);
  assert.deepEqual(
    img.outputs.map((o: { temperature: number; seed: number; sample: number }) => [o.temperature, o.seed, o.sample]),
    [
      [0, 3, 1],
      [0, 4, 2],
      [0.8, 3, 1],
      [0.8, 4, 2],
    ],
  );
  assert.equal(typeof img.seconds.infer, 'number');
  assert.equal(typeof j.seconds.total, 'number');
});

test('grayscale stays grayscale, 16-bit stays 16-bit, alpha is kept, --format jpg', async () => {
  const outDir = join(dir, 'kinds');
  const r = await run(['upscale', join(dir, 'gray.png'), join(dir, 'deep.png'), join(dir, 'rgba.png'), '--model', model, '--out-dir', outDir, '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  const g = await sharp(join(outDir, 'gray_x4.png')).metadata();
  assert.equal(g.channels, 1);
  assert.equal(g.width, 40);
  const d = await sharp(join(outDir, 'deep_x4.png')).metadata();
  assert.equal(d.depth, 'ushort');
  const a = await sharp(join(outDir, 'rgba_x4.png')).metadata();
  assert.equal(a.channels, 4);
  assert.equal(a.width, 36);
  const rj = await run(['upscale', join(dir, 'rgb.png'), '--model', model, '--out-dir', outDir, '--format', 'jpg', '--quiet']);
  assert.equal(rj.code, 0, rj.stderr);
  assert.equal((await sharp(join(outDir, 'rgb_x4.jpg')).metadata()).format, 'jpeg');
});

test('--uncertainty writes a grayscale map; --consistency exact reaches 60 dB; --tile forces tiles', async () => {
  const outDir = join(dir, 'extras');
  const u = join(dir, 'unc.png');
  const r = await run([
    'upscale',
    join(dir, 'photo.jpg'),
    '--model',
    model,
    '--out-dir',
    outDir,
    '--samples',
    '3',
    '--uncertainty',
    u,
    '--consistency',
    'exact',
    '--tile',
    '12',
    '--tile-overlap',
    '4',
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  const img = j.images[0];
  assert.ok(img.tiles > 1, `tiles ${img.tiles}`);
  assert.equal(img.tileSize, 12);
  for (const o of img.outputs) assert.ok(o.lrPsnr >= 60, `LR-PSNR ${o.lrPsnr}`);
  assert.equal(img.uncertainty[0].path, u);
  const meta = await sharp(u).metadata();
  assert.equal(meta.channels, 1);
  assert.equal(meta.width, 120);
  assert.equal(meta.height, 112);
  assert.equal(readdirSync(outDir).length, 3);
});

test('--help documents rounding and the naming rules', async () => {
  const r = await run(['upscale', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /ROUNDED/);
  assert.match(r.stdout, /truncates/);
  assert.match(r.stdout, /_x4_t0\.8_s1\.png/);
  assert.ok(existsSync(join(ROOT, 'src/cli/upscale.ts')), 'source');
});
