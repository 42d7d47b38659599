/**
 * The scale choice in the library: `upscale(input, { scale: 8 })` and `resolveModel(…, { scale })`
 * pick the shipped model of that scale (here from a models folder holding tiny untrained 4x and 8x
 * models made in the test), a given model of another scale is refused, and a missing shipped model
 * is an error naming the file. When the real models/srflow-8x.safetensors is installed, it is run on
 * a 16×16 input.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createModel, loadModel, type SRFlowModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { superResolve, upscale } from '../../src/upscale/index.js';
import { DefaultModelMissingError, resolveModel, ScaleMismatchError, shippedModelPath } from '../../src/upscale/model.js';
import type { RawPixels } from '../../src/io/image.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let dir = '';
let shipped = '';
let empty = '';

/** A tiny untrained model of a scale (L = 3 at 4×, L = 4 at 8×: LR multiple 2 for both). */
function tiny(scale: 4 | 8): SRFlowModel {
  return createModel(makeOpt({ scale, nb: 1, K: 1, L: scale === 8 ? 4 : 3, blocks: [0], hidden: 8, nf: 8 }), 1);
}

/** An 8-bit RGB gradient, w × h. */
function gradient(w: number, h: number): RawPixels {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) data[3 * (y * w + x) + c] = 40 + ((x * 11 + y * 7 + c * 30) % 170);
  return { data, width: w, height: h, channels: 3 };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'srflow-scale-'));
  shipped = join(dir, 'shipped');
  empty = join(dir, 'empty');
  mkdirSync(shipped);
  mkdirSync(empty);
  await tiny(4).save(join(shipped, 'srflow-4x.safetensors'));
  await tiny(8).save(join(shipped, 'srflow-8x.safetensors'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('shipped model paths: srflow-<s>x.safetensors in the package models/ folder, or in modelsDir', () => {
  assert.equal(shippedModelPath(8), join(ROOT, 'models', 'srflow-8x.safetensors'));
  assert.equal(shippedModelPath(), join(ROOT, 'models', 'srflow-4x.safetensors'));
  assert.equal(shippedModelPath(8, shipped), join(shipped, 'srflow-8x.safetensors'));
  assert.throws(() => shippedModelPath(2 as 4), /Expected 4 or 8 for scale but received 2/);
});

test('upscale({ scale: 8 }) picks the shipped 8x model: 8× the size; without scale, the 4x one', async () => {
  const lr = gradient(6, 5);
  const r8 = await upscale(lr, { scale: 8, modelsDir: shipped, temperature: 0 });
  assert.equal(r8.scale, 8);
  assert.deepEqual([r8.width, r8.height], [48, 40]);
  const img = r8.images[0] as RawPixels;
  assert.equal(img.data.length, 48 * 40 * 3);
  const r4 = await upscale(lr, { modelsDir: shipped, temperature: 0 });
  assert.equal(r4.scale, 4);
  assert.deepEqual([r4.width, r4.height], [24, 20]);
  const r4b = await upscale(lr, { scale: 4, modelsDir: shipped, temperature: 0 });
  assert.deepEqual((r4b.images[0] as RawPixels).data, (r4.images[0] as RawPixels).data);
  // resolveModel: the same choice, and the model's own scale
  assert.equal((await resolveModel(undefined, { scale: 8, modelsDir: shipped })).scale, 8);
});

test('a scale that the given model does not have is an error naming both', async () => {
  const lr = gradient(4, 4);
  const path4 = join(shipped, 'srflow-4x.safetensors');
  await assert.rejects(upscale(lr, { model: path4, scale: 8 }), (e: Error) => {
    assert.ok(e instanceof ScaleMismatchError);
    assert.match(e.message, /Expected a model of scale 8 but .*srflow-4x\.safetensors upscales 4×/);
    return true;
  });
  const m8 = await loadModel(join(shipped, 'srflow-8x.safetensors'));
  await assert.rejects(upscale(lr, { model: m8, scale: 4 }), /Expected a model of scale 4 but the given model upscales 8×/);
  // the matching scale with a given model is fine
  const ok = await upscale(lr, { model: m8, scale: 8, temperature: 0 });
  assert.deepEqual([ok.width, ok.height], [32, 32]);
  await assert.rejects(upscale(lr, { model: m8, scale: 16 as 8 }), /Expected 4 or 8 for scale but received 16/);
  await assert.rejects(upscale(lr, { model: m8, modelsDir: '' }), /Expected a folder path for modelsDir/);
});

test('a missing shipped 8x model is an error naming the file', async () => {
  const want = join(empty, 'srflow-8x.safetensors');
  await assert.rejects(upscale(gradient(4, 4), { scale: 8, modelsDir: empty }), (e: Error) => {
    assert.ok(e instanceof DefaultModelMissingError);
    assert.ok(e.message.includes(`The shipped 8x model is not installed (${want} is missing)`), e.message);
    return true;
  });
});

const SHIPPED_8X = join(ROOT, 'models', 'srflow-8x.safetensors');

test("the package's own 8x model: a clear error when it is not installed, else 16×16 → 128×128 at τ = 0, finite", async () => {
  if (!existsSync(SHIPPED_8X)) {
    await assert.rejects(upscale(gradient(4, 4), { scale: 8 }), (e: Error) => e.message.includes(`(${SHIPPED_8X} is missing)`));
    return;
  }
  const model = await resolveModel(undefined, { scale: 8 });
  assert.equal(model.scale, 8);
  const lr = gradient(16, 16);
  const planar = { data: new Float32Array(3 * 256), channels: 3, height: 16, width: 16 };
  for (let i = 0; i < 256; i++) for (let c = 0; c < 3; c++) planar.data[c * 256 + i] = lr.data[3 * i + c] / 255;
  const r = await superResolve(model, planar, { draws: [{ temperature: 0, seed: 0 }] });
  assert.deepEqual([r.samples[0].width, r.samples[0].height], [128, 128]);
  assert.deepEqual(r.nonFinite, [0]);
});
