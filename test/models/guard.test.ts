import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/tensor/random.js';
import { createModel, loadModel, type SRFlowModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import type { Planar } from '../../src/io/image.js';
import { lrPsnr, psnr } from '../../src/metrics/index.js';
import { superResolve } from '../../src/upscale/engine.js';
import { FlowGuard, clampChannels, floorRawScales, parseGuardCalibration, rawForScale } from '../../src/flow/guard.js';

const SHIPPED = 'models/srflow-4x.safetensors';
const CALIBRATION = 'models/srflow-4x.guard.json';

test('guard primitives: per-channel clamps and scale floors count per sample, NaN included', () => {
  const x = new Tensor(Float32Array.from([-5, 0, 5, NaN, 1, 2, 3, 4]), [2, 2, 1, 2]);
  const counts = new Float64Array(2);
  const n = clampChannels(x, Float32Array.from([-1, 0]), Float32Array.from([1, 3]), counts);
  assert.deepEqual(Array.from(x.data), [-1, 0, 3, 1.5, 1, 1, 3, 3]);
  assert.equal(n, 5);
  assert.deepEqual(Array.from(counts), [3, 2]);
  // scale sigmoid(r + 2) + eps of the floor is the asked-for scale
  const eps = 1e-4;
  const f = rawForScale(0.1, eps);
  assert.ok(Math.abs(1 / (1 + Math.exp(-(f + 2))) + eps - 0.1) < 1e-9);
  assert.equal(rawForScale(eps / 2, eps), -Infinity);
  // raw: [shift0, scale0, shift1, scale1]; only scale channels are floored
  const raw = new Tensor(Float32Array.from([-50, -50, -50, 0]), [1, 4, 1, 1]);
  assert.equal(floorRawScales(raw, Float32Array.from([-3, -3])), 1);
  assert.deepEqual(Array.from(raw.data), [-50, -3, -50, 0]);
});

/** Synthetic non-photographs, 32×32: crisp content of the kind that broke the shipped model. */
function synthetic(name: string, n = 32): Planar {
  const d = new Float32Array(3 * n * n);
  const set = (y: number, x: number, rgb: number[]) => rgb.forEach((v, c) => (d[(c * n + y) * n + x] = v));
  const rng = new Rng(7);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      if (name === 'checkerboard-1px') set(y, x, (x + y) % 2 ? [1, 1, 1] : [0, 0, 0]);
      else if (name === 'flat-red') set(y, x, [1, 0, 0]);
      else if (name === 'noise') set(y, x, [rng.next(), rng.next(), rng.next()]);
      else if (name === 'saturated-shapes') {
        const inCircle = (x - 10) ** 2 + (y - 10) ** 2 < 49;
        set(y, x, inCircle ? [1, 0, 1] : x > 16 && y > 16 ? [0, 0, 1] : [0, 1, 0]);
      } else if (name === 'text') {
        // two rows of 1-px strokes: letter-like bars on white
        const stroke = (y >= 6 && y < 14 && (x % 5 === 1 || (y === 6 && x % 5 < 4))) || (y >= 18 && y < 26 && (x % 4 === 2 || y === 25));
        set(y, x, stroke ? [0, 0, 0.8] : [1, 1, 1]);
      }
    }
  }
  return { data: d, channels: 3, height: n, width: n };
}

const DRAWS = [{ temperature: 0, seed: 1 }, { temperature: 0.8, seed: 1 }, { temperature: 0.8, seed: 2 }];

async function shippedGuarded(): Promise<SRFlowModel> {
  const m = await loadModel(SHIPPED);
  // the shipped file carries its calibration once applied (models/README.md); until then the committed one
  if (!m.net.guard) m.net.guard = new FlowGuard(parseGuardCalibration(readFileSync(CALIBRATION, 'utf8'), CALIBRATION), m.config.flow.eps);
  return m;
}

