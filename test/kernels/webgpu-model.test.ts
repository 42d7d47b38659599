/**
 * The WebGPU runner (src/models/webgpu.ts) against the CPU path on tiny random models: RRDB maps,
 * encode (latents, NLL, log-determinant, with dequantisation noise), decode, and the engine's
 * prepared-conditioning decode of several samples against one LR image. Configurations: 4×
 * with 3 levels, 8× with 4, 4× with 4 levels (the fea_up-1 map), batch 2, non-square. Skipped,
 * with the reason, only when no WebGPU adapter can be created.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { releaseWebGpuDevice } from '../../src/kernels/webgpu.js';
import { Tensor, noGrad } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/tensor/random.js';
import { createModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { WebGpuSRFlow } from '../../src/models/webgpu.js';
import { relativeError } from '../../src/models/verify.js';
import { rand, randomiseModel } from '../helpers/model.js';
import { testDevice } from '../helpers/webgpu.js';

const { dev, why } = await testDevice();
after(() => releaseWebGpuDevice());

const TOL = 1e-4;
const close = (name: string, a: Tensor, b: Tensor) => {
  assert.deepEqual(a.shape, b.shape, `${name} shape`);
  const e = relativeError(a.data, b.data);
  assert.ok(e < TOL, `${name}: relative error ${e}`);
};

const CASES = [
  { name: '4× L3 batch 1 square', opt: { scale: 4, nb: 2, K: 1, L: 3, blocks: [0, 1], hidden: 8, nf: 8 }, lr: [1, 3, 4, 4] },
  { name: '8× L4 batch 2 non-square (2×4)', opt: { scale: 8, nb: 1, K: 1, L: 4, blocks: [0], hidden: 8, nf: 8 }, lr: [2, 3, 2, 4] },
  { name: '4× L4 (fea_up-1) non-square', opt: { scale: 4, nb: 1, K: 2, L: 4, blocks: [0], hidden: 6, nf: 8 }, lr: [1, 3, 8, 4] },
];

for (const c of CASES) {
  test(`webgpu model: ${c.name}: RRDB maps, encode, decode and prepared decode = CPU (< ${TOL})`, { skip: !dev && why }, async () => {
    const m = createModel(makeOpt(c.opt), 7);
    randomiseModel(m, 8);
    const net = m.net;
    const gpu = new WebGpuSRFlow(net, dev!);
    const [B, , h, w] = c.lr;
    const lr = rand(c.lr, 1);
    const hr = rand([B, 3, h * c.opt.scale, w * c.opt.scale], 2);
    const noise = rand(hr.shape, 3, 0, 1 / 32);
    // RRDB maps
    const want = noGrad(() => net.rrdbForward(lr));
    const got = await gpu.rrdbForward(lr);
    for (const [k, v] of want.maps) close(`map ${k}`, got.maps.get(k) as Tensor, v);
    // encode (with dequantisation noise and quant) and decode
    const encCpu = net.encode(hr, lr, { noise, quant: 32 });
    const encGpu = await gpu.encodeLr(hr, lr, { noise, quant: 32 });
    encCpu.latents.forEach((z, i) => close(`latent ${i}`, encGpu.latents[i], z));
    close('nll', encGpu.nll, encCpu.nll as Tensor);
    close('logdet', encGpu.logdet, encCpu.logdet as Tensor);
    const lat = net.drawLatents(lr.shape, 0.8, new Rng(5));
    const decCpu = net.decode(lr, lat);
    const decGpu = await gpu.decodeLr(lr, lat);
    close('decode sr', decGpu.sr, decCpu.sr);
    close('decode logdet', decGpu.logdet, decCpu.logdet);
    // inverse of the forward on the GPU
    const back = await gpu.decodeLr(lr, encGpu.latents);
    const x = new Tensor(
      Float32Array.from(hr.data, (v, i) => v + noise.data[i]),
      hr.shape,
    );
    assert.ok(relativeError(back.sr.data, x.data) < 1e-5, `round trip ${relativeError(back.sr.data, x.data)}`);
    // the engine's path: one LR image conditioned once, 2 samples decoded at once against it
    const lr1 = new Tensor(lr.data.slice(0, lr.size / B), [1, 3, h, w]);
    const shapes = net.latentShapes([2, 3, h, w]);
    const z2 = shapes.map((s, i) => {
      const t = Tensor.zeros(s);
      new Rng(10 + i).fillNormal(t.data, 0.7);
      return t;
    });
    const cpuCache = net.prepareConditioning(lr1);
    const cpu2 = net.decodeCached(z2, cpuCache);
    const gc = gpu.prepare(lr1);
    const gpu2 = await gpu.decode(z2, gc);
    gpu.release(gc);
    close('prepared decode sr (2 samples, one conditioning)', gpu2.sr, cpu2.sr);
    close('prepared decode logdet', gpu2.logdet, cpu2.logdet);
    // the first convs at twice the LR size by phases (default) and on the materialised map agree
    const gm = gpu.prepare(lr1, { phases: false });
    const gpu3 = await gpu.decode(z2, gm);
    gpu.release(gm);
    close('prepared decode without phases', gpu3.sr, gpu2.sr);
  });
}

test('webgpu model: latents of the wrong shape are refused with a clear message', { skip: !dev && why }, async () => {
  const m = createModel(makeOpt(CASES[0].opt), 1);
  const gpu = new WebGpuSRFlow(m.net, dev!);
  const lr = rand([1, 3, 4, 4], 1);
  const lat = m.net.drawLatents([1, 3, 4, 4], 0.5, new Rng(1));
  lat[0] = Tensor.zeros([1, 1, 2, 2]);
  await assert.rejects(gpu.decodeLr(lr, lat), /Expected latents of shapes/);
});

test('webgpu model: superResolve with backend webgpu (the upscaler and the page) = the CPU engine, and says so', { skip: !dev && why }, async () => {
  const { superResolve } = await import('../../src/upscale/engine.js');
  const m = createModel(makeOpt(CASES[0].opt), 9);
  randomiseModel(m, 10);
  const lr = rand([1, 3, 6, 10], 11);
  const img = { data: lr.data as Float32Array, channels: 3, height: 6, width: 10 };
  const draws = [
    { temperature: 0.6, seed: 1 },
    { temperature: 0.6, seed: 2 },
  ];
  const g = await superResolve(m, img, { draws, backend: 'webgpu', tile: 4, overlap: 2 });
  const c = await superResolve(m, img, { draws, tile: 4, overlap: 2 });
  assert.match(g.backend, /^webgpu \(/);
  assert.doesNotMatch(c.backend, /webgpu/);
  assert.ok(g.tiles > 1, `tiled: ${g.tiles}`);
  for (let k = 0; k < draws.length; k++) {
    let worst = 0;
    for (let i = 0; i < g.samples[k].data.length; i++) worst = Math.max(worst, Math.abs(g.samples[k].data[i] - c.samples[k].data[i]));
    assert.ok(worst < 1e-4, `sample ${k}: max |Δ| ${worst}`);
  }
});

// last in this file: it releases the shared device the tests above use
test('webgpu model: the shared runner follows the shared device (a released device is not reused)', { skip: !dev && why }, async () => {
  const { webGpuRunner } = await import('../../src/models/webgpu.js');
  const m = createModel(makeOpt(CASES[0].opt), 2);
  const a = await webGpuRunner(m.net);
  assert.equal(await webGpuRunner(m.net), a, 'one runner per model while the device lives');
  await releaseWebGpuDevice();
  const b = await webGpuRunner(m.net);
  assert.notEqual(b, a);
  const lr = rand([1, 3, 4, 4], 1);
  const lat = m.net.drawLatents(lr.shape, 0.5, new Rng(2));
  close('decode on the new device', (await b.decodeLr(lr, lat)).sr, m.net.decode(lr, lat).sr);
});
