import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/tensor/random.js';
import { createModel, type SRFlowModel } from '../../src/models/api.js';
import { makeOpt, parseConfig } from '../../src/models/config.js';
import type { Planar } from '../../src/io/image.js';
import { loadImage } from '../../src/io/image.js';
import { downscale, imresize } from '../../src/data/bicubic.js';
import { psnr, lrPsnr } from '../../src/metrics/index.js';
import { superResolve, sizeMultiple, countOverflow } from '../../src/upscale/engine.js';
import { reflectIndex, padReflect, crop } from '../../src/upscale/pad.js';
import { fillLatentField } from '../../src/upscale/noise.js';
import { planAxis, axisWeights } from '../../src/upscale/tiles.js';
import { bytesPerLrPixel, chooseTile } from '../../src/upscale/memory.js';
import { projectConsistent } from '../../src/upscale/consistency.js';
import { uncertaintyMap } from '../../src/upscale/uncertainty.js';

const TINY = makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 });
const PHOTO = '/work/shared/data/val/chelsea.png';

/** A tiny model with every ZeroConv/ActNorm randomised, so the flow is no identity. */
function tinyModel(seed = 1): SRFlowModel {
  const m = createModel(TINY, seed);
  const r = new Rng(seed + 100);
  for (const [name, p] of m.parameters()) {
    if (name.endsWith('invconv.weight')) continue;
    const std = /logs$/.test(name) ? 0.02 : /\.4\.(weight|bias)$|conv\.(weight|bias)$/.test(name) ? 0.01 : null;
    if (std !== null) for (let i = 0; i < p.size; i++) p.data[i] = std * r.normal();
    else if (/actnorm\.(bias|logs)$/.test(name)) for (let i = 0; i < p.size; i++) p.data[i] = 0.05 * r.normal();
  }
  return m;
}

function randomImage(h: number, w: number, seed: number): Planar {
  const data = new Float32Array(3 * h * w);
  new Rng(seed).fillUniform(data, 0, 1);
  return { data, channels: 3, height: h, width: w };
}

/** A smooth-ish LR image (a real photo crop when the shared data is there). */
async function photoLr(h: number, w: number): Promise<Planar> {
  if (existsSync(PHOTO)) {
    const img = await loadImage(PHOTO);
    return downscale(crop(img.rgb, 40, 60, 4 * h, 4 * w), 4);
  }
  // fallback: a smooth synthetic image (random noise is no photo: see consistency.ts)
  const data = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[(c * h + y) * w + x] = 0.5 + 0.3 * Math.sin(x / 3 + c) * Math.cos(y / 4);
  return { data, channels: 3, height: h, width: w };
}

test('reflect padding follows numpy "reflect" (no edge repeat), bottom/right only', () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6].map((i) => reflectIndex(i, 4)),
    [0, 1, 2, 3, 2, 1, 0],
  );
  assert.deepEqual(
    [0, 1, 2].map((i) => reflectIndex(i, 1)),
    [0, 0, 0],
  );
  const img: Planar = { data: Float32Array.from({ length: 3 * 2 * 3 }, (_, i) => i), channels: 3, height: 2, width: 3 };
  const p = padReflect(img, 4, 4);
  assert.equal(p.height, 4);
  assert.equal(p.width, 4);
  // channel 0: columns 0 1 2 | 1 (reflect), rows 0 1 | 0 1 (reflect of 2 rows: 2 → 0, 3 → 1)
  assert.deepEqual(Array.from(p.data.subarray(0, 16)), [0, 1, 2, 1, 3, 4, 5, 4, 0, 1, 2, 1, 3, 4, 5, 4]);
  assert.deepEqual(crop(p, 0, 0, 2, 3).data, img.data);
});

