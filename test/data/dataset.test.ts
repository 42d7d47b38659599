import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ImageFolderDataset, loadValidationSet, Rng, mulberry32 } from '../../src/data/dataset.js';
import { imresize } from '../../src/data/bicubic.js';
import { loadImage } from '../../src/io/image.js';
import type { Planar } from '../../src/io/image.js';

let root = '';
let train = '';
const warnings: string[] = [];

function randomU8(n: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  return Uint8Array.from({ length: n }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24);
}

async function writeRaw(path: string, raw: Uint8Array, w: number, h: number): Promise<void> {
  const s = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  const buf = path.endsWith('.webp')
    ? await s.webp({ lossless: true }).toBuffer()
    : path.endsWith('.jpg')
      ? await s.jpeg().toBuffer()
      : await s.png().toBuffer();
  writeFileSync(path, buf);
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'srflow-dataset-'));
  train = join(root, 'train');
  mkdirSync(train);
  await writeRaw(join(train, 'a.png'), randomU8(40 * 48 * 3, 1), 40, 48);
  await writeRaw(join(train, 'b.jpg'), randomU8(64 * 40 * 3, 2), 64, 40);
  await writeRaw(join(train, 'c.webp'), randomU8(50 * 50 * 3, 3), 50, 50);
  await writeRaw(join(train, 'tiny.png'), randomU8(10 * 10 * 3, 4), 10, 10);
  writeFileSync(join(train, 'corrupt.png'), Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), randomU8(200, 5)]));
  writeFileSync(join(train, 'notes.txt'), 'not an image');
});
after(() => rmSync(root, { recursive: true, force: true }));

function patch(b: { shape: number[]; data: Float32Array }, i: number): Planar {
  const [, C, H, W] = b.shape;
  return { data: b.data.slice(i * C * H * W, (i + 1) * C * H * W), channels: C, height: H, width: W };
}

test('open: lists images, skips corrupt and too-small files with warnings', async () => {
  const ds = await ImageFolderDataset.open(train, { scale: 4, patchSize: 32, onWarning: (m) => warnings.push(m) });
  assert.deepEqual(ds.names, ['a.png', 'b.jpg', 'c.webp']);
  assert.equal(ds.length, 3);
  assert.equal(ds.skipped, 2);
  assert.equal(warnings.length, 2);
  assert.ok(warnings.some((w) => /corrupt\.png/.test(w) && /Cannot read image/.test(w)));
  assert.ok(warnings.some((w) => /tiny\.png/.test(w) && /10×10 is smaller than the minimum 32×32/.test(w)));
  // minSize raises the bar.
  const w2: string[] = [];
  const big = await ImageFolderDataset.open(train, { scale: 4, patchSize: 32, minSize: 45, onWarning: (m) => w2.push(m) });
  assert.deepEqual(big.names, ['c.webp']);
  assert.equal(big.skipped, 4);
  assert.ok(w2.some((m) => /b\.jpg: 64×40 is smaller than the minimum 45×45/.test(m)));
});

test('open: empty, missing and all-skipped folders throw naming the folder', async () => {
  const empty = join(root, 'empty');
  mkdirSync(empty);
  writeFileSync(join(empty, 'readme.md'), 'x');
  await assert.rejects(ImageFolderDataset.open(empty, { scale: 4, patchSize: 32 }), new RegExp(`Cannot open dataset folder ${empty}: no images found`));
  await assert.rejects(ImageFolderDataset.open(join(root, 'nope'), { scale: 4, patchSize: 32 }), /Cannot open dataset folder .*nope: folder not found/);
  const small = join(root, 'small');
  mkdirSync(small);
  await writeRaw(join(small, 's.png'), randomU8(8 * 8 * 3, 6), 8, 8);
  await assert.rejects(ImageFolderDataset.open(small, { scale: 4, patchSize: 32 }), /Cannot open dataset folder .*small: no usable images, all 1 were skipped/);
  await assert.rejects(ImageFolderDataset.open(train, { scale: 4, patchSize: 30 }), /Expected a multiple of scale 4 for patchSize but received 30/);
});

