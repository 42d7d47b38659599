import { test } from 'node:test';
import assert from 'node:assert/strict';
import { periodicEnergy } from '../../src/metrics/periodic.js';
import type { Planar } from '../../src/io/image.js';

function image(H: number, W: number, f: (y: number, x: number) => number, channels = 3): Planar {
  const data = new Float32Array(channels * H * W);
  for (let c = 0; c < channels; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[(c * H + y) * W + x] = f(y, x);
  return { data, channels, height: H, width: W };
}

// a textured "photo": waves of 0.03 – 0.3 cycles/pixel in many directions with 1/f amplitudes (a
// natural image's spectrum falls off towards the Nyquist frequency)
const texture = (y: number, x: number) => {
  let v = 0.5;
  for (let k = 1; k <= 10; k++) {
    const f = 2 * Math.PI * 0.03 * k;
    const a = k * 1.7;
    v += (0.1 / k) * Math.sin(f * (x * Math.cos(a) + y * Math.sin(a)) + k);
  }
  return v;
};

test('periodicEnergy: low on smooth texture, high with a 2-pixel column or row pattern, each on its own line', () => {
  const base = periodicEnergy(image(64, 80, texture), 4);
  assert.ok(base.value < 0.03, `texture alone: ${base.value}`);
  const cols = periodicEnergy(
    image(64, 80, (y, x) => texture(y, x) + 0.03 * (x % 2 ? 1 : -1)),
    4,
  );
  assert.ok(cols.columns > 0.3 && cols.rows < 0.05, `vertical stripes: ${JSON.stringify(cols)}`);
  assert.equal(cols.value, cols.columns);
  const rows = periodicEnergy(
    image(64, 80, (y, x) => texture(y, x) + 0.03 * (y % 2 ? 1 : -1)),
    4,
  );
  assert.ok(rows.rows > 0.3 && rows.columns < 0.05, `horizontal stripes: ${JSON.stringify(rows)}`);
  // a checkerboard puts its energy at (½, ½): on both lines
  const cb = periodicEnergy(
    image(64, 64, (y, x) => texture(y, x) + 0.03 * ((x + y) % 2 ? 1 : -1), 1),
    4,
  );
  assert.ok(cb.rows > 0.3 && cb.columns > 0.3, `checkerboard: ${JSON.stringify(cb)}`);
  // more of the pattern, more of the share
  const weak = periodicEnergy(
    image(64, 80, (y, x) => texture(y, x) + 0.005 * (x % 2 ? 1 : -1)),
    4,
  );
  assert.ok(weak.columns > base.columns && weak.columns < cols.columns);
});

test('periodicEnergy: bad input', () => {
  assert.throws(() => periodicEnergy(image(8, 8, texture), 4), /at least 16×16/);
  assert.throws(() => periodicEnergy(image(32, 32, texture), 1), /integer scale ≥ 2/);
  assert.throws(() => periodicEnergy(image(32, 32, texture, 2), 4), /1 or 3\+ channels/);
});
