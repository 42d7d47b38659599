import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { createModel, type SRFlowModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import type { Planar } from '../../src/io/image.js';
import { psnr } from '../../src/metrics/index.js';
import { superResolve } from '../../src/upscale/engine.js';
import { upscale } from '../../src/upscale/index.js';
import { crop } from '../../src/upscale/pad.js';
import { checkMap, levelMaps, lumaMap, poolMap, resizeMap, type Map1 } from '../../src/upscale/tempmap.js';
import { randomiseModel } from '../helpers/model.js';

const TINY = makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 });

function tinyModel(seed = 1): SRFlowModel {
  const m = createModel(TINY, seed);
  randomiseModel(m, seed + 100);
  return m;
}

function smoothLr(h: number, w: number): Planar {
  const data = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[(c * h + y) * w + x] = 0.5 + 0.25 * Math.sin(x / 3 + c) * Math.cos(y / 4);
  return { data, channels: 3, height: h, width: w };
}

/** Left half 0, right half 1. */
function halves(h: number, w: number): Map1 {
  const data = new Float32Array(h * w);
  for (let y = 0; y < h; y++) for (let x = Math.floor(w / 2); x < w; x++) data[y * w + x] = 1;
  return { data, channels: 1, height: h, width: w };
}

function quarter(img: Planar, which: 'left' | 'right'): Planar {
  const q = Math.floor(img.width / 4);
  return crop(img, 0, which === 'left' ? 0 : img.width - q, img.height, q);
}

test('resizeMap: values stay in [0, 1], constants stay constant, black stays exactly 0 away from the edge', () => {
  const c: Map1 = { data: new Float32Array(35).fill(0.4), channels: 1, height: 5, width: 7 };
  for (const [h, w] of [
    [20, 28],
    [3, 2],
    [5, 7],
    [64, 9],
  ]) {
    const r = resizeMap(c, h, w);
    assert.equal(r.data.length, h * w);
    for (const v of r.data) assert.ok(Math.abs(v - 0.4) < 1e-6, `constant map became ${v}`);
  }
  const m = halves(2, 2); // 2×2: left column black, right column white
  const big = resizeMap(m, 16, 64);
  for (let y = 0; y < 16; y++) {
    for (let x = 0; x < 16; x++) assert.equal(big.data[y * 64 + x], 0, 'left quarter must stay black');
    for (let x = 48; x < 64; x++) assert.equal(big.data[y * 64 + x], 1, 'right quarter must stay white');
    for (let x = 1; x < 64; x++) assert.ok(big.data[y * 64 + x] >= big.data[y * 64 + x - 1], 'monotone across the edge');
  }
  const small = resizeMap(halves(40, 40), 4, 4);
  assert.deepEqual(Array.from(small.data.slice(0, 4)), [0, 0, 1, 1]);
});

test('levelMaps: one map per latent level, averaged over each latent cell, padding reflected', () => {
  const m = halves(8, 8);
  const shapes = [
    [1, 6, 8, 8],
    [1, 96, 2, 2],
  ];
  const [a, b] = levelMaps(m, shapes, { height: 16, width: 16 });
  assert.deepEqual([a.height, a.width, b.height, b.width], [8, 8, 2, 2]);
  // the 8→16 enlargement softens the edge over one pixel on each side: 1/32 of a 8×8 cell
  assert.deepEqual(
    Array.from(b.data, (v) => Math.round(v * 32)),
    [1, 31, 1, 31],
  );
  assert.equal(a.data[0], 0);
  assert.equal(a.data[7], 1);
  assert.deepEqual(Array.from(poolMap({ data: Float32Array.from([0, 1, 1, 0]), channels: 1, height: 2, width: 2 }, 2).data), [0.5]);
  // padded output: the map covers 12×12 of a 16×16 padded output, the rest reflects it
  const [p] = levelMaps(halves(12, 12), [[1, 1, 16, 16]], { height: 12, width: 12, paddedHeight: 16, paddedWidth: 16 });
  assert.equal(p.data[12], 1); // column 12 reflects column 10 (white)
  assert.throws(() => levelMaps(m, [[1, 6, 5, 5]], { height: 16, width: 16 }), /divide/);
});

