/**
 * The --backend option end to end through the CLI: `srflow verify --backend webgpu --json` on a
 * reference made here by the CPU path for a tiny random model (8×, 4 levels, batch 2, non-square
 * LR), reporting "backend":"webgpu"; `verify --json` and `info --json` report their backend; an
 * unknown backend is a usage error. The WebGPU runs are skipped, with the reason, only when no
 * WebGPU adapter can be created.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, noGrad } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/tensor/random.js';
import { createModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { writeSafetensors, type RawTensor } from '../../src/io/safetensors.js';
import { releaseWebGpuDevice } from '../../src/kernels/webgpu.js';
import { rand, randomiseModel } from '../helpers/model.js';
import { testDevice } from '../helpers/webgpu.js';
import { runCli } from '../helpers/cli.js';

const { dev, why } = await testDevice();
// the CLI runs in child processes: this one needs no device
await releaseWebGpuDevice();

let dir = '';
let modelPath = '';
let refPath = '';

const run = runCli;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'srflow-webgpu-cli-'));
  // 8×, 4 levels, batch 2, non-square LR 2×4
  const m = createModel(makeOpt({ scale: 8, nb: 1, K: 1, L: 4, blocks: [0], hidden: 8, nf: 8 }), 3);
  randomiseModel(m, 4);
  modelPath = join(dir, 'tiny8x.safetensors');
  await m.save(modelPath);
  const net = m.net;
  const lr = rand([2, 3, 2, 4], 5);
  const gt = rand([2, 3, 16, 32], 6);
  const noise = rand(gt.shape, 7, 0, 1 / 32);
  const ref = new Map<string, RawTensor>();
  const put = (k: string, t: Tensor) => ref.set(k, { shape: t.shape, data: Float32Array.from(t.data) });
  put('lr', lr);
  put('gt', gt);
  const r = noGrad(() => net.rrdbForward(lr));
  for (const [k, v] of r.maps) put(`rrdb.${k}`, v);
  const enc = net.encode(gt, lr);
  enc.latents.forEach((z, i) => put(`encode.eps.${i}`, z));
  put('encode.nll', enc.nll);
  put('encode.logdet', enc.logdet);
  const rec = net.decode(lr, enc.latents);
  put('reconstruct.sr', rec.sr);
  put('reconstruct.logdet', rec.logdet);
  const eps = net.drawLatents(lr.shape, 0.7, new Rng(8));
  eps.forEach((z, i) => put(`sample.eps.${i}`, z));
  const smp = net.decode(lr, eps);
  put('sample.sr', smp.sr);
  put('sample.logdet', smp.logdet);
  put('train.noise', noise);
  put('train.objective', net.encode(gt, lr, { noise, quant: net.config.quant }).nll);
  refPath = join(dir, 'reference.safetensors');
  writeSafetensors(refPath, ref);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('cli: verify --backend webgpu --json passes on 8×, 4 levels, batch 2, non-square and says "backend":"webgpu"', { skip: !dev && why }, async () => {
  const r = await run(['verify', '--model', modelPath, '--reference', refPath, '--backend', 'webgpu', '--json']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const j = JSON.parse(r.stdout);
  assert.equal(j.backend, 'webgpu');
  assert.equal(typeof j.adapter, 'string');
  assert.equal(j.pass, true);
  const names = j.results.map((x: { name: string }) => x.name);
  for (const k of [
    'rrdb.fea_up0',
    'rrdb.fea_up4',
    'encode.eps.0',
    'encode.eps.2',
    'encode.nll',
    'encode.logdet',
    'reconstruct.sr',
    'sample.sr',
    'sample.logdet',
    'sample.sr (prepared conditioning)',
    'train.objective',
  ]) {
    assert.ok(names.includes(k), `verified ${k}`);
  }
  for (const x of j.results) assert.ok(x.relErr < 1e-4 || x.name.startsWith('roundtrip'), `${x.name}: ${x.relErr}`);
});

test('cli: verify --json and info --json report the backend; an unknown --backend is a usage error', async () => {
  const v = await run(['verify', '--model', modelPath, '--reference', refPath, '--json', '--backend', 'reference']);
  assert.equal(v.code, 0, v.stderr);
  const j = JSON.parse(v.stdout);
  assert.equal(j.backend, 'reference');
  assert.equal(j.kernels, 'reference');
  const i = await run(['info', modelPath, '--json']);
  assert.equal(i.code, 0, i.stderr);
  assert.match(JSON.parse(i.stdout).backend, /^(native|reference|wasm)$/);
  const bad = await run(['verify', '--model', modelPath, '--reference', refPath, '--backend', 'cuda']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Expected one of auto, native, wasm, reference, webgpu for --backend but received "cuda"/);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
});

test('cli: info --backend webgpu names the adapter', { skip: !dev && why }, async () => {
  const i = await run(['info', modelPath, '--json', '--backend', 'webgpu']);
  assert.equal(i.code, 0, i.stderr);
  const j = JSON.parse(i.stdout);
  assert.equal(j.backend, 'webgpu');
  assert.equal(typeof j.adapter, 'string', JSON.stringify(j));
});