test('sampleBatch: shapes, determinism for a seed, LR = 8-bit MATLAB bicubic of the HR patch', async () => {
  const ds = await ImageFolderDataset.open(train, { scale: 4, patchSize: 32, augment: { flip: true, rot90: true } });
  const r1 = new Rng(42);
  const b1 = ds.sampleBatch(5, r1.next);
  assert.deepEqual(b1.hr.shape, [5, 3, 32, 32]);
  assert.deepEqual(b1.lr.shape, [5, 3, 8, 8]);
  const b2 = ds.sampleBatch(5, new Rng(42).next);
  assert.deepEqual(b2.hr.data, b1.hr.data);
  assert.deepEqual(b2.lr.data, b1.lr.data);
  const b3 = ds.sampleBatch(5, new Rng(43).next);
  assert.notDeepEqual(b3.hr.data, b1.hr.data);
  for (let i = 0; i < 5; i++) {
    const hr = patch(b1.hr, i);
    for (const v of hr.data) assert.ok(Number.isInteger(Math.round(v * 255 * 1e4) / 1e4));
    assert.deepEqual(patch(b1.lr, i).data, imresize(hr, 1 / 4, { uint8: true }).data);
  }
  // Resuming from a saved state continues the same stream.
  const r = new Rng(7);
  ds.sampleBatch(3, r.next);
  const saved = JSON.parse(JSON.stringify(r.state()));
  const next = ds.sampleBatch(4, r.next);
  const r2 = new Rng(0);
  r2.setState(saved);
  assert.deepEqual(ds.sampleBatch(4, r2.next).hr.data, next.hr.data);
  // Not cached: same stream, same batch.
  const lazy = await ImageFolderDataset.open(train, { scale: 4, patchSize: 32, augment: { flip: true, rot90: true }, cacheInMemory: false });
  const bl = await lazy.sampleBatchAsync(5, new Rng(42).next);
  assert.deepEqual(bl.hr.data, b1.hr.data);
  assert.deepEqual(bl.lr.data, b1.lr.data);
  assert.throws(() => lazy.sampleBatch(1, Math.random), /cacheInMemory/);
});

test('flips and rotations preserve content and reach all 8 orientations', async () => {
  const dir = join(root, 'one');
  mkdirSync(dir);
  const raw = randomU8(16 * 16 * 3, 11);
  await writeRaw(join(dir, 'x.png'), raw, 16, 16);
  const ds = await ImageFolderDataset.open(dir, { scale: 2, patchSize: 16, augment: { flip: true, rot90: true } });
  const sortedPlanes = (d: ArrayLike<number>, n: number) =>
    [0, 1, 2].map((c) => Array.from({ length: n }, (_, i) => Math.round(d[c * n + i] * 255)).sort((p, q) => p - q));
  const orig: number[] = [];
  for (let c = 0; c < 3; c++) for (let i = 0; i < 256; i++) orig.push(raw[i * 3 + c] / 255);
  const want = sortedPlanes(orig, 256);
  const seen = new Set<string>();
  const b = ds.sampleBatch(64, mulberry32(5));
  for (let i = 0; i < 64; i++) {
    const p = patch(b.hr, i);
    assert.deepEqual(sortedPlanes(p.data, 256), want);
    seen.add(Array.from(p.data.subarray(0, 256), (v) => Math.round(v * 255)).join(','));
    assert.deepEqual(patch(b.lr, i).data, imresize(p, 1 / 2, { uint8: true }).data);
  }
  assert.equal(seen.size, 8);
  // Without augmentation the patch is the image itself.
  const plain = await ImageFolderDataset.open(dir, { scale: 2, patchSize: 16 });
  const pb = plain.sampleBatch(1, mulberry32(1));
  assert.deepEqual(
    Array.from(pb.hr.data, (v) => Math.round(v * 255)),
    orig.map((v) => Math.round(v * 255)),
  );
});

