/**
 * Published checkpoints with no configuration: every published layout (and same-family ones the
 * tensors determine) is recognised from names and shapes alone; RRDB_*.pth load as deterministic
 * upscalers; mis-shaped and ambiguous checkpoints give errors naming the tensor or the missing value.
 * The state-dict layouts come from test/helpers/published-shapes.ts (written from the spec, not from
 * src/models), and the parity fixture was written by the published code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inferLayout } from '../../src/models/infer-layout.js';
import { createModel, loadModel, loadNet, loadNetDetailed } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { SRFlowNet } from '../../src/models/srflow.js';
import { isRrdbOnly, RRDBOnlyNet } from '../../src/models/rrdb-model.js';
import { readPth } from '../../src/io/pth.js';
import { readSafetensors, type RawTensor } from '../../src/io/safetensors.js';
import { verifyModel, relativeError } from '../../src/models/verify.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { writePth } from '../helpers/pth-writer.js';
import { rand, randomiseModel } from '../helpers/model.js';
import { rrdbShapes, srflowShapes } from '../helpers/published-shapes.js';

const FIX = new URL('../../../shared/fixtures/parity-4x/', import.meta.url).pathname;
const haveFixture = existsSync(FIX + 'weights.pth');

function withDir(fn: (dir: string) => void | Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'srflow-layout-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** Same names and shapes in the file's layout and in the model built from the recognised config. */
function assertSameShapes(net: SRFlowNet, shapes: Map<string, number[]>, rename: Map<string, string>) {
  const params = net.parameters();
  const names = new Set<string>();
  for (const [k, s] of shapes) {
    const n = rename.get(k) ?? k;
    names.add(n);
    const p = params.get(n);
    assert.ok(p, `model has ${n}`);
    assert.deepEqual(p.shape, s, n);
  }
  for (const n of params.keys()) assert.ok(names.has(n), `file has ${n}`);
}

test('the three published SRFlow layouts are recognised with the published configurations', () => {
  const cases = [
    { name: 'SRFlow_DF2K_4X', scale: 4, nb: 23, L: 3, blocks: [1, 8, 15, 22] },
    { name: 'SRFlow_DF2K_8X', scale: 8, nb: 23, L: 4, blocks: [1, 3, 5, 7] },
    { name: 'SRFlow_CelebA_8X', scale: 8, nb: 8, L: 4, blocks: [1, 3, 5, 7] },
  ];
  for (const c of cases) {
    const lay = inferLayout(srflowShapes({ scale: c.scale, nb: c.nb, L: c.L }), `${c.name}.pth`);
    assert.equal(lay.kind, 'srflow');
    assert.equal(lay.published, c.name);
    const cfg = lay.config;
    assert.equal(cfg.scale, c.scale, c.name);
    assert.equal(cfg.nb, c.nb);
    assert.equal(cfg.nf, 64);
    assert.equal(cfg.gc, 32);
    assert.equal(cfg.flow.L, c.L);
    assert.deepEqual(cfg.flow.K, Array(c.L).fill(16));
    assert.equal(cfg.flow.additionalFlowNoAffine, 2);
    assert.equal(cfg.flow.split, true);
    assert.deepEqual(cfg.flow.stackBlocks, c.blocks, c.name);
    assert.equal(cfg.flow.stackConcat, true);
    assert.equal(cfg.flow.hidden, 64);
    assert.equal(cfg.flow.eps, 1e-4);
    assert.equal(cfg.flow.feaUp0, true);
    assert.equal(cfg.quant, 32);
    // the blocks are not in the tensors: said so
    assert.ok(lay.assumed.some((a) => a.includes('stackRRDB.blocks') && a.includes(c.name)), lay.assumed.join('; '));
  }
});

test('the three published RRDB layouts are recognised (bare RRDBNet state dicts)', () => {
  for (const [name, scale, nb] of [['RRDB_DF2K_4X', 4, 23], ['RRDB_DF2K_8X', 8, 23], ['RRDB_CelebA_8X', 8, 8]] as const) {
    const shapes = rrdbShapes(scale, nb);
    const lay = inferLayout(shapes, `${name}.pth`);
    assert.equal(lay.kind, 'rrdb');
    assert.equal(lay.published, name);
    assert.equal(lay.config.scale, scale);
    assert.equal(lay.config.nb, nb);
    assert.equal(lay.rename.get('conv_first.weight'), 'RRDB.conv_first.weight');
  }
  // small ones: the RRDB-only model has exactly the file's tensors
  for (const [scale, nb] of [[4, 2], [8, 1], [16, 1]]) {
    const shapes = rrdbShapes(scale, nb);
    const lay = inferLayout(shapes);
    assert.equal(lay.published, null);
    assertSameShapes(new RRDBOnlyNet(lay.config), shapes, lay.rename);
  }
});

