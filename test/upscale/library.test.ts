import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Rng } from '../../src/tensor/random.js';
import { createModel, type SRFlowModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { upscale, loadImage, psnr, Tensor, noGrad, imresize, downscale, loadModel, SRFlowModel as RootModel } from '../../src/index.js';
import type { RawPixels } from '../../src/io/image.js';
import { resolveModel } from '../../src/upscale/model.js';

let dir = '';
let modelPath = '';
let model: SRFlowModel;

function tinyModel(seed = 1): SRFlowModel {
  const m = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 }), seed);
  const r = new Rng(seed + 100);
  for (const [name, p] of m.parameters()) {
    if (name.endsWith('invconv.weight')) continue;
    const std = /logs$/.test(name) ? 0.02 : /\.4\.(weight|bias)$|conv\.(weight|bias)$/.test(name) ? 0.01 : null;
    if (std !== null) for (let i = 0; i < p.size; i++) p.data[i] = std * r.normal();
    else if (/actnorm\.(bias|logs)$/.test(name)) for (let i = 0; i < p.size; i++) p.data[i] = 0.05 * r.normal();
  }
  return m;
}

function randomU8(n: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  return Uint8Array.from({ length: n }, () => r.int(256));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'srflow-upscale-lib-'));
  model = tinyModel();
  modelPath = join(dir, 'tiny.safetensors');
  await model.save(modelPath);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('root exports are there', () => {
  assert.equal(typeof upscale, 'function');
  assert.equal(typeof loadModel, 'function');
  assert.equal(typeof imresize, 'function');
  assert.equal(typeof downscale, 'function');
  assert.equal(typeof noGrad, 'function');
  assert.equal(typeof Tensor, 'function');
  assert.equal(RootModel, model.constructor);
});

test('path in → raw out (8-bit RGB); the model as a path or an object gives the same pixels', async () => {
  const p = join(dir, 'rgb.png');
  await sharp(Buffer.from(randomU8(11 * 9 * 3, 1)), { raw: { width: 11, height: 9, channels: 3 } })
    .png()
    .toFile(p);
  const a = await upscale(p, { model: modelPath, temperature: 0 });
  const b = await upscale(p, { model, temperature: 0 });
  assert.equal(a.output, 'raw');
  assert.equal(a.width, 44);
  assert.equal(a.height, 36);
  assert.equal(a.inputWidth, 11);
  assert.equal(a.images.length, 1);
  const img = a.images[0] as RawPixels;
  assert.equal(img.channels, 3);
  assert.ok(img.data instanceof Uint8Array, 'Uint8Array');
  assert.equal(img.data.length, 44 * 36 * 3);
  assert.deepEqual((b.images[0] as RawPixels).data, img.data);
  // `output` turns it into an encoded image
  const c = await upscale(p, { model, temperature: 0, output: 'webp' });
  assert.ok(Buffer.isBuffer(c.images[0]), 'Buffer');
  assert.equal((await sharp(c.images[0] as Buffer).metadata()).format, 'webp');
});

test('Buffer in → encoded Buffer in the same format; several temperatures × samples; uncertainty', async () => {
  const jpg = await sharp(Buffer.from(randomU8(8 * 10 * 3, 2)), { raw: { width: 8, height: 10, channels: 3 } })
    .jpeg()
    .toBuffer();
  const r = await upscale(jpg, { model, temperature: [0, 0.8], samples: 2, seed: 5, uncertainty: true });
  assert.equal(r.output, 'jpg');
  assert.equal(r.images.length, 4);
  assert.deepEqual(r.draws, [
    { temperature: 0, seed: 5 },
    { temperature: 0, seed: 6 },
    { temperature: 0.8, seed: 5 },
    { temperature: 0.8, seed: 6 },
  ]);
  for (const b of r.images) {
    const meta = await sharp(b as Buffer).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.equal(meta.width, 32);
    assert.equal(meta.height, 40);
  }
  assert.equal(r.uncertainty?.length, 2);
  const u0 = await loadImage(r.uncertainty![0] as Buffer);
  const u1 = await loadImage(r.uncertainty![1] as Buffer);
  assert.ok(
    u0.rgb.data.every((v) => v === 0),
    'τ = 0 samples agree',
  );
  assert.ok(
    u1.rgb.data.some((v) => v > 0),
    'τ = 0.8 samples disagree',
  );
  const png = await sharp(Buffer.from(randomU8(8 * 8 * 3, 3)), { raw: { width: 8, height: 8, channels: 3 } })
    .png()
    .toBuffer();
  assert.equal((await upscale(png, { model, temperature: 0 })).output, 'png');
});