test('guarded sampling of the shipped model: finite, in-range, LR-consistent outputs on synthetic inputs; unguarded explodes', { skip: !existsSync(SHIPPED) }, async () => {
  const m = await shippedGuarded();
  // without the guard the 1-px checkerboard explodes even at τ = 0 (what the guard is for)
  const cb = synthetic('checkerboard-1px');
  const off = await superResolve(m, cb, { draws: DRAWS.slice(0, 1), guard: false });
  assert.equal(off.guard.enabled, false);
  assert.ok(off.nonFinite[0] + off.outOfRange[0] > 1000, `unguarded: ${off.nonFinite[0]} non-finite, ${off.outOfRange[0]} out of range`);
  // Per input: the LR-PSNR floor (the 1-px checkerboard's best reachable by any in-range image is
  // ~11 dB, scripts/robustness.ts; issue 14's bar is 35 dB where reachable) and the floor of each
  // τ = 0.8 sample's PSNR to τ = 0 (issue 14: 25 dB; NOT yet met by the checkerboard, ~15 dB, and
  // the noise, ~24 dB: models/README.md). τ = 0.8 out-of-range values: none, but for the
  // checkerboard (~4 % of its values, down from all of them: models/README.md, still open).
  const bars: Record<string, { lr: number; vsT0: number; oor: number }> = {
    'checkerboard-1px': { lr: 9.5, vsT0: 14, oor: 0.05 },
    'flat-red': { lr: 35, vsT0: 25, oor: 0 },
    noise: { lr: 20, vsT0: 22, oor: 0 },
    'saturated-shapes': { lr: 27, vsT0: 25, oor: 1e-4 },
    text: { lr: 21, vsT0: 25, oor: 0 },
  };
  for (const [name, bar] of Object.entries(bars)) {
    const lr = synthetic(name);
    const r = await superResolve(m, lr, { draws: DRAWS });
    assert.equal(r.guard.enabled, true);
    r.samples.forEach((sr, k) => {
      assert.equal(r.nonFinite[k], 0, `${name} draw ${k}: non-finite values`);
      const oor = r.outOfRange[k] / sr.data.length;
      assert.ok(k === 0 ? r.outOfRange[k] === 0 : oor <= bar.oor, `${name} draw ${k}: ${r.outOfRange[k]} values outside [-1, 2]`);
      const lp = lrPsnr(sr, lr, 4);
      assert.ok(lp >= bar.lr, `${name} draw ${k}: LR-PSNR ${lp.toFixed(1)} dB < ${bar.lr}`);
      if (k > 0) assert.ok(psnr(sr, r.samples[0]) >= bar.vsT0, `${name} draw ${k}: ${psnr(sr, r.samples[0]).toFixed(1)} dB from τ = 0`);
    });
    if (name === 'checkerboard-1px') assert.ok(r.guard.touched[0] > 0, 'the guard acted on the checkerboard');
  }
});

test('a published-layout model has no guard: off, outputs identical, guard: true refused', async () => {
  const m = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 }), 3);
  assert.equal(m.net.guard, null);
  const lr = synthetic('saturated-shapes', 16);
  const a = await superResolve(m, lr, { draws: DRAWS });
  const b = await superResolve(m, lr, { draws: DRAWS, guard: false });
  assert.equal(a.guard.enabled, false);
  assert.deepEqual(a.guard.touched, [0, 0, 0]);
  a.samples.forEach((s, k) => assert.deepEqual(s.data, b.samples[k].data));
  await assert.rejects(superResolve(m, lr, { draws: DRAWS, guard: true }), /carries none/);
});

test('the calibration travels in the model file and is checked against the model', { skip: !existsSync(SHIPPED) }, async () => {
  const m = await shippedGuarded();
  const dir = mkdtempSync(join(tmpdir(), 'srflow-guard-'));
  try {
    const path = join(dir, 'm.safetensors');
    await m.save(path);
    const back = await loadModel(path);
    assert.deepEqual(back.net.guard?.calibration, m.net.guard?.calibration);
    // a calibration whose channels do not match the model is refused by name
    const bad = structuredClone(m.net.guard!.calibration);
    bad.layers['18'].lo = bad.layers['18'].lo!.slice(1);
    const g = new FlowGuard(bad, 1e-4);
    assert.throws(() => g.check(m.net.layers.length, (i) => m.net.guardableLayer(i), 'model x'), /model x: .*layer 18 has 95 lo values \(expected 96/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
