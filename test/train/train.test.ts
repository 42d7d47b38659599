/** Tiny-model training: exact resume, non-finite handling, both stages, checkpoints, figures. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, mkdirSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseTrainOptions, type TrainOptions } from '../../src/train/options.js';
import { Trainer } from '../../src/train/trainer.js';
import { makeOpt } from '../../src/models/config.js';
import { loadModel } from '../../src/models/api.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { splitCheckpoint } from '../../src/train/checkpoint.js';

let dir = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'srflow-train-'));
  for (const sub of ['train', 'val']) {
    mkdirSync(join(dir, sub));
    for (let k = 0; k < 3; k++) {
      const w = 48;
      const buf = Buffer.alloc(w * w * 3);
      for (let y = 0; y < w; y++)
        for (let x = 0; x < w; x++)
          for (let c = 0; c < 3; c++) {
            buf[(y * w + x) * 3 + c] = Math.round(127 + 100 * Math.sin((x * (c + 1) + y * (k + 1)) / 5) * Math.cos(y / 7));
          }
      await sharp(buf, { raw: { width: w, height: w, channels: 3 } })
        .png()
        .toFile(join(dir, sub, `img${k}.png`));
    }
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

function opts(stage: 'rrdb' | 'flow', out: string, extra: Record<string, unknown> = {}): TrainOptions {
  const model = makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8, quant: 32 });
  return parseTrainOptions({
    ...model,
    name: 'tiny',
    datasets: { train: { dataroot_GT: join(dir, 'train'), GT_size: 16, batch_size: 2, quant: 32 }, val: { dataroot_GT: join(dir, 'val'), crop: 32 } },
    train: { stage, niter: 8, lr_G: 5e-4, val_freq: 1000, save_checkpoint_freq: 1000, log_freq: 2, manual_seed: 3, ...extra },
    path: { out_dir: out },
  });
}

const weights = (t: Trainer) => [...t.net.parameters()].map(([n, p]) => [n, Array.from(p.data)] as const);

test('N steps straight = N/2 steps + resume + N/2 steps (weights, Adam, schedule, RNG)', async () => {
  const a = await Trainer.create(opts('flow', join(dir, 'a')));
  await a.run({ maxSteps: 6 });
  const b1 = await Trainer.create(opts('flow', join(dir, 'b')));
  await b1.run({ maxSteps: 3 });
  const ck = join(dir, 'b', 'latest.safetensors');
  assert.ok(existsSync(ck));
  const b2 = await Trainer.create(opts('flow', join(dir, 'b')), {}, ck);
  assert.equal(b2.iter, 3);
  await b2.run({ maxSteps: 3 });
  assert.equal(b2.iter, 6);
  const wa = weights(a);
  const wb = weights(b2);
  for (let i = 0; i < wa.length; i++) assert.deepEqual(wb[i], wa[i], `parameter ${wa[i][0]} differs after resume`);
  // the checkpoint is also a loadable model
  const m = await loadModel(ck);
  assert.equal(m.scale, 4);
  // a checkpoint split in two files (parameters + state, optimizer) resumes to the same weights
  const split = splitCheckpoint(join(dir, 'b', 'checkpoint_0000003.safetensors'), join(dir, 'split', 'ck.safetensors'));
  assert.ok(existsSync(split.optimizer) && statSync(split.model).size < statSync(ck).size);
  const c2 = await Trainer.create(opts('flow', join(dir, 'c2')), {}, split.model);
  await c2.run({ maxSteps: 3 });
  const wc = weights(c2);
  for (let i = 0; i < wa.length; i++) assert.deepEqual(wc[i], wa[i], `parameter ${wa[i][0]} differs after resuming a split checkpoint`);
  assert.equal((await loadModel(split.model)).scale, 4);
  rmSync(split.optimizer);
  await assert.rejects(Trainer.create(opts('flow', join(dir, 'c3')), {}, split.model), /optimizer state .*cannot be read/);
});

test('flow stage: NLL falls on a tiny model; log, curve, validation grid and checkpoints are written', async () => {
  const out = join(dir, 'c');
  const o = opts('flow', out, { niter: 40, val_freq: 40, save_checkpoint_freq: 20 });
  const t = await Trainer.create(o);
  const losses: number[] = [];
  const vals: Record<string, unknown>[] = [];
  t.events.onStep = (s) => losses.push(s.loss);
  t.events.onVal = (v) => vals.push(v);
  const r = await t.run();
  assert.equal(r.reason, 'done');
  const first = losses.slice(0, 3).reduce((a, b) => a + b) / 3;
  const last = losses.slice(-3).reduce((a, b) => a + b) / 3;
  assert.ok(last < first, `loss did not fall: ${first} → ${last}`);
  assert.equal(vals.length, 1);
  for (const k of ['nll_bpd', 'psnr', 'psnr_bicubic', 'lr_psnr', 'diversity']) assert.ok(Number.isFinite(vals[0][k] as number), `val ${k}`);
  const files = readdirSync(out);
  for (const f of [
    'train_log.jsonl',
    'loss_curve.png',
    'latest.safetensors',
    'checkpoint_0000020.safetensors',
    'checkpoint_0000040.safetensors',
    'val_0000040.png',
  ])
    assert.ok(files.includes(f), `${f} written`);
  assert.ok(!files.some((f) => f.endsWith('.tmp')), 'no temporary files');
  const lines = readFileSync(join(out, 'train_log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.ok(lines.filter((l) => l.type === 'step').length >= 20);
  assert.ok(lines.some((l) => l.type === 'val'));
});

test('pixel loss, synthetic patches and gradient clipping: options parse, terms are logged, resume stays exact', async () => {
  const extra = { pixel_weight: 2, pixel_batch: 1, grad_clip: 5 };
  const mk = (out: string) => {
    const o = opts('flow', out, extra);
    o.data.synthetic = 0.5;
    return o;
  };
  const o = mk(join(dir, 'px'));
  assert.equal(o.train.pixelWeight, 2);
  assert.equal(o.train.pixelBatch, 1);
  assert.equal(o.train.gradClip, 5);
  const t = await Trainer.create(o);
  const steps: Record<string, unknown>[] = [];
  t.events.onStep = (s) => steps.push(s as unknown as Record<string, unknown>);
  await t.run({ maxSteps: 4 });
  assert.ok(steps.length >= 2);
  for (const s of steps) {
    assert.ok(Number.isFinite(s.nll as number) && Number.isFinite(s.pixel as number) && (s.pixel as number) > 0, `terms logged: ${JSON.stringify(s)}`);
    assert.ok(Math.abs((s.loss as number) - ((s.nll as number) + 2 * (s.pixel as number))) < 1e-3, 'loss = nll + weight · pixel');
    assert.ok((s.gradNorm as number) > 0);
  }
  // clipping bounds the update: with a tiny clip the weights move less than without
  const moved = async (clip: number) => {
    const base = mk(join(dir, `clip${clip}`));
    const u = await Trainer.create(parseTrainOptions({ ...base.raw, train: { ...(base.raw.train as object), grad_clip: clip } }));
    const before = weights(u);
    u.step();
    const after = weights(u);
    let d = 0;
    for (let i = 0; i < before.length; i++) for (let j = 0; j < before[i][1].length; j++) d += Math.abs(after[i][1][j] - before[i][1][j]);
    return { d, norm: u.lastGradNorm };
  };
  const free = await moved(0);
  const clipped = await moved(free.norm / 1000);
  assert.ok(clipped.d < free.d, `clipped step moves less (${clipped.d} vs ${free.d})`);
  // resume is exact with synthetic patches and the pixel loss
  const a = await Trainer.create(mk(join(dir, 'pa')));
  await a.run({ maxSteps: 4 });
  const b1 = await Trainer.create(mk(join(dir, 'pb')));
  await b1.run({ maxSteps: 2 });
  const b2 = await Trainer.create(mk(join(dir, 'pb')), {}, join(dir, 'pb', 'latest.safetensors'));
  await b2.run({ maxSteps: 2 });
  const wa = weights(a);
  const wb = weights(b2);
  for (let i = 0; i < wa.length; i++) assert.deepEqual(wb[i], wa[i], `parameter ${wa[i][0]} differs after resume`);
  // several training folders, and the options' errors
  const multi = parseTrainOptions({ ...o.raw, datasets: { train: { dataroot_GT: [join(dir, 'train'), join(dir, 'val')], GT_size: 16 } } });
  assert.deepEqual(multi.data.trainDirs, [join(dir, 'train'), join(dir, 'val')]);
  assert.throws(() => parseTrainOptions({ ...o.raw, datasets: { train: { dataroot_GT: [], GT_size: 16 } } }), /folder path or a non-empty list/);
  assert.throws(
    () => parseTrainOptions({ ...o.raw, datasets: { train: { dataroot_GT: join(dir, 'train'), GT_size: 16, synthetic: 2 } } }),
    /fraction in \[0, 1\] for datasets.train.synthetic/,
  );
  assert.throws(() => parseTrainOptions({ ...o.raw, train: { pixel_weight: -1 } }), /number ≥ 0 for train.pixel_weight/);
  await assert.rejects(Trainer.create(parseTrainOptions({ ...o.raw, memory: 'low' })), /pixel_weight 0 with memory: low/);
});

test('flow validation reports hatching and the synthetic robustness check', async () => {
  const t = await Trainer.create(opts('flow', join(dir, 'val2')));
  const v = await t.validate();
  for (const k of ['hatching_t0', 'synth_lr_psnr_t0_min', 'synth_lr_psnr_min', 'synth_t08_vs_t0_min', 'synth_bad_frac']) {
    assert.ok(typeof v[k] === 'number' && !Number.isNaN(v[k]), `val ${k}: ${v[k]}`);
  }
  assert.ok((v.synth_bad_frac as number) >= 0 && (v.synth_bad_frac as number) <= 1);
});

test('init_partial: an 8x run warm-starts from a 4x model (matching tensors taken, the rest fresh)', async () => {
  const four = await Trainer.create(opts('flow', join(dir, 'four')));
  await four.run({ maxSteps: 1 });
  const src = join(dir, 'four.safetensors');
  four.saveModel(src);
  const base = opts('flow', join(dir, 'eight'));
  const model8 = makeOpt({ scale: 8, nb: 1, K: 1, L: 4, blocks: [0], hidden: 8, nf: 8, quant: 32 });
  const raw = {
    ...base.raw,
    ...model8,
    datasets: { train: { dataroot_GT: join(dir, 'train'), GT_size: 32, batch_size: 2 } },
    path: { out_dir: join(dir, 'eight'), init_model: src, init_partial: true },
  };
  const infos: string[] = [];
  const t = await Trainer.create(parseTrainOptions(raw), { onInfo: (m) => infos.push(m) });
  const p4 = four.net.parameters();
  const p8 = t.net.parameters();
  let same = 0;
  let fresh = 0;
  for (const [n, p] of p8) {
    const q = p4.get(n);
    if (q && q.shape.join() === p.shape.join()) {
      assert.deepEqual(Array.from(p.data), Array.from(q.data), `${n} taken from the 4x model`);
      same++;
    } else fresh++;
  }
  assert.ok(same > 0 && fresh > 0, `${same} taken, ${fresh} fresh`);
  assert.ok(p8.has('RRDB.upconv3.weight') && !p4.has('RRDB.upconv3.weight'));
  assert.ok(
    infos.some((m) => new RegExp(`${same} of ${p8.size} tensors initialised from .* \\(partial\\)`).test(m)),
    infos.join('\n'),
  );
  await t.run({ maxSteps: 2 });
  assert.ok(t.weightsFinite());
  // without init_partial the mismatch is an error naming the tensors
  await assert.rejects(
    Trainer.create(parseTrainOptions({ ...raw, path: { out_dir: join(dir, 'eight2'), init_model: src } })),
    /does not match the configuration/,
  );
});

test('rrdb stage: L1 pre-training runs and its checkpoint seeds the flow stage', async () => {
  const out = join(dir, 'r');
  const t = await Trainer.create(opts('rrdb', out, { niter: 10, val_freq: 10 }));
  const losses: number[] = [];
  t.events.onStep = (s) => losses.push(s.loss);
  await t.run();
  assert.ok(losses[losses.length - 1] < losses[0]);
  // the flow stage's configuration may differ outside the RRDB (here K 2 instead of 1): only RRDB.* is read
  const o = opts('flow', join(dir, 'r2'));
  const m2 = makeOpt({ scale: 4, nb: 1, K: 2, L: 3, blocks: [0], hidden: 8, nf: 8, quant: 32 });
  o.model = parseTrainOptions({ ...m2, datasets: { train: { dataroot_GT: join(dir, 'train') } } }).model;
  o.pretrainRrdb = join(out, 'latest.safetensors');
  const f = await Trainer.create(o);
  const w = f.net.parameters().get('RRDB.conv_first.weight')!;
  assert.deepEqual(Array.from(w.data), Array.from(t.net.parameters().get('RRDB.conv_first.weight')!.data));
  // frozen RRDB for the first half: its weights do not move
  await f.run({ maxSteps: 2 });
  assert.deepEqual(Array.from(f.net.parameters().get('RRDB.conv_first.weight')!.data), Array.from(w.data));
});

test('init_model starts a new run from every weight of a finished model, with a fresh optimizer and schedule', async () => {
  const a = await Trainer.create(opts('flow', join(dir, 'i1')));
  await a.run({ maxSteps: 2 });
  const ck = join(dir, 'i1', 'latest.safetensors');
  const o = opts('flow', join(dir, 'i2'));
  o.initModel = ck;
  const b = await Trainer.create(o);
  assert.equal(b.iter, 0, 'a fresh schedule');
  const wa = weights(a);
  const wb = weights(b);
  for (let i = 0; i < wa.length; i++) assert.deepEqual(wb[i], wa[i], `parameter ${wa[i][0]} not initialised from the model`);
  assert.equal(b.priorIterations, 2, "the checkpoint's iterations are carried");
  await b.run({ maxSteps: 1 });
  assert.notDeepEqual(weights(b), wa, 'training moved the weights');
  // an exported model counts every iteration behind its weights, and a run started from it carries them on
  const model = join(dir, 'i2', 'model.safetensors');
  b.saveModel(model);
  const oc = opts('flow', join(dir, 'i4'));
  oc.initModel = model;
  const c = await Trainer.create(oc);
  assert.equal(c.priorIterations, 3);
  await c.run({ maxSteps: 1 });
  c.saveModel(model);
  assert.equal(readSafetensors(model).metadata.trained_iterations, '4');
  const r = await Trainer.create(opts('flow', join(dir, 'i4')), {}, join(dir, 'i4', 'latest.safetensors'));
  assert.equal(r.priorIterations, 3, 'resume keeps the count');
  const bad = opts('flow', join(dir, 'i3'));
  bad.initModel = join(dir, 'train', 'img0.png');
  await assert.rejects(Trainer.create(bad));
});

test('non-finite losses skip the update; repeated ones stop the run with the last good checkpoint intact', async () => {
  const out = join(dir, 'n');
  const t = await Trainer.create(opts('flow', out, { max_nonfinite: 3, niter: 50, save_checkpoint_freq: 2 }));
  await t.run({ maxSteps: 2 });
  const good = readFileSync(join(out, 'latest.safetensors'));
  // poison a weight: every later loss is NaN
  t.net.parameters().get('flowUpsamplerNet.layers.3.affine.fAffine.0.weight')!.data[0] = NaN;
  const warnings: string[] = [];
  t.events.onWarning = (m) => warnings.push(m);
  const r = await t.run();
  assert.equal(r.reason, 'nonfinite');
  assert.equal(warnings.length, 4);
  assert.match(warnings[3], /3 consecutive non-finite steps.*intact/);
  assert.deepEqual(readFileSync(join(out, 'latest.safetensors')), good);
  const log = readFileSync(join(out, 'train_log.jsonl'), 'utf8');
  assert.match(log, /"type":"nonfinite"/);
});