test('raw in → raw out in the same layout: gray, gray+alpha, RGBA, 16-bit, float', async () => {
  const w = 6;
  const h = 4;
  const gray = await upscale({ data: randomU8(w * h, 4), width: w, height: h, channels: 1 }, { model, temperature: 0 });
  const g = gray.images[0] as RawPixels;
  assert.equal(g.channels, 1);
  assert.equal(gray.grayscale, true);
  assert.equal(g.data.length, 24 * 16);

  const ga = randomU8(w * h * 2, 5);
  for (let i = 0; i < w * h; i++) ga[2 * i + 1] = 200; // constant alpha stays constant under bicubic
  const r2 = await upscale({ data: ga, width: w, height: h, channels: 2 }, { model, temperature: 0 });
  const o2 = r2.images[0] as RawPixels;
  assert.equal(o2.channels, 2);
  assert.equal(r2.hasAlpha, true);
  for (let i = 0; i < 24 * 16; i++) assert.equal(o2.data[2 * i + 1], 200);

  const rgba = randomU8(w * h * 4, 6);
  const r4 = await upscale({ data: rgba, width: w, height: h, channels: 4 }, { model, temperature: 0 });
  assert.equal((r4.images[0] as RawPixels).channels, 4);

  const u16 = Uint16Array.from({ length: w * h * 3 }, (_, i) => (i * 2731) % 65536);
  const r16 = await upscale({ data: u16, width: w, height: h, channels: 3 }, { model, temperature: 0 });
  assert.ok((r16.images[0] as RawPixels).data instanceof Uint16Array, 'Uint16Array');
  assert.equal(r16.bitDepth, 16);

  const f32 = Float32Array.from({ length: w * h * 3 }, (_, i) => (i % 17) / 16);
  const rf = await upscale({ data: f32, width: w, height: h, channels: 3 }, { model, temperature: 0 });
  const of = rf.images[0] as RawPixels;
  assert.ok(of.data instanceof Float32Array, 'Float32Array');
  assert.ok(
    Array.from(of.data).every((v) => v >= 0 && v <= 1),
    'in [0, 1]',
  );
  // the 8-bit output is the float output rounded
  const r8 = await upscale({ data: Uint8Array.from(f32, (v) => Math.round(v * 255)), width: w, height: h, channels: 3 }, { model, temperature: 0 });
  const o8 = (r8.images[0] as RawPixels).data;
  let maxDiff = 0;
  for (let i = 0; i < o8.length; i++) maxDiff = Math.max(maxDiff, Math.abs(o8[i] - Math.round(of.data[i] * 255)));
  assert.ok(maxDiff <= 2, `8-bit vs float output: max difference ${maxDiff}`);
});

test('16-bit PNG path with output png stays 16-bit; EXIF orientation is applied', async () => {
  const p16 = join(dir, 'in16.png');
  const u16 = Uint16Array.from({ length: 5 * 4 * 3 }, (_, i) => i * 1000);
  await sharp(Buffer.from(u16.buffer), { raw: { width: 5, height: 4, channels: 3 } })
    .toColourspace('rgb16')
    .png()
    .toFile(p16);
  const r = await upscale(p16, { model, temperature: 0, output: 'png' });
  const meta = await sharp(r.images[0] as Buffer).metadata();
  assert.equal(meta.depth, 'ushort');
  // orientation 6 (rotate 90° clockwise): a 8×6 stored image is shown 6×8
  const pr = join(dir, 'rot.jpg');
  await sharp(Buffer.from(randomU8(8 * 6 * 3, 7)), { raw: { width: 8, height: 6, channels: 3 } })
    .withMetadata({ orientation: 6 })
    .jpeg()
    .toFile(pr);
  const rr = await upscale(pr, { model, temperature: 0 });
  assert.equal(rr.width, 24);
  assert.equal(rr.height, 32);
});

