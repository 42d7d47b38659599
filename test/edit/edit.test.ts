import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createModel, type SRFlowModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { loadImage, type Planar } from '../../src/io/image.js';
import { downscale, upscaleBicubic } from '../../src/data/bicubic.js';
import { psnr, lrPsnr } from '../../src/metrics/index.js';
import { crop } from '../../src/upscale/pad.js';
import { latentRms, maskLatents, mixLatents, mixLatentsByLevel, normaliseLatents, scaleLatents } from '../../src/edit/latents.js';
import { maskCoverage, transferContent } from '../../src/edit/transfer.js';
import { restoreImage, restoreSetting } from '../../src/edit/restore.js';
import { filterChroma, boxMean } from '../../src/edit/chroma.js';
import type { Map1 } from '../../src/upscale/tempmap.js';
import { rand, randomiseModel } from '../helpers/model.js';

const TINY = makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 });

function tinyModel(seed = 1): SRFlowModel {
  const m = createModel(TINY, seed);
  randomiseModel(m, seed + 100);
  return m;
}

function smooth(h: number, w: number, phase = 0): Planar {
  const data = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[(c * h + y) * w + x] = 0.5 + 0.25 * Math.sin(x / 3 + c + phase) * Math.cos(y / 4 - phase);
  return { data, channels: 3, height: h, width: w };
}

/** Fine stripes: strong high-frequency content. */
function stripes(h: number, w: number): Planar {
  const data = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[(c * h + y) * w + x] = 0.5 + 0.3 * ((x + y + c) % 2 ? 1 : -1) * (0.5 + 0.5 * Math.sin(y / 5));
  return { data, channels: 3, height: h, width: w };
}

function square(h: number, w: number, y0: number, y1: number, x0: number, x1: number): Map1 {
  const data = new Float32Array(h * w);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * w + x] = 1;
  return { data, channels: 1, height: h, width: w };
}

/** The pixels of an image where the mask is (not) set, as a 1-row image. */
function region(img: Planar, mask: Map1, inside: boolean): Planar {
  const n = img.height * img.width;
  const idx: number[] = [];
  for (let i = 0; i < n; i++) if (mask.data[i] > 0 === inside) idx.push(i);
  const d = new Float32Array(3 * idx.length);
  for (let c = 0; c < 3; c++) idx.forEach((p, k) => (d[c * idx.length + k] = img.data[c * n + p]));
  return { data: d, channels: 3, height: 1, width: idx.length };
}

/** The detail of an image: itself minus the bicubic round trip through its LR. */
function highPass(img: Planar, s: number): Planar {
  const back = upscaleBicubic(downscale(img, s), s);
  return { ...img, data: Float32Array.from(img.data, (v, i) => v - back.data[i] + 0.5) };
}

