/**
 * WGSL kernels against the reference kernels and the engine's TypeScript ops, on tiny shapes
 * (SwiftShader runs them on the CPU). Skipped, with the reason, only when no WebGPU adapter can be created.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { referenceKernels } from '../../src/kernels/reference.js';
import { region, releaseWebGpuDevice, type WebGpuDevice } from '../../src/kernels/webgpu.js';
import { Tensor, noGrad } from '../../src/tensor/tensor.js';
import * as T from '../../src/tensor/index.js';
import { affineFromNet, channelAffine, sumLogScale } from '../../src/tensor/fused.js';
import { xorshift32 } from '../helpers/xorshift.js';
import { testDevice } from '../helpers/webgpu.js';

const { dev, why } = await testDevice();
after(() => releaseWebGpuDevice());

function rand(n: number, seed: number, scale = 1): Float32Array {
  const r = xorshift32(seed);
  return Float32Array.from({ length: n }, () => r() * scale);
}

function maxRel(a: Float32Array, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}

const G = () => dev as WebGpuDevice;

test('webgpu: conv2d (3×3, 1×1, 2×2 pad 1, odd sizes, bias, residual, channel regions) = reference', { skip: !dev && why }, async () => {
  const cases = [
    { n: 1, cin: 3, h: 5, w: 7, cout: 5, k: 3, pad: 1 },
    { n: 2, cin: 6, h: 4, w: 9, cout: 8, k: 1, pad: 0 },
    { n: 1, cin: 4, h: 3, w: 3, cout: 9, k: 2, pad: 1 },
    { n: 2, cin: 5, h: 6, w: 5, cout: 3, k: 3, pad: 1 },
  ];
  let seed = 1;
  for (const c of cases) {
    const x = rand(c.n * c.cin * c.h * c.w, seed++);
    const w = rand(c.cout * c.cin * c.k * c.k, seed++, 0.3);
    const bias = rand(c.cout, seed++);
    const oh = c.h + 2 * c.pad - c.k + 1;
    const ow = c.w + 2 * c.pad - c.k + 1;
    const want = new Float32Array(c.n * c.cout * oh * ow);
    referenceKernels.conv2d(x, w, bias, { n: c.n, cin: c.cin, h: c.h, w: c.w, cout: c.cout, kh: c.k, kw: c.k, pad: c.pad }, want);
    // x as channels [2, 2 + cin) of a wider tensor, output into channels [1, 1 + cout) of another
    const xw = new Float32Array(c.n * (c.cin + 3) * c.h * c.w).fill(99);
    for (let b = 0; b < c.n; b++) xw.set(x.subarray(b * c.cin * c.h * c.w, (b + 1) * c.cin * c.h * c.w), (b * (c.cin + 3) + 2) * c.h * c.w);
    const gx = G().upload(xw, [c.n, c.cin + 3, c.h, c.w]);
    const gw = G().uploadWeight(w, c.cout, c.cin, c.k, c.k);
    const gb = G().uploadConst(bias);
    const out = G().zeros([c.n, c.cout + 2, oh, ow]);
    G().conv2d(region(gx, 2, c.cin), gw, gb, c.pad, region(out, 1, c.cout));
    // residual: plain conv + res (sample 0 broadcast)
    const res = rand(c.cout * oh * ow, seed++);
    const gr = G().upload(res, [1, c.cout, oh, ow]);
    const out2 = G().alloc([c.n, c.cout, oh, ow]);
    G().conv2d(region(gx, 2, c.cin), gw, null, c.pad, region(out2), region(gr), true);
    const [o1, o2] = await G().read([out, out2]);
    const got = new Float32Array(want.length);
    const got2 = new Float32Array(want.length);
    for (let b = 0; b < c.n; b++) {
      for (let co = 0; co < c.cout; co++) {
        for (let i = 0; i < oh * ow; i++) {
          got[(b * c.cout + co) * oh * ow + i] = o1[(b * (c.cout + 2) + 1 + co) * oh * ow + i];
          got2[(b * c.cout + co) * oh * ow + i] = o2[(b * c.cout + co) * oh * ow + i] - res[co * oh * ow + i] + bias[co];
        }
      }
      // channels outside the output region stay untouched (zeros)
      for (let i = 0; i < oh * ow; i++) assert.equal(o1[b * (c.cout + 2) * oh * ow + i], 0);
    }
    assert.ok(maxRel(got, want) < 1e-5, `conv ${JSON.stringify(c)}: ${maxRel(got, want)}`);
    assert.ok(maxRel(got2, want) < 1e-5, `conv+res ${JSON.stringify(c)}: ${maxRel(got2, want)}`);
    for (const t of [gx, out, gr, out2]) G().release(t);
  }
});

test('webgpu: channel affine, leaky ReLU, axpby, copy, squeeze, resize, downsample = TypeScript ops', { skip: !dev && why }, async () => {
  const n = 2,
    c = 4,
    h = 6,
    w = 4;
  const xs = rand(n * c * h * w, 11, 2);
  const x = new Tensor(xs, [n, c, h, w]);
  const bias = new Tensor(rand(c, 12), [1, c, 1, 1]);
  const logs = new Tensor(rand(c, 13, 0.5), [1, c, 1, 1]);
  const want = noGrad(() => ({
    aff: channelAffine(x, bias, logs, 1, true).data,
    leaky: T.leakyRelu(x, 0.2).data,
    sq: T.squeeze2(x).data,
    up: T.resizeNearest(x, 12, 8).data,
    down: T.downsampleBilinear(x, 2).data,
  }));
  const e = Float32Array.from(logs.data, (v) => Math.exp(v));
  const g1 = G().upload(xs, [n, c, h, w]);
  G().channelAffine(region(g1), G().uploadConst(bias.data as Float32Array), G().uploadConst(e), true);
  const g2 = G().upload(xs, [n, c, h, w]);
  G().leakyRelu(region(g2), 0.2);
  const gx = G().upload(xs, [n, c, h, w]);
  const sq = G().squeeze(gx, false);
  const unsq = G().squeeze(sq, true);
  const up = G().alloc([n, c + 1, 12, 8]);
  G().resizeNearest(gx, region(up, 1, c));
  const down = G().downsample(gx, 2);
  // a = 2·a − 0.5·b with b = sample 0 broadcast; copy of channels 1..3 of x into channels 0..2
  const ga = G().upload(xs, [n, c, h, w]);
  const bb = rand(c * h * w, 14);
  G().axpby(region(ga), 2, region(G().upload(bb, [1, c, h, w])), -0.5, true);
  const cp = G().zeros([n, 3, h, w]);
  G().copy(region(gx, 1, 2), region(cp, 0, 2));
  const [a1, a2, s1, s2, u1, d1, ax, c1] = await G().read([g1, g2, sq, unsq, up, down, ga, cp]);
  assert.ok(maxRel(a1, want.aff) < 1e-6, `channelAffine ${maxRel(a1, want.aff)}`);
  assert.ok(maxRel(a2, want.leaky) < 1e-7);
  assert.deepEqual([...s1], [...want.sq]);
  assert.deepEqual([...s2], [...xs]);
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    assert.deepEqual([...u1.subarray((b * (c + 1) + 1) * 96, (b * (c + 1) + 1 + c) * 96)], [...want.up.subarray(b * c * 96, (b + 1) * c * 96)]);
    for (let i = 0; i < 2 * hw; i++) assert.equal(c1[b * 3 * hw + i], xs[(b * c + 1) * hw + i]);
    for (let i = 0; i < c * hw; i++) assert.ok(Math.abs(ax[b * c * hw + i] - (2 * xs[b * c * hw + i] - 0.5 * bb[i])) < 1e-6);
  }
  assert.ok(maxRel(d1, want.down) < 1e-6);
});

test('webgpu: affine from net (forward, inverse, broadcast raw), split prior and per-sample reductions = TypeScript ops', { skip: !dev && why }, async () => {
  const n = 2,
    c = 3,
    h = 4,
    w = 5,
    hw = h * w;
  const hs = rand(n * c * hw, 21, 2);
  const eps = 1e-4;
  for (const rb of [n, 1]) {
    const raw = rand(rb * 2 * c * hw, 22 + rb, 3);
    const H = new Tensor(hs, [n, c, h, w]);
    const R = new Tensor(raw, [rb, 2 * c, h, w]);
    const fwd = noGrad(() => affineFromNet(H, R, eps).data);
    const inv = noGrad(() => affineFromNet(H, R, eps, true).data);
    // h as channels [1, 1 + c) of a 5-channel tensor
    const wide = new Float32Array(n * 5 * hw);
    for (let b = 0; b < n; b++) wide.set(hs.subarray(b * c * hw, (b + 1) * c * hw), (b * 5 + 1) * hw);
    const g1 = G().upload(wide, [n, 5, h, w]);
    const g2 = G().upload(wide, [n, 5, h, w]);
    const gr = G().upload(raw, [rb, 2 * c, h, w]);
    G().affineFromNet(region(g1, 1, c), gr, eps, false);
    G().affineFromNet(region(g2, 1, c), gr, eps, true);
    const acc = G().zeros([n]);
    G().reduce(0, region(gr), null, eps, acc, -2, 0.5);
    const [o1, o2, a] = await G().read([g1, g2, acc]);
    const pick = (o: Float32Array) => Float32Array.from({ length: n * c * hw }, (_v, i) => o[(Math.floor(i / (c * hw)) * 5 + 1) * hw + (i % (c * hw))]);
    assert.ok(maxRel(pick(o1), fwd) < 1e-6, `forward rb=${rb}`);
    assert.ok(maxRel(pick(o2), inv) < 1e-6, `inverse rb=${rb}`);
    if (rb === n) {
      const s = noGrad(() => sumLogScale(R, eps).data);
      for (let b = 0; b < n; b++) assert.ok(Math.abs(a[b] - (-2 * s[b] + 0.5)) < 1e-5 * Math.abs(s[b]) + 1e-5, `sumLogScale ${a[b]} vs ${-2 * s[b] + 0.5}`);
    }
  }
  // split: g = [n, 2c, h, w] (mean, logs interleaved), z region channels [2, 2 + c) of 5
  const g = rand(n * 2 * c * hw, 31);
  const e = rand(n * c * hw, 32);
  const gg = G().upload(g, [n, 2 * c, h, w]);
  const z = G().zeros([n, 5, h, w]);
  const ge = G().upload(e, [n, c, h, w]);
  G().split(gg, region(z, 2, c), ge, false);
  const e2 = G().alloc([n, c, h, w]);
  G().split(gg, region(z, 2, c), e2, true);
  const acc = G().zeros([n]);
  G().reduce(2, region(gg), ge, 0, acc, 1, 0);
  const acc2 = G().zeros([n]);
  G().reduce(1, region(z, 2, c), null, 0, acc2, 1, 0);
  const [zo, eo, s2, sq] = await G().read([z, e2, acc, acc2]);
  const G4 = new Tensor(g, [n, 2 * c, h, w]);
  const mean = T.evenChannels(G4);
  const logsT = T.oddChannels(G4);
  const z2 = noGrad(() => T.add(mean, T.mul(T.exp(logsT), new Tensor(e, [n, c, h, w]))).data);
  for (let b = 0; b < n; b++) {
    let sRef = 0;
    let qRef = 0;
    for (let i = 0; i < c * hw; i++) {
      assert.ok(Math.abs(zo[(b * 5 + 2) * hw + i] - z2[b * c * hw + i]) < 1e-5);
      sRef += 2 * logsT.data[b * c * hw + i] + e[b * c * hw + i] ** 2;
      qRef += z2[b * c * hw + i] ** 2;
    }
    assert.ok(Math.abs(s2[b] - sRef) < 1e-4 * Math.abs(sRef) + 1e-4, `split reduction ${s2[b]} vs ${sRef}`);
    assert.ok(Math.abs(sq[b] - qRef) < 1e-5 * qRef, `Σ z² ${sq[b]} vs ${qRef}`);
  }
  assert.ok(maxRel(eo, e) < 1e-5, `split forward recovers eps: ${maxRel(eo, e)}`);
});
