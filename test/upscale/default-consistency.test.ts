/**
 * A model file's default LR consistency (metadata `consistency`, SRFlowNet.defaultConsistency):
 * saved and loaded back, applied by `upscale` when the caller gives none (the outputs' bicubic
 * downscale then equals the input), overridden by an explicit `consistency`, 'none' for a file
 * without it, and a bad value refused when loading.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModel, loadModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { upscale } from '../../src/upscale/index.js';
import type { RawPixels } from '../../src/io/image.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'srflow-consistency-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function gradient(w: number, h: number): RawPixels {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) data[3 * (y * w + x) + c] = 40 + ((x * 13 + y * 5 + c * 40) % 170);
  return { data, width: w, height: h, channels: 3 };
}

test('default consistency: saved, loaded, applied by upscale unless overridden', async () => {
  const m = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 }), 3);
  const plain = join(dir, 'plain.safetensors');
  const exact = join(dir, 'exact.safetensors');
  await m.save(plain);
  m.net.defaultConsistency = 'exact';
  await m.save(exact);
  const a = await loadModel(plain);
  const b = await loadModel(exact);
  assert.equal(a.net.defaultConsistency, 'none');
  assert.equal(b.net.defaultConsistency, 'exact');
  const lr = gradient(8, 8);
  const rb = await upscale(lr, { model: b, temperature: 0.8 });
  assert.ok(rb.lrPsnr !== null && rb.lrPsnr.every((p) => p >= 50), `projected LR-PSNR ${rb.lrPsnr}`);
  const ra = await upscale(lr, { model: a, temperature: 0.8 });
  assert.equal(ra.lrPsnr, null);
  const rOff = await upscale(lr, { model: b, temperature: 0.8, consistency: 'none' });
  assert.equal(rOff.lrPsnr, null);
  assert.deepEqual(Buffer.from((rOff.images[0] as RawPixels).data as Uint8Array), Buffer.from((ra.images[0] as RawPixels).data as Uint8Array));
});

test('a model file with a bad consistency value is refused, naming it', async () => {
  const m = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 }), 3);
  const bad = join(dir, 'bad.safetensors');
  await m.save(bad, { consistency: 'always' });
  await assert.rejects(loadModel(bad), /expected none or exact for its consistency metadata but received "always"/);
});
