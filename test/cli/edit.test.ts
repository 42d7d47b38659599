import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { createModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { loadImage, type Planar } from '../../src/io/image.js';
import { psnr, lrPsnr } from '../../src/metrics/index.js';
import { downscale } from '../../src/data/bicubic.js';
import { crop } from '../../src/upscale/pad.js';
import { randomiseModel } from '../helpers/model.js';
import { runCli } from '../helpers/cli.js';

let dir = '';
let model = '';

const run = runCli;

function pattern(w: number, h: number, f: (x: number, y: number, c: number) => number, channels = 3): Buffer {
  const out = Buffer.alloc(w * h * channels);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) for (let c = 0; c < channels; c++) out[(y * w + x) * channels + c] = Math.round(255 * Math.min(1, Math.max(0, f(x, y, c))));
  return out;
}

async function png(name: string, w: number, h: number, f: (x: number, y: number, c: number) => number, channels: 1 | 3 = 3): Promise<string> {
  const p = join(dir, name);
  await sharp(pattern(w, h, f, channels), { raw: { width: w, height: h, channels } })
    .png()
    .toFile(p);
  return p;
}

function quarter(img: Planar, which: 'left' | 'right'): Planar {
  const q = Math.floor(img.width / 4);
  return crop(img, 0, which === 'left' ? 0 : img.width - q, img.height, q);
}

/** One line on stderr, no stack, the given exit code. */
function oneLine(r: { code: number; stderr: string; stdout: string }, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], pattern);
}

const smooth = (x: number, y: number, c: number) => 0.5 + 0.25 * Math.sin(x / 3 + c) * Math.cos(y / 4);
const stripes = (x: number, y: number, c: number) => 0.5 + 0.3 * ((x + y + c) % 2 ? 1 : -1);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'srflow-cli-edit-'));
  const m = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 }), 1);
  randomiseModel(m, 11);
  model = join(dir, 'tiny.safetensors');
  await m.save(model);
  await png('in.png', 24, 16, smooth);
  await png('halves.png', 7, 3, (x) => (x >= 3.5 ? 1 : 0), 1);
  await png('target.png', 48, 48, smooth);
  await png('source.png', 48, 48, stripes);
  await png('mask.png', 48, 48, (x, y) => (x >= 16 && x < 32 && y >= 16 && y < 32 ? 1 : 0), 1);
  await png('black.png', 48, 48, () => 0, 1);
  await png('small.png', 40, 48, smooth);
  writeFileSync(join(dir, 'notimage.png'), 'this is not an image');
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('upscale --temperature-map: left half black, right half white: two seeds agree on the left quarter, differ on the right', async () => {
  const outs: Planar[] = [];
  for (const seed of ['1', '2']) {
    const out = join(dir, `tm${seed}.png`);
    const r = await run([
      'upscale',
      join(dir, 'in.png'),
      '--model',
      model,
      '-o',
      out,
      '--temperature',
      '0.9',
      '--seed',
      seed,
      '--temperature-map',
      join(dir, 'halves.png'),
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).temperatureMap, join(dir, 'halves.png'));
    outs.push((await loadImage(out)).rgb);
  }
  const left = psnr(quarter(outs[0], 'left'), quarter(outs[1], 'left'));
  const right = psnr(quarter(outs[0], 'right'), quarter(outs[1], 'right'));
  assert.ok(left >= 40, `left quarter ${left} dB`);
  assert.ok(right < 40, `right quarter ${right} dB`);
  const bad = join(dir, 'tm-bad.png');
  const r = await run(['upscale', join(dir, 'in.png'), '--model', model, '-o', bad, '--temperature-map', join(dir, 'notimage.png')]);
  oneLine(r, 1, /^srflow: Cannot read the temperature map .*notimage\.png: /);
  assert.ok(!existsSync(bad));
  const r2 = await run(['upscale', join(dir, 'in.png'), '--model', model, '-o', bad, '--temperature-map', join(dir, 'missing.png')]);
  oneLine(r2, 1, /temperature map .*missing\.png: file not found/);
  assert.ok(!existsSync(bad));
});

