import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readSafetensors } from '../../src/io/safetensors.js';
import { imresize, downscale, upscaleBicubic, imresizeBatch, downscaleBatch, cubic, contributions, roundHalfEven } from '../../src/data/bicubic.js';
import type { Planar } from '../../src/io/image.js';

const FIXTURE = '/work/shared/fixtures/parity-4x/tensors.safetensors';

function relErr(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

function randomImage(c: number, h: number, w: number, seed = 1): Planar {
  let s = seed >>> 0;
  const data = new Float32Array(c * h * w);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s >>> 24) / 255;
  }
  return { data, channels: c, height: h, width: w };
}

test('fixture: imresize(gt, 1/4) reproduces lr (float64, no intermediate rounding)', { skip: !existsSync(FIXTURE) }, () => {
  const f = readSafetensors(FIXTURE);
  const gt = f.tensors.get('gt')!;
  const lr = f.tensors.get('lr')!;
  assert.deepEqual(gt.shape, [1, 3, 64, 64]);
  const out = imresize({ data: gt.data, channels: 3, height: 64, width: 64 }, 1 / 4);
  assert.equal(out.height, 16);
  assert.equal(out.width, 16);
  assert.ok(relErr(out.data, lr.data) < 1e-6, `relative error ${relErr(out.data, lr.data)}`);
  // downscale and the batch helper give the same.
  assert.deepEqual(downscale({ data: gt.data, channels: 3, height: 64, width: 64 }, 4).data, out.data);
  const b = downscaleBatch({ shape: [1, 3, 64, 64], data: gt.data }, 4);
  assert.deepEqual(b.shape, [1, 3, 16, 16]);
  assert.deepEqual(b.data, out.data);
});

test('cubic kernel values (a = -0.5)', () => {
  assert.equal(cubic(0), 1);
  assert.equal(cubic(1), 0);
  assert.equal(cubic(2), 0);
  assert.equal(cubic(0.5), 0.5625);
  assert.equal(cubic(-1.5), -0.0625);
  assert.equal(cubic(2.5), 0);
});

test('weight tables: normalised, half-sample symmetric indices, identity at scale 1', () => {
  const t = contributions(5, 2, 0.4);
  for (let o = 0; o < t.outLength; o++) {
    let s = 0;
    for (let k = 0; k < t.taps; k++) s += t.weights[o * t.taps + k];
    assert.ok(Math.abs(s - 1) < 1e-12);
  }
  for (const i of t.indices) assert.ok(i >= 0 && i < 5);
  // antialiased kernel is 4/s = 10 wide → ceil(10) + 2 taps
  assert.equal(t.taps, 12);
  const id = contributions(7, 7, 1);
  const v = Float32Array.from([0.1, 0.9, 0.3, 0.7, 0.2, 0.5, 0.4]);
  const out = imresize({ data: v, channels: 1, height: 1, width: 7 }, 1);
  assert.deepEqual(out.data, v);
  assert.equal(id.taps, 6);
});

test('constant image stays constant (float and uint8 paths, up and down)', () => {
  const c = 0.37;
  const img: Planar = { data: new Float32Array(2 * 13 * 9).fill(c), channels: 2, height: 13, width: 9 };
  for (const s of [1 / 4, 1 / 3, 0.5, 2, 3, 4]) {
    const f = imresize(img, s);
    for (const v of f.data) assert.ok(Math.abs(v - c) < 1e-6, `scale ${s}: ${v}`);
  }
  const q: Planar = { data: new Float32Array(3 * 10 * 10).fill(93 / 255), channels: 3, height: 10, width: 10 };
  for (const s of [1 / 4, 0.5, 2]) {
    const u = imresize(q, s, { uint8: true });
    for (const v of u.data) assert.equal(v, Math.fround(93 / 255));
  }
});

test('a 1-D ramp is reproduced exactly away from the borders', () => {
  const W = 64;
  const ramp = new Float32Array(W);
  for (let x = 0; x < W; x++) ramp[x] = x / 128;
  const img: Planar = { data: ramp, channels: 1, height: 1, width: W };
  // Downscale by 4: output x samples input coordinate (x + 0.5)·4 − 0.5; the kernel spans 16 taps.
  const d = imresize(img, 1 / 4);
  assert.equal(d.width, 16);
  assert.equal(d.height, 1);
  for (let x = 2; x < 14; x++) assert.ok(Math.abs(d.data[x] - ((x + 0.5) * 4 - 0.5) / 128) < 1e-6, `down x=${x}`);
  // Upscale by 2: output x samples (x + 0.5)/2 − 0.5.
  const u = imresize(img, 2);
  assert.equal(u.width, 128);
  for (let x = 4; x < 124; x++) assert.ok(Math.abs(u.data[x] - ((x + 0.5) / 2 - 0.5) / 128) < 1e-6, `up x=${x}`);
  // Half-sample symmetric boundary: at the left edge of the upscale, taps mirror 0,0,1 ... so the
  // first output is 1.09375·v0 − 0.09375·v1 (computed by hand from cubic(±0.25/0.75/1.25/1.75)).
  assert.ok(Math.abs(u.data[0] - (1.09375 * ramp[0] - 0.09375 * ramp[1])) < 1e-7);
});