test('latent field: a window is the crop of a larger window; N(0, τ²); seeds differ', () => {
  const big = new Float32Array(2 * 20 * 30);
  fillLatentField(big, { channels: 2, height: 20, width: 30, y0: 0, x0: 0 }, 7, 1, 1);
  const small = new Float32Array(2 * 5 * 6);
  fillLatentField(small, { channels: 2, height: 5, width: 6, y0: 10, x0: 12 }, 7, 1, 1);
  for (let c = 0; c < 2; c++)
    for (let y = 0; y < 5; y++) for (let x = 0; x < 6; x++) assert.equal(small[(c * 5 + y) * 6 + x], big[(c * 20 + 10 + y) * 30 + 12 + x]);
  const n = 200_000;
  const z = new Float32Array(n);
  fillLatentField(z, { channels: 1, height: 400, width: 500, y0: 0, x0: 0 }, 3, 0, 0.5);
  let m = 0;
  let v = 0;
  let lag = 0;
  for (let i = 0; i < n; i++) m += z[i];
  m /= n;
  for (let i = 0; i < n; i++) v += (z[i] - m) ** 2;
  v /= n;
  for (let i = 1; i < n; i++) lag += (z[i] - m) * (z[i - 1] - m);
  lag /= n * v;
  assert.ok(Math.abs(m) < 0.01, `mean ${m}`);
  assert.ok(Math.abs(v - 0.25) < 0.01, `var ${v}`);
  assert.ok(Math.abs(lag) < 0.01, `lag-1 correlation ${lag}`);
  const other = new Float32Array(2 * 20 * 30);
  fillLatentField(other, { channels: 2, height: 20, width: 30, y0: 0, x0: 0 }, 8, 1, 1);
  assert.ok(
    other.some((x, i) => x !== big[i]),
    'other.some((x, i) => x !== big[i])',
  );
  const zero = new Float32Array(12).fill(3);
  fillLatentField(zero, { channels: 1, height: 3, width: 4, y0: 0, x0: 0 }, 8, 1, 0);
  assert.ok(
    zero.every((x) => x === 0),
    'zero.every((x) => x === 0)',
  );
});

test('tile plan covers the axis with overlaps ≥ the requested one; blend weights cross-fade to 1', () => {
  for (const [n, T, O, m] of [
    [100, 24, 8, 2],
    [50, 16, 8, 2],
    [64, 64, 8, 2],
    [66, 64, 16, 2],
    [37, 10, 4, 1],
  ]) {
    const tiles = planAxis(n, T, O, m);
    assert.equal(tiles[0].start, 0);
    assert.equal(tiles.at(-1)!.start + tiles.at(-1)!.length, n);
    for (let k = 1; k < tiles.length; k++) {
      assert.ok(tiles[k - 1].start + T - tiles[k].start >= Math.min(O, T - m), `overlap at ${k} for ${[n, T, O]}`);
      assert.equal(tiles[k].start % m, 0);
    }
    // Σ weights over tiles (in HR pixels, scale 4) is positive everywhere and 1 outside shared dead zones
    const s = 4;
    const sum = new Float64Array(n * s);
    for (const t of tiles) axisWeights(t, s).forEach((w, i) => (sum[t.start * s + i] += w));
    assert.ok(
      sum.every((v) => v > 0),
      'sum.every((v) => v > 0)',
    );
    const near1 = sum.filter((v) => Math.abs(v - 1) < 1e-5).length;
    assert.ok(near1 > 0.9 * sum.length, `${near1} of ${sum.length}`);
  }
});