test('paired LR folder: crops aligned to the scale, same augmentation on both', async () => {
  const hrDir = join(root, 'pair-hr');
  const lrDir = join(root, 'pair-lr');
  mkdirSync(hrDir);
  mkdirSync(lrDir);
  const s = 4;
  const W = 44;
  const H = 36;
  const raw = randomU8(W * H * 3, 21);
  await writeRaw(join(hrDir, 'p.png'), raw, W, H);
  // LR = rounded 4×4 block means, so a correctly aligned, identically augmented LR patch is the
  // block mean of the HR patch.
  const lw = W / s;
  const lh = H / s;
  const lr = new Uint8Array(lw * lh * 3);
  for (let y = 0; y < lh; y++)
    for (let x = 0; x < lw; x++)
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) sum += raw[((y * s + i) * W + x * s + j) * 3 + c];
        lr[(y * lw + x) * 3 + c] = Math.round(sum / 16);
      }
  await writeRaw(join(lrDir, 'px4.png'), lr, lw, lh);
  const ds = await ImageFolderDataset.open(hrDir, { scale: s, patchSize: 16, lrDir, augment: { flip: true, rot90: true } });
  const b = ds.sampleBatch(20, new Rng(3).next);
  for (let n = 0; n < 20; n++) {
    const hp = patch(b.hr, n);
    const lp = patch(b.lr, n);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 4; y++)
        for (let x = 0; x < 4; x++) {
          let sum = 0;
          for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) sum += Math.round(hp.data[(c * 16 + y * s + i) * 16 + x * s + j] * 255);
          assert.equal(Math.round(lp.data[(c * 4 + y) * 4 + x] * 255), Math.round(sum / 16));
        }
  }
  // A missing pair is skipped with a warning.
  await writeRaw(join(hrDir, 'q.png'), randomU8(W * H * 3, 22), W, H);
  const w: string[] = [];
  const ds2 = await ImageFolderDataset.open(hrDir, { scale: s, patchSize: 16, lrDir, onWarning: (m) => w.push(m) });
  assert.equal(ds2.length, 1);
  assert.equal(ds2.skipped, 1);
  assert.match(w[0], /q\.png: no LR image/);
});

test('Rng: seeded, saveable, splittable; mulberry32 is deterministic', () => {
  const a = new Rng(123);
  const b = new Rng(123);
  const xs = Array.from({ length: 10 }, a.next);
  assert.deepEqual(Array.from({ length: 10 }, b.next), xs);
  for (const x of xs) assert.ok(x >= 0 && x < 1);
  assert.notDeepEqual(Array.from({ length: 10 }, new Rng(124).next), xs);
  const st = a.state();
  const more = [a.next(), a.next()];
  const c = new Rng();
  c.setState(st);
  assert.deepEqual([c.next(), c.next()], more);
  const child = a.split();
  assert.notDeepEqual([child.next(), child.next()], [a.next(), a.next()]);
  assert.throws(() => c.setState([1, 2]), /four uint32/);
  const m1 = mulberry32(9);
  const m2 = mulberry32(9);
  assert.equal(m1(), m2());
  // Roughly uniform.
  const r = new Rng('seed');
  let mean = 0;
  for (let i = 0; i < 10000; i++) mean += r.next();
  assert.ok(Math.abs(mean / 10000 - 0.5) < 0.02);
});

test('loadValidationSet: centre crops, modcrop, LR by 8-bit MATLAB bicubic', async () => {
  const dir = join(root, 'val');
  mkdirSync(dir);
  const W = 30;
  const H = 22;
  const raw = randomU8(W * H * 3, 31);
  await writeRaw(join(dir, 'v1.png'), raw, W, H);
  await writeRaw(join(dir, 'v2.png'), randomU8(40 * 40 * 3, 32), 40, 40);
  const set = await loadValidationSet(dir, { scale: 4, crop: 16 });
  assert.deepEqual(
    set.map((v) => v.name),
    ['v1', 'v2'],
  );
  const v1 = set[0];
  assert.equal(v1.hr.width, 16);
  assert.equal(v1.hr.height, 16);
  const top = 3;
  const left = 7;
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < 16; y++)
      for (let x = 0; x < 16; x++) {
        assert.equal(Math.round(v1.hr.data[(c * 16 + y) * 16 + x] * 255), raw[((top + y) * W + left + x) * 3 + c]);
      }
  assert.deepEqual(v1.lr.data, imresize(v1.hr, 1 / 4, { uint8: true }).data);
  const mod = await loadValidationSet(dir, { scale: 4 });
  assert.equal(mod[0].hr.width, 28);
  assert.equal(mod[0].hr.height, 20);
  assert.equal(mod[0].lr.width, 7);
  assert.equal(mod[0].lr.height, 5);
  await assert.rejects(loadValidationSet(dir, { scale: 4, crop: 18 }), /Expected a multiple of scale 4 for crop but received 18/);
});