test('uint8 path rounds half to even and clips after each pass; the float path does not', () => {
  // Upscaling [v0, v1] by 2 along the width gives out[0] = (35·v0 − 3·v1)/32 exactly.
  const mk = (a: number, b: number): Planar => ({ data: Float32Array.from([a / 255, b / 255]), channels: 1, height: 1, width: 2 });
  const up = (p: Planar, uint8: boolean) => imresize(p, 2, { outHeight: 1, uint8 });
  assert.equal(Math.round(up(mk(2, 18), true).data[0] * 255 * 1e6) / 1e6, 0); // 0.5 → 0
  assert.equal(Math.round(up(mk(3, 19), true).data[0] * 255 * 1e6) / 1e6, 2); // 1.5 → 2
  assert.ok(Math.abs(up(mk(2, 18), false).data[0] * 255 - 0.5) < 1e-5);
  // Overshoot is clipped on the 8-bit path only.
  assert.ok(Math.abs(up(mk(255, 0), false).data[0] - 1.09375) < 1e-6);
  assert.equal(up(mk(255, 0), true).data[0], 1);
  assert.equal(up(mk(0, 255), true).data[0], 0);
  assert.equal(roundHalfEven(2.5), 2);
  assert.equal(roundHalfEven(3.5), 4);
  assert.equal(roundHalfEven(-0.5), 0);
  assert.equal(roundHalfEven(-1.5), -2);

  // On a random 8-bit image the two paths differ by at most about one level, and the 8-bit
  // output holds integers / 255.
  const img = randomImage(3, 24, 20, 7);
  const f = imresize(img, 1 / 4);
  const u = imresize(img, 1 / 4, { uint8: true });
  let differ = 0;
  for (let i = 0; i < u.data.length; i++) {
    const v = u.data[i] * 255;
    assert.ok(Math.abs(v - Math.round(v)) < 1e-4);
    const fv = Math.min(255, Math.max(0, f.data[i] * 255));
    assert.ok(Math.abs(v - fv) <= 1.0 + 1e-6, `${v} vs ${fv}`);
    if (Math.round(v) !== Math.round(fv)) differ++;
  }
  assert.ok(differ < u.data.length);
});

test('uint8 path: rounding happens between the passes (smaller-scale axis first)', () => {
  const img = randomImage(1, 32, 16, 3);
  // Height 1/4, width 1/2: height is resized first; a width pass at scale 1 is the identity.
  const both = imresize(img, 0, { outHeight: 8, outWidth: 8, uint8: true });
  const h = imresize(img, 0, { outHeight: 8, outWidth: 16, uint8: true });
  const hw = imresize(h, 0, { outHeight: 8, outWidth: 8, uint8: true });
  assert.deepEqual(both.data, hw.data);
  // Width scale 1/4, height 1/2: width first.
  const img2 = randomImage(1, 16, 32, 4);
  const both2 = imresize(img2, 0, { outHeight: 8, outWidth: 8, uint8: true });
  const w2 = imresize(img2, 0, { outHeight: 16, outWidth: 8, uint8: true });
  const wh2 = imresize(w2, 0, { outHeight: 8, outWidth: 8, uint8: true });
  assert.deepEqual(both2.data, wh2.data);
});

test('non-square and odd sizes give ceil(scale · n)', () => {
  const cases: [number, number, number, number, number][] = [
    [37, 23, 1 / 4, 10, 6],
    [31, 17, 1 / 3, 11, 6],
    [64, 48, 1 / 2, 32, 24],
    [48, 30, 1 / 3, 16, 10],
    [7, 5, 3, 21, 15],
    [5, 9, 4, 20, 36],
  ];
  for (const [h, w, s, eh, ew] of cases) {
    const out = imresize(randomImage(3, h, w), s);
    assert.equal(out.height, eh, `${h}×${w} at ${s}`);
    assert.equal(out.width, ew, `${h}×${w} at ${s}`);
    assert.equal(out.channels, 3);
    assert.equal(out.data.length, 3 * eh * ew);
  }
  assert.equal(upscaleBicubic(randomImage(3, 5, 7), 4).width, 28);
  assert.equal(downscale(randomImage(3, 40, 28), 4).height, 10);
});

test('separable float path: transposing the image transposes the result', () => {
  const img = randomImage(1, 20, 12, 9);
  const t = new Float32Array(img.data.length);
  for (let y = 0; y < 20; y++) for (let x = 0; x < 12; x++) t[x * 20 + y] = img.data[y * 12 + x];
  const a = imresize(img, 1 / 4);
  const b = imresize({ data: t, channels: 1, height: 12, width: 20 }, 1 / 4);
  for (let y = 0; y < a.height; y++)
    for (let x = 0; x < a.width; x++) {
      assert.ok(Math.abs(a.data[y * a.width + x] - b.data[x * b.width + y]) < 1e-6);
    }
});

test('batch helper matches per-image resizing', () => {
  const a = randomImage(3, 16, 12, 1);
  const b = randomImage(3, 16, 12, 2);
  const data = new Float32Array(a.data.length * 2);
  data.set(a.data);
  data.set(b.data, a.data.length);
  const out = imresizeBatch({ shape: [2, 3, 16, 12], data }, 1 / 2, { uint8: true });
  assert.deepEqual(out.shape, [2, 3, 8, 6]);
  assert.deepEqual(out.data.subarray(0, 144), imresize(a, 0.5, { uint8: true }).data);
  assert.deepEqual(out.data.subarray(144), imresize(b, 0.5, { uint8: true }).data);
});

test('argument errors name the problem', () => {
  assert.throws(() => imresize(randomImage(1, 4, 4), -1), /Expected a positive finite number for scale but received -1/);
  assert.throws(() => imresize({ data: new Float32Array(3), channels: 1, height: 2, width: 2 }, 0.5), /Expected 4 values/);
  assert.throws(() => downscale(randomImage(1, 4, 4), 0), /for factor/);
});