test('any size: τ = 0 equals the model on the reflect-padded LR, cropped to scale × the input', async () => {
  const m = tinyModel();
  const lr = randomImage(13, 11, 3);
  assert.equal(sizeMultiple(m), 2);
  const r = await superResolve(m, lr, { draws: [{ temperature: 0, seed: 0 }] });
  assert.equal(r.samples[0].height, 52);
  assert.equal(r.samples[0].width, 44);
  assert.equal(r.paddedHeight, 14);
  assert.equal(r.paddedWidth, 12);
  assert.equal(r.tiles, 1);
  const padded = padReflect(lr, 14, 12);
  const ref = m.sample(new Tensor(padded.data, [1, 3, 14, 12]), { temperature: 0 });
  const refP = crop({ data: ref.data as Float32Array, channels: 3, height: 56, width: 48 }, 0, 0, 52, 44);
  for (let i = 0; i < refP.data.length; i++) {
    const v = Math.min(1, Math.max(0, refP.data[i]));
    assert.ok(Math.abs(v - r.samples[0].data[i]) < 1e-6, 'Math.abs(v - r.samples[0].data[i]) < 1e-6');
  }
});

test('tiled inference matches the whole image: ≥ 45 dB at τ = 0, and close at τ = 0.8', async () => {
  const m = tinyModel(2);
  const lr = await photoLr(46, 50);
  const draws = [
    { temperature: 0, seed: 0 },
    { temperature: 0.8, seed: 5 },
  ];
  const whole = await superResolve(m, lr, { draws });
  assert.equal(whole.tiles, 1);
  for (const [tile, overlap] of [
    [16, 8],
    [20, 4],
  ]) {
    const tiled = await superResolve(m, lr, { draws, tile, overlap });
    assert.ok(tiled.tiles >= 9, `tiles ${tiled.tiles}`);
    assert.equal(tiled.tileSize, tile);
    const p0 = psnr(tiled.samples[0], whole.samples[0], { quantize: false });
    const p8 = psnr(tiled.samples[1], whole.samples[1], { quantize: false });
    assert.ok(p0 >= 45, `τ = 0, tile ${tile}: ${p0.toFixed(2)} dB`);
    assert.ok(p8 >= 40, `τ = 0.8, tile ${tile}: ${p8.toFixed(2)} dB`);
  }
});

test('samples: reproducible per seed, different across seeds, temperatures × samples in order', async () => {
  const m = tinyModel(3);
  const lr = randomImage(8, 10, 4);
  const draws = [
    { temperature: 0, seed: 0 },
    { temperature: 0, seed: 1 },
    { temperature: 0.8, seed: 0 },
    { temperature: 0.8, seed: 1 },
    { temperature: 0.8, seed: 2 },
  ];
  const a = await superResolve(m, lr, { draws });
  const b = await superResolve(m, lr, { draws: [draws[3]] });
  assert.equal(a.samples.length, 5);
  assert.deepEqual(a.samples[0].data, a.samples[1].data); // τ = 0 ignores the seed
  assert.notDeepEqual(a.samples[2].data, a.samples[3].data);
  assert.ok(psnr(a.samples[3], b.samples[0], { quantize: false }) > 100, 'batched = alone'); // batching does not change a sample
  assert.notDeepEqual(a.samples[0].data, a.samples[2].data);
});

test('overflow counts: non-finite values and values far outside [0, 1], per draw, before clipping', async () => {
  assert.deepEqual(countOverflow(Float32Array.from([0.5, -0.2, 1.3, -1.5, 2.5, NaN, Infinity, -Infinity, 1e9])), { nonFinite: 3, outOfRange: 3 });
  const lr = randomImage(8, 10, 4);
  const draws = [{ temperature: 0, seed: 0 }];
  const ok = await superResolve(tinyModel(3), lr, { draws });
  assert.deepEqual(ok.outOfRange, [0]);
  assert.deepEqual(ok.nonFinite, [0]);
  // an inverse that explodes: every ActNorm of the flow divides by e^4 on the way back
  const m = tinyModel(3);
  let n = 0;
  for (const [name, p] of m.parameters())
    if (name.startsWith('flowUpsamplerNet') && /actnorm\.logs$/.test(name)) {
      p.data.fill(-4);
      n++;
    }
  assert.ok(n > 0, 'found ActNorm scales');
  const bad = await superResolve(m, lr, { draws });
  assert.ok(bad.outOfRange[0] > 0, `exploded values counted (${bad.outOfRange})`);
  for (const img of bad.samples) for (const v of img.data) assert.ok(v >= 0 && v <= 1, 'samples stay clipped');
});