test('checkMap and lumaMap: bad maps are refused; colour counts by luma', () => {
  assert.throws(() => checkMap({ data: Float32Array.from([0, 2]), channels: 1, height: 1, width: 2 }, 'temperatureMap'), /\[0, 1\] for temperatureMap/);
  assert.throws(() => checkMap({ data: Float32Array.from([0, NaN]), channels: 1, height: 1, width: 2 }), /\[0, 1\]/);
  assert.throws(() => checkMap({ data: new Float32Array(6), channels: 3, height: 1, width: 2 }), /one-channel/);
  const rgb: Planar = { data: Float32Array.from([1, 0, 0, 1, 0, 0]), channels: 3, height: 1, width: 2 };
  const l = lumaMap(rgb);
  assert.ok(Math.abs(l.data[0] - 0.299) < 1e-6 && Math.abs(l.data[1] - 0.587) < 1e-6);
});

test('engine: black half is the deterministic mean (seeds agree), white half varies; all-white = no map; tiles agree', async () => {
  const model = tinyModel();
  const lr = smoothLr(16, 32);
  const map = halves(5, 9); // any size: resized to the 64×128 output
  const draws = [
    { temperature: 0.8, seed: 1 },
    { temperature: 0.8, seed: 2 },
  ];
  const r = await superResolve(model, lr, { draws, temperatureMap: map });
  const [a, b] = r.samples;
  const left = psnr(quarter(a, 'left'), quarter(b, 'left'));
  const right = psnr(quarter(a, 'right'), quarter(b, 'right'));
  assert.ok(left >= 40, `left quarter: seeds should agree (${left} dB)`);
  assert.ok(right < 40, `right quarter: seeds should differ (${right} dB)`);
  // the left quarter is the τ = 0 output there
  const mean = (await superResolve(model, lr, { draws: [{ temperature: 0, seed: 1 }] })).samples[0];
  assert.ok(psnr(quarter(a, 'left'), quarter(mean, 'left')) >= 40);
  // a white map is no map at all
  const white: Map1 = { data: new Float32Array(4).fill(1), channels: 1, height: 2, width: 2 };
  const w = await superResolve(model, lr, { draws: [draws[0]], temperatureMap: white });
  const plain = await superResolve(model, lr, { draws: [draws[0]] });
  assert.deepEqual(w.samples[0].data, plain.samples[0].data);
  // tiled: the map is cut with the tiles (same latents as the whole image)
  const tiled = await superResolve(model, lr, { draws: [draws[0]], temperatureMap: map, tile: 16, overlap: 4 });
  assert.ok(tiled.tiles > 1);
  assert.ok(psnr(tiled.samples[0], a) >= 35, `tiled vs whole ${psnr(tiled.samples[0], a)} dB`);
  await assert.rejects(superResolve(model, lr, { draws, temperatureMap: { data: new Float32Array(3), channels: 1, height: 2, width: 2 } }), /temperatureMap/);
});

test('upscale(): temperatureMap as encoded bytes or raw pixels; a buffer that is no image is refused', async () => {
  const model = tinyModel(2);
  const lr = smoothLr(8, 16);
  const raw = new Uint8Array(3 * 8 * 16);
  for (let i = 0; i < 8 * 16; i++) for (let c = 0; c < 3; c++) raw[3 * i + c] = Math.round(lr.data[c * 128 + i] * 255);
  const input = { data: raw, width: 16, height: 8, channels: 3 as const };
  const mapPng = await sharp(Buffer.from([0, 0, 255, 255]), { raw: { width: 4, height: 1, channels: 1 } })
    .png()
    .toBuffer();
  const opts = { model, temperature: 0.9, output: 'raw' as const };
  const r1 = await upscale(input, { ...opts, seed: 1, temperatureMap: mapPng });
  const r2 = await upscale(input, { ...opts, seed: 2, temperatureMap: { data: Uint8Array.from([0, 0, 255, 255]), width: 4, height: 1, channels: 1 } });
  const asPlanar = (p: { data: ArrayLike<number>; width: number; height: number }): Planar => {
    const n = p.width * p.height;
    const d = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) d[c * n + i] = p.data[3 * i + c] / 255;
    return { data: d, channels: 3, height: p.height, width: p.width };
  };
  const a = asPlanar(r1.images[0] as { data: Uint8Array; width: number; height: number });
  const b = asPlanar(r2.images[0] as { data: Uint8Array; width: number; height: number });
  assert.ok(psnr(quarter(a, 'left'), quarter(b, 'left')) >= 40);
  assert.ok(psnr(quarter(a, 'right'), quarter(b, 'right')) < 40);
  await assert.rejects(upscale(input, { ...opts, temperatureMap: Buffer.from('not an image at all') }), /^Error: Cannot read the temperature map <buffer>: /);
  await assert.rejects(upscale(input, { ...opts, temperatureMap: 42 as unknown as string }), /temperatureMap/);
});