test('other layouts of the family are recognised when the tensors determine them', () => {
  const specs = [
    { scale: 4, nb: 3, L: 3, K: 2, hidden: 16, nStack: 3 }, // every block stacked
    { scale: 8, nb: 2, L: 4, K: 1, hidden: 8, nStack: 0, A: 1 }, // no stacking, one transition step
    { scale: 4, nb: 23, L: 3, K: 2, hidden: 32, nStack: 4 }, // published blocks, smaller flow
    { scale: 8, nb: 1, L: 3, K: 1, hidden: 8, nStack: 1, split: false }, // no splits
    { scale: 4, nb: 2, L: 4, K: 1, hidden: 8, nStack: 2 }, // down to LR/4 (fea_up-1)
  ];
  for (const s of specs) {
    const shapes = srflowShapes(s);
    const lay = inferLayout(shapes);
    assert.equal(lay.kind, 'srflow');
    assert.equal(lay.published, null, JSON.stringify(s));
    assert.equal(lay.config.flow.hidden, s.hidden);
    assert.equal(lay.config.flow.L, s.L);
    assert.equal(lay.config.flow.additionalFlowNoAffine, s.A ?? 2);
    assert.equal(lay.config.flow.stackBlocks.length, s.nStack);
    assertSameShapes(new SRFlowNet(lay.config), shapes, lay.rename);
  }
});

test('what the tensors cannot tell is named in the error', () => {
  // 2 of 6 blocks stacked, no published configuration with that layout: which ones?
  assert.throws(() => inferLayout(srflowShapes({ scale: 4, nb: 6, L: 3, K: 1, hidden: 8, nStack: 2 }), 'odd.pth'), (e: Error) => {
    assert.match(e.message, /odd\.pth/);
    assert.match(e.message, /network_G\.flow\.stackRRDB\.blocks is missing/);
    assert.match(e.message, /2 of the 6 RRDB blocks/);
    assert.match(e.message, /--config/);
    return true;
  });
  assert.throws(() => inferLayout(new Map([['encoder.weight', [3, 3]]]), 'other.pth'), /other\.pth: it is neither an SRFlow nor an RRDB checkpoint.*encoder\.weight/);
  const noFirst = rrdbShapes(4, 2);
  noFirst.delete('conv_first.weight');
  noFirst.set('RRDB.x', [1]);
  assert.throws(() => inferLayout(noFirst, 'broken.pth'), /broken\.pth/);
  const gap = srflowShapes({ scale: 4, nb: 2, L: 3, K: 1, hidden: 8, nStack: 2 });
  for (const k of [...gap.keys()]) if (k.startsWith('RRDB.upconv2.')) gap.delete(k);
  assert.throws(() => inferLayout(gap, 'g.pth'), /RRDB\.upconv2\.weight is missing/);
});

test('a small published-layout .pth loads without a configuration and encodes exactly as its model', withDir((dir) => {
  const model = createModel(makeOpt({ scale: 4, nb: 2, K: 2, L: 3, blocks: [0, 1], hidden: 16 }), 3);
  randomiseModel(model, 4);
  const tensors = new Map<string, RawTensor>();
  for (const [n, p] of model.parameters()) tensors.set(n, { shape: p.shape, data: p.data as Float32Array });
  const file = join(dir, 'small.pth');
  writePth(file, tensors);
  const d = loadNetDetailed(file);
  assert.equal(d.configSource, 'inferred');
  assert.equal(d.kind, 'srflow');
  assert.equal(d.report.matched.length, tensors.size - 2);
  assert.deepEqual(d.report.unused, ['flowUpsamplerNet.f.0.weight', 'flowUpsamplerNet.f.0.bias']);
  const hr = rand([1, 3, 32, 32], 5);
  const lr = rand([1, 3, 8, 8], 6);
  const want = model.encode(hr, lr);
  const got = d.net.encode(hr, lr);
  assert.equal(got.nll.data[0], want.nll[0]);
  got.latents.forEach((z, i) => assert.deepEqual(z.data, want.latents[i].data));

  // a mis-shaped tensor: the error names it, with both shapes
  const bad = new Map(tensors);
  bad.set('flowUpsamplerNet.layers.3.affine.fAffine.2.weight', { shape: [16, 8, 1, 1], data: new Float32Array(128) });
  const badFile = join(dir, 'bad.pth');
  writePth(badFile, bad);
  assert.throws(() => loadNet(badFile), (e: Error) => {
    assert.match(e.message, /bad\.pth/);
    assert.match(e.message, /mis-shaped 1 tensor\(s\): flowUpsamplerNet\.layers\.3\.affine\.fAffine\.2\.weight \(expected \[16,16,1,1\], found \[16,8,1,1\]\)/);
    return true;
  });
}));