test('memory budget picks tiles; the estimate grows with the model and the batch', async () => {
  const tiny = parseConfig(TINY);
  const paper = parseConfig(makeOpt({ scale: 4, nb: 23, K: 16, L: 3, blocks: [1, 8, 15, 22], hidden: 64, nf: 64 }));
  assert.ok(bytesPerLrPixel(paper) > 10 * bytesPerLrPixel(tiny), 'bytesPerLrPixel(paper) > 10 * bytesPerLrPixel(tiny)');
  assert.ok(bytesPerLrPixel(paper, 4) > bytesPerLrPixel(paper, 1), 'bytesPerLrPixel(paper, 4) > bytesPerLrPixel(paper, 1)');
  const big = chooseTile(paper, { height: 512, width: 512, m: 2, outputs: 1, batch: 1, weightBytes: 160e6, budgetBytes: 2048 * 1048576, minTile: 32 });
  assert.ok(big.tile !== null && big.tile >= 64 && big.tile < 512 && big.tile % 2 === 0, `tile ${big.tile}`);
  assert.ok(big.estimatedBytes <= 2048 * 1048576, 'big.estimatedBytes <= 2048 * 1048576');
  const small = chooseTile(paper, { height: 32, width: 32, m: 2, outputs: 1, batch: 1, weightBytes: 160e6, budgetBytes: 2048 * 1048576, minTile: 32 });
  assert.equal(small.tile, null);
  // the engine tiles on its own under a small budget
  const m = tinyModel(4);
  const lr = randomImage(64, 64, 5);
  const r = await superResolve(m, lr, { draws: [{ temperature: 0, seed: 0 }], maxMemoryMB: 150 });
  assert.ok(r.tiles > 1, `tiles ${r.tiles}`);
  const r2 = await superResolve(m, lr, { draws: [{ temperature: 0, seed: 0 }], maxMemoryMB: 4096 });
  assert.equal(r2.tiles, 1);
  assert.ok(psnr(r.samples[0], r2.samples[0], { quantize: false }) >= 45, 'psnr(r.samples[0], r2.samples[0], { quantize: false }) >= 45');
});

test('progress reaches its total; abort between units rejects with an AbortError', async () => {
  const m = tinyModel(5);
  const lr = randomImage(24, 24, 6);
  const seen: { done: number; total: number; stage: string }[] = [];
  await superResolve(m, lr, {
    draws: [
      { temperature: 0.5, seed: 0 },
      { temperature: 0.5, seed: 1 },
    ],
    tile: 12,
    overlap: 4,
    onProgress: (p) => seen.push({ ...p }),
  });
  assert.ok(seen.length > 2, 'seen.length > 2');
  assert.equal(seen.at(-1)!.done, seen.at(-1)!.total);
  assert.ok(seen.some((p) => p.stage === 'condition') && seen.some((p) => p.stage === 'decode'), 'stages');

  const pre = new AbortController();
  pre.abort();
  await assert.rejects(
    superResolve(m, lr, { draws: [{ temperature: 0, seed: 0 }], signal: pre.signal }),
    (e: Error) => e.name === 'AbortError' && e instanceof DOMException,
  );
  const mid = new AbortController();
  let calls = 0;
  await assert.rejects(
    superResolve(m, lr, {
      draws: [{ temperature: 0, seed: 0 }],
      tile: 12,
      overlap: 4,
      signal: mid.signal,
      onProgress: () => {
        if (++calls === 2) mid.abort();
      },
    }),
    (e: Error) => e.name === 'AbortError',
  );
  assert.equal(calls, 2);
  const timer = new AbortController();
  setTimeout(() => timer.abort(), 0);
  await assert.rejects(
    superResolve(m, lr, { draws: [{ temperature: 0, seed: 0 }], tile: 12, overlap: 4, signal: timer.signal }),
    (e: Error) => e.name === 'AbortError',
  );
});