test('consistency exact in the library; tiles and progress; a photo-like result at τ = 0 is deterministic', async () => {
  // a smooth image (random 8-bit noise has LR values that no image in [0, 1] downscales to)
  const smooth = new Uint8Array(30 * 26 * 3);
  for (let i = 0; i < 30 * 26; i++) {
    const x = i % 30;
    const y = Math.floor(i / 30);
    for (let c = 0; c < 3; c++) smooth[3 * i + c] = Math.round(255 * (0.5 + 0.3 * Math.sin(x / 3 + c) * Math.cos(y / 4)));
  }
  const raw = { data: smooth, width: 30, height: 26, channels: 3 as const };
  const progress: number[] = [];
  const r = await upscale(raw, {
    model,
    temperature: 0.5,
    samples: 2,
    tile: 12,
    tileOverlap: 4,
    consistency: 'exact',
    onProgress: (p) => progress.push(p.done / p.total),
  });
  assert.ok(r.tiles > 1, `tiles ${r.tiles}`);
  assert.equal(r.tileSize, 12);
  assert.equal(progress.at(-1), 1);
  assert.ok(r.lrPsnr && r.lrPsnr.every((db) => db >= 60), `LR-PSNR ${r.lrPsnr}`);
  const a = await upscale(raw, { model, temperature: 0 });
  const b = await upscale(raw, { model, temperature: 0, seed: 9 });
  assert.deepEqual((a.images[0] as RawPixels).data, (b.images[0] as RawPixels).data);
  // raw output decodes back to the same size
  const sa = await loadImage(a.images[0] as RawPixels);
  assert.equal(sa.width, 120);
  assert.ok(psnr(sa.rgb, sa.rgb) === Infinity, 'loadable');
});

test('bad options and inputs throw clear errors before any work; abort gives an AbortError', async () => {
  const raw = { data: randomU8(8 * 8 * 3, 9), width: 8, height: 8, channels: 3 as const };
  await assert.rejects(upscale(raw, { model, temperature: -1 }), /Expected a finite temperature ≥ 0 for temperature but received -1/);
  await assert.rejects(upscale(raw, { model, temperature: NaN }), /temperature/);
  await assert.rejects(upscale(raw, { model, samples: 0 }), /Expected an integer ≥ 1 for samples/);
  await assert.rejects(upscale(raw, { model, seed: 1.5 }), /Expected an integer for seed/);
  await assert.rejects(upscale(raw, { model, uncertainty: true }), /samples ≥ 2/);
  await assert.rejects(upscale(raw, { model, output: 'bmp' as 'png' }), /output/);
  await assert.rejects(upscale(raw, { model, consistency: 'yes' as 'exact' }), /consistency/);
  await assert.rejects(upscale(raw, { model, tile: 0 }), /tile/);
  await assert.rejects(upscale(raw, { model, maxMemoryMB: -5 }), /maxMemoryMB/);
  await assert.rejects(upscale(join(dir, 'missing.png'), { model }), /Cannot read image .*missing\.png: file not found/);
  const empty = join(dir, 'empty.png');
  writeFileSync(empty, '');
  await assert.rejects(upscale(empty, { model }), /empty/);
  const text = join(dir, 'text.png');
  writeFileSync(text, 'hello, not an image');
  await assert.rejects(upscale(text, { model }), /not an image/);
  await assert.rejects(upscale(raw, { model: join(dir, 'nope.safetensors') }), /Cannot read model .*file not found/);
  await assert.rejects(upscale({ data: new Uint8Array(3), width: 20000, height: 20000, channels: 3 }, { model }), /Expected 1200000000 samples|absurd|beyond/);
  await assert.rejects(
    upscale({ data: new Uint8Array(20000 * 2 * 3), width: 20000, height: 2, channels: 3 }, { model }),
    /the 4× output would be 80000×8, beyond the limits/,
  );
  // the default model, when it is not installed (the CLI's SRFLOW_DEFAULT_MODEL arrives as resolveModel's defaultModel)
  await assert.rejects(resolveModel(undefined, { defaultModel: join(dir, 'not-installed.safetensors') }), /default model is not installed/);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(upscale(raw, { model, signal: ac.signal }), (e: Error) => e instanceof DOMException && e.name === 'AbortError');
  const ac2 = new AbortController();
  await assert.rejects(
    upscale(raw, { model, samples: 3, signal: ac2.signal, onProgress: (p) => p.done === 1 && ac2.abort() }),
    (e: Error) => e.name === 'AbortError',
  );
  assert.deepEqual(readdirSync(dir).sort(), ['empty.png', 'in16.png', 'rgb.png', 'rot.jpg', 'text.png', 'tiny.safetensors']);
});
