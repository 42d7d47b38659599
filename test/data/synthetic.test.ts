import { test } from 'node:test';
import assert from 'node:assert/strict';
import { drawSynthetic, SYNTHETIC_KINDS } from '../../src/data/synthetic.js';
import { Rng } from '../../src/data/dataset.js';

test('drawSynthetic: seeded, 8-bit values in [0, 1], every kind drawn, flat and saturated content present', () => {
  const P = 32;
  const draw = (seed: number, n: number) => {
    const rng = new Rng(seed);
    const out: { kind: string; data: Float32Array }[] = [];
    for (let k = 0; k < n; k++) {
      const data = new Float32Array(3 * P * P);
      const kind = drawSynthetic(rng.next, P, data);
      out.push({ kind, data });
    }
    return out;
  };
  const a = draw(5, 200);
  const b = draw(5, 200);
  assert.deepEqual(
    a.map((x) => x.kind),
    b.map((x) => x.kind),
  );
  for (let k = 0; k < a.length; k++) assert.deepEqual(a[k].data, b[k].data, `patch ${k} is reproducible`);
  assert.notDeepEqual(
    draw(6, 5).map((x) => Array.from(x.data.slice(0, 50))),
    a.slice(0, 5).map((x) => Array.from(x.data.slice(0, 50))),
  );
  const kinds = new Set(a.map((x) => x.kind));
  for (const kd of SYNTHETIC_KINDS) assert.ok(kinds.has(kd), `kind ${kd} drawn`);
  let saturated = 0;
  let flat = 0;
  for (const { data } of a) {
    for (const v of data) {
      assert.ok(v >= 0 && v <= 1, `value ${v} in [0, 1]`);
      assert.ok(Math.abs(v * 255 - Math.round(v * 255)) < 1e-4, `value ${v} is an 8-bit level`);
    }
    // a pixel with one channel at 0 and another at 255 is a fully saturated, full-value colour
    const n = P * P;
    for (let i = 0; i < n; i++) {
      const c = [data[i], data[n + i], data[2 * n + i]];
      if (Math.min(...c) === 0 && Math.max(...c) === 1) {
        saturated++;
        break;
      }
    }
    if (new Set(Array.from(data.slice(0, n))).size === 1) flat++;
  }
  assert.ok(saturated > 20, `${saturated} of 200 patches have saturated colours`);
  assert.ok(flat > 5, `${flat} of 200 patches are flat in the red channel`);
});

test('drawSynthetic over a photo patch keeps part of it', () => {
  const P = 32;
  const under = new Float32Array(3 * P * P).map((_, i) => ((i * 7919) % 255) / 255);
  let kept = 0;
  const rng = new Rng(3);
  for (let k = 0; k < 40; k++) {
    const out = new Float32Array(3 * P * P + 10);
    const kind = drawSynthetic(rng.next, P, out, 10, under);
    assert.deepEqual(Array.from(out.slice(0, 10)), new Array(10).fill(0), 'nothing written before the offset');
    if (kind === 'shapes' || kind === 'gradient-shapes' || kind === 'strokes') {
      let same = 0;
      for (let i = 0; i < under.length; i++) if (out[10 + i] === under[i]) same++;
      if (same > 0) kept++;
    }
  }
  assert.ok(kept > 0, 'shapes and strokes are drawn over the photo patch');
});