test('exact consistency on a real photo crop: LR-PSNR ≥ 60 dB, small change (≥ 35 dB)', { skip: !existsSync(PHOTO) }, async () => {
  const img = await loadImage(PHOTO);
  const hr = crop(img.rgb, 100, 120, 96, 128);
  const lr = imresize(hr, 1 / 4, { uint8: true });
  // a plausible SR sample: the photo with some high-frequency noise
  const r = new Rng(3);
  const sample: Planar = { ...hr, data: Float32Array.from(hr.data, (v) => Math.min(1, Math.max(0, v + 0.02 * r.normal()))) };
  const copy = Float32Array.from(sample.data);
  const before = lrPsnr(sample, lr, 4, { quantize: false });
  assert.ok(before < 60, 'before < 60');
  const p = projectConsistent(sample, lr, 4);
  assert.ok(p.lrPsnr >= 60, `LR-PSNR ${p.lrPsnr}`);
  assert.ok(Math.abs(lrPsnr(p.image, lr, 4, { quantize: false }) - p.lrPsnr) < 1e-9, 'Math.abs(lrPsnr(p.image, lr, 4, { quantize: false }) - p.lrPsnr) < 1e-9');
  assert.ok(p.iterations >= 1 && p.iterations <= 50, 'p.iterations >= 1 && p.iterations <= 50');
  assert.ok(
    p.image.data.every((v) => v >= 0 && v <= 1),
    'p.image.data.every((v) => v >= 0 && v <= 1)',
  );
  const change = psnr(p.image, sample, { quantize: false });
  assert.ok(change >= 35, `change ${change} dB`);
  assert.deepEqual(sample.data, copy); // the input is not modified
});

test('engine consistency "exact": every sample reaches LR-PSNR ≥ 60 dB', async () => {
  const m = tinyModel(6);
  const lr = await photoLr(12, 14);
  const r = await superResolve(m, lr, {
    draws: [
      { temperature: 0, seed: 0 },
      { temperature: 0.8, seed: 1 },
    ],
    consistency: 'exact',
  });
  assert.ok(r.consistency, 'r.consistency');
  for (const [k, s] of r.samples.entries()) {
    const db = lrPsnr(s, lr, 4, { quantize: false });
    assert.ok(db >= 60, `sample ${k}: ${db} dB (${JSON.stringify(r.consistency[k])})`);
  }
});

test('uncertainty map: per-pixel std averaged over RGB, scaled by its 99.5th percentile, clipped', () => {
  const a = randomImage(20, 30, 11);
  const b = randomImage(20, 30, 12);
  const c = randomImage(20, 30, 13);
  const u = uncertaintyMap([a, b, c]);
  const n = 600;
  const std = new Float64Array(n);
  for (let ch = 0; ch < 3; ch++) {
    for (let i = 0; i < n; i++) {
      const v = [a, b, c].map((x) => x.data[ch * n + i]);
      const m = (v[0] + v[1] + v[2]) / 3;
      std[i] += Math.sqrt(v.reduce((s, x) => s + (x - m) ** 2, 0) / 3) / 3;
    }
  }
  const sorted = Float64Array.from(std).sort();
  assert.ok(Math.abs(u.whiteStd - sorted[Math.floor(0.995 * (n - 1))]) < 1e-6, `white ${u.whiteStd}`);
  assert.ok(Math.abs(u.maxStd - sorted[n - 1]) < 1e-6, `max ${u.maxStd}`);
  assert.equal(u.map.channels, 1);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(u.map.data[i] - Math.min(1, std[i] / u.whiteStd)) < 1e-5, `pixel ${i}`);
  assert.equal(
    uncertaintyMap([a, a]).map.data.every((v) => v === 0),
    true,
  );
  assert.throws(() => uncertaintyMap([a]), /at least 2 samples/);
});