test('an RRDB_*.pth is a deterministic upscaler; mis-shaped RRDB tensors are named as in the file', withDir(async (dir) => {
  const model = createModel(makeOpt({ scale: 4, nb: 2, K: 1, L: 3, blocks: [0, 1] }), 8);
  const tensors = new Map<string, RawTensor>();
  for (const [n, p] of model.net.rrdbParameters()) tensors.set(n.slice('RRDB.'.length), { shape: p.shape, data: p.data as Float32Array });
  const file = join(dir, 'RRDB_DF2K_4X.pth');
  writePth(file, tensors);
  const m = await loadModel(file);
  assert.ok(isRrdbOnly(m.net));
  assert.equal(m.scale, 4);
  const lr = rand([1, 3, 6, 5], 9);
  const want = model.net.rrdb.forward(lr, { withOut: true }).out as Tensor; // any LR size: no flow
  const a = m.sample(lr, { temperature: 0.9, seed: 1 });
  const b = m.sample(lr, { temperature: 0, seed: 7 });
  assert.deepEqual(a.shape, [1, 3, 24, 20]);
  assert.deepEqual(a.data, want.data);
  assert.deepEqual(b.data, want.data);
  assert.throws(() => m.encode(rand([1, 3, 24, 20], 1), lr), /RRDB network.*not an SRFlow model.*encoding/);

  const bad = new Map(tensors);
  bad.set('RRDB_trunk.1.RDB2.conv3.weight', { shape: [32, 128, 3, 1], data: new Float32Array(32 * 128 * 3) });
  const badFile = join(dir, 'RRDB_bad.pth');
  writePth(badFile, bad);
  assert.throws(() => loadNet(badFile), /mis-shaped 1 tensor\(s\): RRDB_trunk\.1\.RDB2\.conv3\.weight \(expected \[32,128,3,3\], found \[32,128,3,1\]\)/);
}));

test('fixture (written by the published code): recognised with no configuration, every tensor reproduced', { skip: !haveFixture && 'fixture not found' }, () => {
  const d = loadNetDetailed(FIX + 'weights.pth');
  assert.equal(d.configSource, 'inferred');
  assert.deepEqual(d.net.config.flow.stackBlocks, [0, 1, 2, 3]); // all 4 of 4 blocks: determined
  assert.deepEqual(d.net.config.flow.K, [2, 2, 2]);
  const ref = readSafetensors(FIX + 'tensors.safetensors').tensors;
  const rows = verifyModel(d.net, ref);
  for (const r of rows) assert.ok(r.pass, `${r.name}: relative error ${r.relErr}`);
  // an explicit configuration still wins
  const opt = makeOpt({ scale: 4, nb: 4, K: 2, L: 3, blocks: [3, 2, 1, 0] });
  assert.deepEqual(loadNet(FIX + 'weights.pth', { config: opt }).config.flow.stackBlocks, [3, 2, 1, 0]);
});

test('fixture RRDB as a bare RRDB_*.pth reproduces the published RRDB output', { skip: !haveFixture && 'fixture not found' }, withDir(async (dir) => {
  const all = readPth(FIX + 'weights.pth');
  const bare = new Map<string, RawTensor>();
  for (const [k, t] of all) if (k.startsWith('RRDB.')) bare.set(k.slice(5), t);
  const file = join(dir, 'RRDB_fixture.pth');
  writePth(file, bare);
  const m = await loadModel(file);
  assert.ok(isRrdbOnly(m.net));
  const ref = readSafetensors(FIX + 'tensors.safetensors').tensors;
  const lr = ref.get('lr') as RawTensor;
  const out = ref.get('rrdb.out') as RawTensor;
  const sr = m.sample(new Tensor(lr.data, lr.shape), { temperature: 0 });
  assert.deepEqual(sr.shape, out.shape);
  const e = relativeError(sr.data, out.data);
  assert.ok(e < 1e-5, `relative error ${e}`);
}));

test('the browser path (bytes in memory): a published .pth and an RRDB_*.pth become models', { skip: !haveFixture && 'fixture not found' }, async () => {
  const { netFromBytes } = await import('../../src/models/from-bytes.js');
  const { readFileSync } = await import('node:fs');
  const d = netFromBytes(new Uint8Array(readFileSync(FIX + 'weights.pth')), 'weights.pth');
  assert.equal(d.kind, 'srflow');
  const ref = readSafetensors(FIX + 'tensors.safetensors').tensors;
  const get = (k: string) => new Tensor((ref.get(k) as RawTensor).data, (ref.get(k) as RawTensor).shape);
  const nll = d.net.encode(get('gt'), get('lr')).nll.data[0];
  const want = get('encode.nll').data[0];
  assert.ok(Math.abs(nll - want) / Math.abs(want) < 1e-5, `${nll} vs ${want}`);
  const bare = new Map<string, RawTensor>();
  for (const [k, t] of readPth(FIX + 'weights.pth')) if (k.startsWith('RRDB.')) bare.set(k.slice(5), t);
  const { buildPth } = await import('../helpers/pth-writer.js');
  const r = netFromBytes(buildPth(bare), 'RRDB_x.pth');
  assert.equal(r.kind, 'rrdb');
  assert.ok(relativeError((r.net as RRDBOnlyNet).srOutput(get('lr')).data, get('rrdb.out').data) < 1e-5);
  assert.throws(() => netFromBytes(new Uint8Array([1, 2, 3]), 'junk.bin'), /junk\.bin is not a PyTorch checkpoint/);
});