test("transfer: outside stays the target, inside moves toward the source, the LR stays the target's; --json", async () => {
  const out = join(dir, 'transfer.png');
  const r = await run([
    'transfer',
    '--target',
    join(dir, 'target.png'),
    '--source',
    join(dir, 'source.png'),
    '--mask',
    join(dir, 'mask.png'),
    '-o',
    out,
    '--model',
    model,
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.ok(Math.abs(j.maskFraction - 256 / 2304) < 1e-6);
  assert.ok(j.lrPsnr >= 45);
  const res = (await loadImage(out)).rgb;
  const tgt = (await loadImage(join(dir, 'target.png'))).rgb;
  const src = (await loadImage(join(dir, 'source.png'))).rgb;
  const inner = (img: Planar) => crop(img, 16, 16, 16, 16);
  const top = (img: Planar) => crop(img, 0, 0, 12, 48);
  assert.ok(psnr(top(res), top(tgt)) >= 40, `outside ${psnr(top(res), top(tgt))} dB`);
  assert.ok(psnr(inner(res), inner(src)) > psnr(inner(tgt), inner(src)), 'inside moves toward the source');
  assert.ok(lrPsnr(res, downscale(tgt, 4), 4) >= 45, `LR-PSNR ${lrPsnr(res, downscale(tgt, 4), 4)} dB`);
});

test('transfer: size mismatch, empty mask, a mask that is no image: one line, exit 1, no output', async () => {
  const out = join(dir, 'never.png');
  const base = ['transfer', '--target', join(dir, 'target.png'), '-o', out, '--model', model];
  oneLine(
    await run([...base, '--source', join(dir, 'small.png'), '--mask', join(dir, 'mask.png')]),
    1,
    /source .*small\.png to be the target's size \(48×48\) but it is 40×48/,
  );
  oneLine(await run([...base, '--source', join(dir, 'source.png'), '--mask', join(dir, 'black.png')]), 1, /mask .*black\.png is empty/);
  oneLine(await run([...base, '--source', join(dir, 'source.png'), '--mask', join(dir, 'notimage.png')]), 1, /Cannot read the mask .*notimage\.png/);
  oneLine(await run([...base, '--source', join(dir, 'source.png'), '--mask', join(dir, 'halves.png')]), 1, /mask .* to be the target's size/);
  oneLine(
    await run([
      'transfer',
      '--target',
      join(dir, 'target.png'),
      '--source',
      join(dir, 'source.png'),
      '--mask',
      join(dir, 'mask.png'),
      '-o',
      join(dir, 'x.bmp'),
    ]),
    2,
    /\.png, \.jpg/,
  );
  assert.ok(!existsSync(out));
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith('.')),
    [],
    'no temporary files left',
  );
});

test('restore: writes a restored image of the same size, --json reports the method; bad input leaves nothing', async () => {
  const out = join(dir, 'restored.png');
  const r = await run(['restore', join(dir, 'target.png'), '-o', out, '--model', model, '--strength', '0.5', '--passes', '2', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.strength, 0.5);
  assert.equal(j.passes, 2);
  assert.equal(j.latentRmsBefore.length, 2);
  assert.match(j.method, /encode/);
  const meta = await sharp(out).metadata();
  assert.deepEqual([meta.width, meta.height], [48, 48]);
  // a JPEG input: its quantisation table constrains the luma
  const jpg = join(dir, 'in.jpg');
  await sharp(pattern(48, 48, stripes), { raw: { width: 48, height: 48, channels: 3 } })
    .jpeg({ quality: 20 })
    .toFile(jpg);
  const rj = await run(['restore', jpg, '-o', join(dir, 'restored-jpg.png'), '--model', model, '--passes', '1', '--json']);
  assert.equal(rj.code, 0, rj.stderr);
  assert.equal(JSON.parse(rj.stdout).jpegConstraint, true);
  const bad = join(dir, 'restored-bad.png');
  oneLine(await run(['restore', join(dir, 'notimage.png'), '-o', bad, '--model', model]), 1, /notimage\.png/);
  oneLine(await run(['restore', join(dir, 'target.png'), '-o', bad, '--model', model, '--strength', '2']), 2, /from 0 to 1 for --strength/);
  oneLine(await run(['restore', join(dir, 'target.png'), '-o', join(dir, 'target.png'), '--model', model]), 2, /Refusing to overwrite/);
  assert.ok(!existsSync(bad));
});