const VAL = '/work/shared/data/val';
test('shared validation photos load with 256×256 centre crops', { skip: !existsSync(VAL) }, async () => {
  const set = await loadValidationSet(VAL, { scale: 4, crop: 256 });
  assert.ok(set.length >= 1);
  for (const v of set) {
    assert.equal(v.hr.width, 256);
    assert.equal(v.hr.height, 256);
    assert.equal(v.lr.width, 64);
  }
  const first = await loadImage(join(VAL, `${set[0].name}.png`));
  assert.equal(first.bitDepth, 8);
});

test('open: several folders are pooled; synthetic patches replace a fraction, with LR = bicubic of the patch', async () => {
  const second = join(root, 'second');
  mkdirSync(second, { recursive: true });
  await writeRaw(join(second, 'z.png'), randomU8(48 * 48 * 3, 9), 48, 48);
  const ds = await ImageFolderDataset.open([train, second], { scale: 4, patchSize: 32 });
  assert.deepEqual(ds.names, ['a.png', 'b.jpg', 'c.webp', 'z.png']);
  assert.deepEqual(ds.dirs, [train, second]);
  await assert.rejects(ImageFolderDataset.open([], { scale: 4, patchSize: 32 }), /at least one folder/);
  await assert.rejects(ImageFolderDataset.open([train, join(root, 'nope')], { scale: 4, patchSize: 32 }), /nope: folder not found/);
  await assert.rejects(ImageFolderDataset.open(train, { scale: 4, patchSize: 32, synthetic: 1.5 }), /fraction in \[0, 1\] for synthetic/);

  // synthetic 1: every patch is synthetic (a photo patch of random noise is never flat; many synthetic ones are)
  const syn = await ImageFolderDataset.open(train, { scale: 4, patchSize: 32, synthetic: 1 });
  const b = syn.sampleBatch(16, new Rng(4).next);
  let flatPatches = 0;
  let crisp = 0;
  let bicubic = 0;
  for (let i = 0; i < 16; i++) {
    const hr = patch(b.hr, i);
    const lr = patch(b.lr, i);
    const enlarged = hr.data.every((v, k) => {
      const c = Math.floor(k / (32 * 32));
      const y = Math.floor((k % (32 * 32)) / 32);
      const x = k % 32;
      return v === lr.data[(c * 8 + Math.floor(y / 4)) * 8 + Math.floor(x / 4)];
    });
    if (enlarged)
      crisp++; // drawn crisp at LR size: HR = nearest enlargement of the LR
    else {
      assert.deepEqual(lr.data, imresize(hr, 1 / 4, { uint8: true }).data, `LR of patch ${i} is the bicubic of its HR`);
      bicubic++;
    }
    if (new Set(Array.from(hr.data.slice(0, 32 * 32))).size <= 2) flatPatches++;
  }
  assert.ok(flatPatches > 0, 'some synthetic patches are (nearly) flat');
  assert.ok(crisp > 0 && bicubic > 0, `${crisp} crisp-LR and ${bicubic} bicubic-LR patches`);
  // synthetic 0 keeps the photo stream exactly as before
  const plain = await ImageFolderDataset.open(train, { scale: 4, patchSize: 32 });
  const zero = await ImageFolderDataset.open(train, { scale: 4, patchSize: 32, synthetic: 0 });
  assert.deepEqual(zero.sampleBatch(3, new Rng(8).next).hr.data, plain.sampleBatch(3, new Rng(8).next).hr.data);
  // a fraction gives a mix, reproducibly
  const half = await ImageFolderDataset.open(train, { scale: 4, patchSize: 32, synthetic: 0.5 });
  assert.deepEqual(half.sampleBatch(6, new Rng(2).next).hr.data, half.sampleBatch(6, new Rng(2).next).hr.data);
});