test('latent helpers: scale, mix, mask and normalise act per level and position; inputs untouched', () => {
  const a = [rand([1, 2, 4, 4], 1, -1, 1), rand([1, 3, 2, 2], 2, -1, 1)];
  const b = [rand([1, 2, 4, 4], 3, -1, 1), rand([1, 3, 2, 2], 4, -1, 1)];
  const a0 = a.map((z) => Float32Array.from(z.data));
  const half = scaleLatents(a, 0.5);
  half.forEach((z, i) => z.data.forEach((v, j) => assert.equal(v, Math.fround(a[i].data[j] * 0.5))));
  assert.deepEqual(
    mixLatents(a, b, 0).map((z) => Array.from(z.data)),
    a.map((z) => Array.from(z.data)),
  );
  assert.deepEqual(
    mixLatents(a, b, 1).map((z) => Array.from(z.data)),
    b.map((z) => Array.from(z.data)),
  );
  // a left-black/right-white map: the left columns come from a, the right ones from b, per level
  const map: Map1 = { data: Float32Array.from([0, 0, 1, 1]), channels: 1, height: 1, width: 4 };
  const m = mixLatents(a, b, map);
  assert.equal(m[0].data[0], a[0].data[0]);
  assert.equal(m[0].data[3], b[0].data[3]);
  assert.equal(m[1].data[0], a[1].data[0]);
  assert.equal(m[1].data[1], b[1].data[1]);
  const masked = maskLatents(a, map);
  assert.equal(masked[0].data[0], 0);
  assert.equal(masked[0].data[3], a[0].data[3]);
  a.forEach((z, i) => assert.deepEqual(z.data, a0[i]));
  // normalisation: every channel's rms becomes τ (exact) or at most τ (shrink)
  const big = [
    new Tensor(
      Float32Array.from(a[0].data, (v) => v * 5),
      a[0].shape,
    ),
  ];
  const ex = normaliseLatents(big, 0.7, { mode: 'exact' })[0];
  for (let c = 0; c < 2; c++) {
    let s = 0;
    for (let p = 0; p < 16; p++) s += ex.data[c * 16 + p] ** 2;
    assert.ok(Math.abs(Math.sqrt(s / 16) - 0.7) < 1e-5);
  }
  const small = [
    new Tensor(
      Float32Array.from(a[0].data, (v) => v * 0.01),
      a[0].shape,
    ),
  ];
  assert.deepEqual(normaliseLatents(small, 0.7)[0].data, small[0].data, 'shrink leaves quiet channels alone');
  assert.ok(Math.abs(latentRms(scaleLatents(big, 0))[0]) === 0);
  assert.throws(() => mixLatents(a, [b[0]], 0.5), /same length/);
  assert.throws(() => scaleLatents(a, -1), /≥ 0/);
  assert.throws(() => mixLatents(a, b, { data: Float32Array.from([2]), channels: 1, height: 1, width: 1 }), /\[0, 1\]/);
  assert.throws(() => mixLatentsByLevel(a, b, [map, map]), /level map 0/);
});

test('encode → edit → decode: the unedited latents give the image back; scaling by 0 gives the τ = 0 mean', () => {
  const model = tinyModel();
  const hr = smooth(32, 32);
  const lr = downscale(hr, 4);
  const L = new Tensor(lr.data, [1, 3, 8, 8]);
  const { latents } = model.encode(new Tensor(hr.data, [1, 3, 32, 32]), L);
  const back = model.decode(L, scaleLatents(latents, 1)).sr;
  assert.ok(psnr({ ...hr, data: back.data as Float32Array }, hr, { quantize: false }) > 60);
  const mean = model.decode(L, scaleLatents(latents, 0)).sr;
  const tau0 = model.sample(L, { temperature: 0 });
  const asImg = (t: Tensor): Planar => ({ data: t.data as Float32Array, channels: 3, height: 32, width: 32 });
  assert.ok(psnr(asImg(mean), asImg(tau0), { quantize: false }) > 80);
});

