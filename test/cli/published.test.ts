/**
 * Published-layout checkpoints on the command line with no configuration: encode, info, upscale with
 * an RRDB_*.pth (the RRDB's own output, 8-bit rounded), and the flow stage of training starting from
 * an RRDB_*.pth.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { createModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { loadImage } from '../../src/io/image.js';
import { sha256File } from '../../src/registry/index.js';
import { parseTrainOptions } from '../../src/train/options.js';
import { Trainer } from '../../src/train/trainer.js';
import { Tensor } from '../../src/tensor/tensor.js';
import type { RawTensor } from '../../src/io/safetensors.js';
import { writePth } from '../helpers/pth-writer.js';
import { randomiseModel } from '../helpers/model.js';
import { runCli } from '../helpers/cli.js';

let dir = '';

const run = (args: string[]) => runCli(args, { SRFLOW_HOME: join(dir, 'home') });

async function png(path: string, w: number, h: number, seed: number): Promise<void> {
  const buf = Buffer.alloc(w * h * 3);
  for (let i = 0; i < buf.length; i++) buf[i] = Math.round(127 + 90 * Math.sin(i * 0.37 + seed) * Math.cos(i * 0.011));
  await sharp(buf, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(path);
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'srflow-published-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('encode and info with a published-layout .pth and no --config', async () => {
  const model = createModel(makeOpt({ scale: 4, nb: 2, K: 1, L: 3, blocks: [0, 1], hidden: 8 }), 1);
  randomiseModel(model, 2);
  const t = new Map<string, RawTensor>();
  for (const [n, p] of model.parameters()) t.set(n, { shape: p.shape, data: p.data as Float32Array });
  const file = join(dir, 'SRFlow_small.pth');
  writePth(file, t);
  const hr = join(dir, 'hr.png');
  const lr = join(dir, 'lr.png');
  await png(hr, 32, 24, 1);
  await png(lr, 8, 6, 2);
  const r = await run(['encode', '--model', file, '--hr', hr, '--lr', lr, '-o', join(dir, 'z.safetensors'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const got = JSON.parse(r.stdout) as { nll: number };
  const H = (await loadImage(hr)).rgb;
  const L = (await loadImage(lr)).rgb;
  const want = model.encode(new Tensor(H.data, [1, 3, 24, 32]), new Tensor(L.data, [1, 3, 6, 8])).nll[0];
  assert.equal(got.nll, want);

  const i = await run(['info', file, '--json']);
  assert.equal(i.code, 0, i.stderr);
  const info = JSON.parse(i.stdout) as Record<string, unknown>;
  assert.equal(info.kind, 'srflow');
  assert.equal(info.layout, null);
  assert.equal(info.configSource, 'inferred');
  assert.equal(info.sha256, sha256File(file));
  assert.equal(info.scale, 4);
  assert.deepEqual(info.blocks, [0, 1]);
  assert.deepEqual((info.tensors as { unused: string[] }).unused, ['flowUpsamplerNet.f.0.weight', 'flowUpsamplerNet.f.0.bias']);
  assert.equal((info.tensors as { matched: number }).matched, t.size - 2);
  const text = await run(['info', file]);
  assert.match(text.stdout, /layout: recognised \(not a published layout\); configuration inferred from the tensors/);
  assert.match(text.stdout, new RegExp(`sha256 ${sha256File(file)}`));
});

test('upscale with an RRDB_*.pth gives the RRDB output (8-bit rounded); encode says it needs SRFlow', async () => {
  const model = createModel(makeOpt({ scale: 4, nb: 2, K: 1, L: 3, blocks: [0, 1] }), 5);
  const t = new Map<string, RawTensor>();
  for (const [n, p] of model.net.rrdbParameters()) t.set(n.slice(5), { shape: p.shape, data: p.data as Float32Array });
  const file = join(dir, 'RRDB_DF2K_4X.pth');
  writePth(file, t);
  const lrPath = join(dir, 'rrdb_lr.png');
  await png(lrPath, 13, 9, 3);
  const r = await run(['upscale', lrPath, '--model', file, '-o', join(dir, 'rrdb_sr.png'), '--quiet', '--temperature', '0.9']);
  assert.equal(r.code, 0, r.stderr);
  const L = (await loadImage(lrPath)).rgb;
  const out = model.net.rrdb.forward(new Tensor(L.data, [1, 3, 9, 13]), { withOut: true }).out as Tensor;
  const sr = await sharp(join(dir, 'rrdb_sr.png')).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([sr.info.width, sr.info.height], [52, 36]);
  let worst = 0;
  for (let c = 0; c < 3; c++)
    for (let i = 0; i < 52 * 36; i++) {
      const want = Math.round(Math.min(1, Math.max(0, out.data[c * 52 * 36 + i])) * 255);
      worst = Math.max(worst, Math.abs(sr.data[i * 3 + c] - want));
    }
  assert.ok(worst <= 1, `max 8-bit difference ${worst}`);
  const e = await run(['encode', '--model', file, '--hr', join(dir, 'rrdb_sr.png'), '--lr', lrPath, '-o', join(dir, 'z2.safetensors')]);
  assert.equal(e.code, 1);
  assert.match(e.stderr, /^srflow: This is an RRDB network .* needs an SRFlow model/);
});

test('the flow stage of training starts from a published-layout RRDB_*.pth', async () => {
  const train = join(dir, 'train');
  mkdirSync(train);
  for (let k = 0; k < 2; k++) await png(join(train, `i${k}.png`), 32, 32, k);
  const opt = makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8, quant: 32 });
  const rrdb = createModel(opt, 9);
  const t = new Map<string, RawTensor>();
  for (const [n, p] of rrdb.net.rrdbParameters()) t.set(n.slice(5), { shape: p.shape, data: p.data as Float32Array });
  const file = join(dir, 'RRDB_tiny.pth');
  writePth(file, t);
  const o = parseTrainOptions({
    ...opt,
    datasets: { train: { dataroot_GT: train, GT_size: 16, batch_size: 1, quant: 32 } },
    train: { stage: 'flow', niter: 2, val_freq: 1000, save_checkpoint_freq: 1000, manual_seed: 1 },
    path: { out_dir: join(dir, 'run'), pretrain_rrdb: file },
  });
  const tr = await Trainer.create(o);
  for (const [n, p] of rrdb.net.rrdbParameters()) assert.deepEqual(Array.from(tr.net.parameters().get(n)!.data), Array.from(p.data), n);
  const res = await tr.run({ maxSteps: 1 });
  assert.notEqual(res.reason, 'nonfinite');
});