test("transfer: outside the mask stays the target, inside takes the source's detail, the LR stays the target's", () => {
  const model = tinyModel(3);
  const target = smooth(48, 48);
  const source = stripes(48, 48);
  const mask = square(48, 48, 12, 36, 12, 36);
  const r = transferContent(model, target, source, mask);
  const out = psnr(region(r.image, mask, false), region(target, mask, false));
  assert.ok(out >= 40, `outside the mask: ${out} dB from the target`);
  const hiBefore = psnr(region(highPass(target, 4), mask, true), region(highPass(source, 4), mask, true));
  const hiAfter = psnr(region(highPass(r.image, 4), mask, true), region(highPass(source, 4), mask, true));
  assert.ok(hiAfter > hiBefore + 3, `inside, the detail should move toward the source's: ${hiBefore} → ${hiAfter} dB`);
  const rawBefore = psnr(region(target, mask, true), region(source, mask, true));
  const rawAfter = psnr(region(r.image, mask, true), region(source, mask, true));
  assert.ok(rawAfter > rawBefore, `inside, the result should be nearer the source: ${rawBefore} → ${rawAfter} dB`);
  const lrDb = lrPsnr(r.image, downscale(target, 4), 4);
  assert.ok(lrDb >= 45, `LR consistency ${lrDb} dB`);
  assert.ok(r.lrPsnr >= r.lrPsnrBefore);
  // sizes that are not multiples of the model's: padded and cropped back
  const odd = transferContent(model, smooth(37, 42), stripes(37, 42), square(37, 42, 5, 20, 5, 30));
  assert.deepEqual([odd.image.width, odd.image.height], [42, 37]);
  assert.throws(() => transferContent(model, target, smooth(40, 48), mask), /source to be the target's size \(48×48\) but it is 48×40/);
  assert.throws(() => transferContent(model, target, source, square(24, 24, 0, 4, 0, 4)), /mask to be the target's size/);
  assert.throws(() => transferContent(model, target, source, square(48, 48, 0, 0, 0, 0)), /mask is empty/);
  assert.throws(() => maskCoverage(square(4, 4, 0, 0, 0, 0), 'mask m.png'), /^Error: The mask m.png is empty/);
});

test('restore: strength 0 is the identity, the setting interpolates, tiles cover the image, options are checked', async () => {
  const model = tinyModel(5);
  const img = smooth(40, 36);
  const r0 = await restoreImage(model, img, { strength: 0 });
  assert.deepEqual(r0.image.data, img.data);
  const s0 = restoreSetting(0);
  assert.equal(s0.blend, 1);
  assert.deepEqual(s0.levelFactors, [1, 1]);
  const s1 = restoreSetting(1);
  assert.ok(s1.blend < 1 && s1.levelFactors[0] < 1 && Number.isFinite(s1.tau));
  const r = await restoreImage(model, img, { passes: 2 });
  assert.deepEqual([r.image.width, r.image.height], [36, 40]);
  assert.equal(r.report.passes, 2);
  assert.equal(r.report.latentRmsBefore.length, 2);
  assert.ok(r.report.latentRmsAfter[0] <= r.report.latentRmsBefore[0]);
  // tiled: every pixel covered, close to the whole-image result away from the seams
  const tiled = await restoreImage(model, img, { passes: 1, tile: 32 });
  const whole = await restoreImage(model, img, { passes: 1 });
  assert.ok(tiled.report.tiles > 1);
  assert.ok(psnr(tiled.image, whole.image) > 30, `tiled vs whole ${psnr(tiled.image, whole.image)} dB`);
  await assert.rejects(restoreImage(model, img, { strength: 2 }), /strength/);
  await assert.rejects(restoreImage(model, img, { passes: 9 }), /passes/);
});

test('chroma filter: luma unchanged, noisy chroma over a flat-coloured image gets smoother', () => {
  const n = 24 * 24;
  // luma structure, constant colour: the true chroma is flat
  const img: Planar = { data: new Float32Array(3 * n), channels: 3, height: 24, width: 24 };
  for (let c = 0; c < 3; c++) for (let i = 0; i < n; i++) img.data[c * n + i] = 0.4 + 0.1 * c + 0.2 * Math.sin((i % 24) / 3) * Math.cos(Math.floor(i / 24) / 4);
  const noisy = { ...img, data: Float32Array.from(img.data) };
  for (let i = 0; i < n; i++) {
    const e = 0.05 * Math.sin(i * 7.3);
    noisy.data[i] += e; // R
    noisy.data[2 * n + i] -= e; // B
    noisy.data[n + i] -= (0.299 * e - 0.114 * e) / 0.587; // G keeps the luma
  }
  const f = filterChroma(noisy);
  for (let i = 0; i < n; i += 37) {
    const y0 = 0.299 * noisy.data[i] + 0.587 * noisy.data[n + i] + 0.114 * noisy.data[2 * n + i];
    const y1 = 0.299 * f.data[i] + 0.587 * f.data[n + i] + 0.114 * f.data[2 * n + i];
    assert.ok(Math.abs(y0 - y1) < 1e-5);
  }
  const before = psnr(noisy, img, { quantize: false });
  const after = psnr(f, img, { quantize: false });
  assert.ok(after > before + 3, `${before} → ${after} dB`);
  assert.deepEqual(Array.from(boxMean(Float32Array.from([1, 2, 3, 4]), 2, 2, 1)), [2.5, 2.5, 2.5, 2.5]);
});

test(
  'restore with the shipped model on a real photo crop: JPEG q10 and noise σ = 15/255 improve',
  { skip: !existsSync('models/srflow-4x.safetensors') || !existsSync('/work/shared/data/val/coffee.png') },
  async () => {
    // one small crop: the quality bars are measured by scripts/restore-eval.ts (docs/EDITING.md)
    const { loadModel } = await import('../../src/models/api.js');
    const sharp = (await import('sharp')).default;
    const { Rng } = await import('../../src/tensor/random.js');
    const model = await loadModel('models/srflow-4x.safetensors');
    const gt = crop((await loadImage('/work/shared/data/val/coffee.png')).rgb, 120, 200, 128, 128);
    const u8 = Buffer.alloc(3 * 128 * 128);
    for (let i = 0; i < 128 * 128; i++) for (let c = 0; c < 3; c++) u8[3 * i + c] = Math.round(gt.data[c * 128 * 128 + i] * 255);
    const jpg = (
      await loadImage(
        await sharp(u8, { raw: { width: 128, height: 128, channels: 3 } })
          .jpeg({ quality: 10 })
          .toBuffer(),
      )
    ).rgb;
    const rng = new Rng(1);
    const noisy = { ...gt, data: Float32Array.from(gt.data, (v) => Math.round(Math.min(1, Math.max(0, v + (15 / 255) * rng.normal())) * 255) / 255) };
    const rj = await restoreImage(model, jpg);
    const rn = await restoreImage(model, noisy);
    assert.ok(psnr(rj.image, gt) > psnr(jpg, gt), `JPEG: ${psnr(jpg, gt)} → ${psnr(rj.image, gt)} dB`);
    assert.ok(psnr(rn.image, gt) > psnr(noisy, gt) + 1, `noise: ${psnr(noisy, gt)} → ${psnr(rn.image, gt)} dB`);
  },
);

test('JPEG tables and the quantisation constraint: the decoded JPEG is inside, a flat estimate moves toward the truth', async () => {
  const { readJpegTables, projectJpegLuma } = await import('../../src/edit/jpeg.js');
  const sharp = (await import('sharp')).default;
  const W = 48;
  const gt = smooth(W, W);
  const u8 = Buffer.alloc(3 * W * W);
  for (let i = 0; i < W * W; i++) for (let c = 0; c < 3; c++) u8[3 * i + c] = Math.round(gt.data[c * W * W + i] * 255);
  const buf = await sharp(u8, { raw: { width: W, height: W, channels: 3 } })
    .jpeg({ quality: 10 })
    .toBuffer();
  const t = readJpegTables(buf);
  assert.ok(t);
  assert.deepEqual([t.width, t.height, t.components], [W, W, 3]);
  assert.equal(t.luma[0], 80); // libjpeg's luma table (16) scaled for quality 10 (×5)
  assert.equal(
    readJpegTables(
      await sharp(u8, { raw: { width: W, height: W, channels: 3 } })
        .png()
        .toBuffer(),
    ),
    null,
  );
  assert.equal(readJpegTables(new Uint8Array([0xff, 0xd8, 0xff])), null);
  const dec = (await loadImage(buf)).rgb;
  assert.equal(projectJpegLuma(dec, dec, t.luma).moved, 0);
  // a flat gray estimate is far outside the constraint set: projecting it recovers luma structure
  const flat: Planar = { ...gt, data: new Float32Array(gt.data.length).fill(0.5) };
  const p = projectJpegLuma(flat, dec, t.luma);
  assert.ok(p.moved > 0.01);
  const luma = (img: Planar): Planar => {
    const n = W * W;
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = 0.299 * img.data[i] + 0.587 * img.data[n + i] + 0.114 * img.data[2 * n + i];
    return { data: d, channels: 1, height: W, width: W };
  };
  assert.ok(psnr(luma(p.image), luma(gt), { quantize: false }) > psnr(luma(flat), luma(gt), { quantize: false }) + 3);
});
