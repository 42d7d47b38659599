import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parsePth, readPth } from '../../src/io/pth.js';
import type { RawTensor } from '../../src/io/safetensors.js';
import {
  PickleBuilder,
  buildPth,
  buildPthRaw,
  concatChunks,
  writePth,
  zipChunks,
  buildLegacyPth,
  type PthStorage,
  type PthTensorRef,
} from '../helpers/pth-writer.js';

// When PTH_MEM_CHILD is set this file is the child process of the memory test: register no tests.
const CHILD = process.env.PTH_MEM_CHILD;
const it: typeof test = CHILD ? ((() => undefined) as unknown as typeof test) : test;

const FIXTURE = '/work/shared/fixtures/parity-4x/weights.pth';
const hasFixture = existsSync(FIXTURE);

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomTensor(shape: number[], r: () => number): RawTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (r() - 0.5) * 10;
  return { shape, data };
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.length);
  y.set(new Uint32Array(b.slice().buffer));
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function assertSameTensors(got: Map<string, RawTensor>, want: Map<string, RawTensor>): void {
  assert.deepEqual([...got.keys()], [...want.keys()]);
  for (const [k, w] of want) {
    const g = got.get(k)!;
    assert.deepEqual(g.shape, w.shape, k);
    assert.ok(sameBits(w.data.length ? new Float32Array(w.data) : w.data, g.data), `values of ${k}`);
  }
}

function f32bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

/** A minimal valid tensor pickle body: {'w': tensor(storage '0', 2 floats)} plus `extra` ops. */
function tensorPickle(p: PickleBuilder, key = 'w'): PickleBuilder {
  p.str(key).global('torch._utils', '_rebuild_tensor_v2');
  p.mark().mark().str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(2).tuple().binpersid();
  p.int(0).int(2).tuple(1).int(1).tuple(1).bool(false).emptyDict().tuple().reduce();
  return p;
}

// ---------------------------------------------------------------------------------------------
// (a) The published-format fixture.

it('fixture: loads with the published keys, shapes and values', { skip: !hasFixture && 'fixture missing' }, () => {
  const m = readPth(FIXTURE);
  assert.equal(m.size, 281);
  const keys = [...m.keys()];
  assert.equal(keys[0], 'RRDB.conv_first.weight');
  assert.equal(keys[1], 'RRDB.conv_first.bias');
  assert.equal(keys[keys.length - 1], 'flowUpsamplerNet.f.0.bias');
  assert.deepEqual(m.get('RRDB.conv_first.weight')!.shape, [64, 3, 3, 3]);
  assert.deepEqual(m.get('flowUpsamplerNet.layers.3.affine.fAffine.0.weight')!.shape, [64, 326, 3, 3]);
  assert.deepEqual(m.get('flowUpsamplerNet.f.0.weight')!.shape, [96, 320, 3, 3]);
  assert.deepEqual(m.get('flowUpsamplerNet.layers.3.actnorm.bias')!.shape.length, 4);
  // Inside `affine`, fAffine comes before fFeatures (state_dict order is preserved).
  assert.ok(keys.indexOf('flowUpsamplerNet.layers.3.affine.fAffine.0.weight') < keys.indexOf('flowUpsamplerNet.layers.3.affine.fFeatures.0.weight'));
  // First values of RRDB.conv_first.weight (read independently from weights/data/0).
  assert.deepEqual([...m.get('RRDB.conv_first.weight')!.data.subarray(0, 3)], [-0.1812959760427475, -0.03775925934314728, -0.09243601560592651]);
  let total = 0;
  for (const [k, t] of m) {
    assert.equal(
      t.data.length,
      t.shape.reduce((a, b) => a * b, 1),
      k,
    );
    for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) assert.fail(`${k}[${i}] is ${t.data[i]}`);
    total += t.data.length;
  }
  assert.equal(total, 6144851); // = sum of the storage sizes in the archive / 4
  // Each tensor is read straight into its own array: the file is never held whole in memory.
  for (const t of m.values()) assert.equal(t.data.buffer.byteLength, t.data.byteLength);
});

// ---------------------------------------------------------------------------------------------
// (b) Round trips through the test writer.

function sampleTensors(): Map<string, RawTensor> {
  const r = rng(7);
  const m = new Map<string, RawTensor>();
  m.set('conv.weight', randomTensor([7, 5, 3, 3], r));
  m.set('conv.bias', randomTensor([7], r));
  m.set('scalar', randomTensor([], r));
  m.set('empty', randomTensor([0], r));
  m.set('zero.mid', randomTensor([2, 0, 3], r));
  m.set('ones', randomTensor([1, 1, 1, 1], r));
  m.set('big.dims', randomTensor([70000, 2], r)); // BININT for large sizes
  m.set('unicode.é✓', randomTensor([3, 1], r));
  const special = new Float32Array([NaN, Infinity, -Infinity, -0, 0, 1e-45, 3.4028234663852886e38]);
  m.set('special', { shape: [7], data: special });
  for (let i = 0; i < 300; i++) m.set(`many.${i}`, randomTensor([1 + (i % 4), 2], r)); // > 256 memo entries
  return m;
}

it('round trip: odd shapes, zero-size dims, scalars, special values, >256 entries', () => {
  const want = sampleTensors();
  const buf = buildPth(want);
  const got = parsePth(buf, 'roundtrip.pth');
  assertSameTensors(got, want);
  // Contiguous float32 tensors alias the input buffer.
  assert.equal(got.get('conv.weight')!.data.buffer, buf.buffer);
});

it('round trip: writer variants (folder, protocol 4, plain dict, DEFLATE, forced ZIP64, big-endian, wrapped)', () => {
  const want = sampleTensors();
  const variants = [
    { folder: 'weights' },
    { folder: 'some model_v2' },
    { protocol: 4 as const },
    { plainDict: true },
    { deflate: true },
    { forceZip64: true },
    { byteorder: 'little' as const },
    { byteorder: 'big' as const },
    { wrap: 'state_dict' },
    { wrap: 'params', protocol: 4 as const, deflate: true, forceZip64: true },
  ];
  for (const v of variants) {
    const got = parsePth(buildPth(want, v), `variant ${JSON.stringify(v)}`);
    assertSameTensors(got, want);
  }
});

it('readPth reads a file written by the writer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pth-'));
  try {
    const want = sampleTensors();
    const p = join(dir, 'w.pth');
    writePth(p, want);
    assertSameTensors(readPth(p), want);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('misaligned buffer: tensors are copied, values intact', () => {
  const want = sampleTensors();
  const buf = buildPth(want);
  const shifted = new Uint8Array(buf.byteLength + 1);
  shifted.set(buf, 1);
  const got = parsePth(shifted.subarray(1), 'misaligned.pth');
  assertSameTensors(got, want);
  assert.notEqual(got.get('conv.weight')!.data.buffer, shifted.buffer);
});

it('strides, storage offsets and shared storages', () => {
  const base = Array.from({ length: 12 }, (_, i) => i);
  const storages = new Map<string, PthStorage>([
    ['s', { dtype: 'float32', bytes: f32bytes(base) }],
    ['own', { dtype: 'float32', bytes: f32bytes([1, 2, 3, 4, 5, 6]) }],
    ['own64', { dtype: 'float64', bytes: new Uint8Array(new Float64Array([0.5, -1.25, 1e300, 3]).buffer) }],
  ]);
  const tensors = new Map<string, PthTensorRef>([
    ['full', { storage: 's', offset: 0, shape: [3, 4], stride: [4, 1] }],
    ['transposed', { storage: 's', offset: 0, shape: [4, 3], stride: [1, 4] }],
    ['window', { storage: 's', offset: 5, shape: [2, 2], stride: [4, 1] }],
    ['expanded', { storage: 's', offset: 2, shape: [3, 2], stride: [0, 1] }],
    ['tail', { storage: 's', offset: 8, shape: [4], stride: [1] }],
    ['every_other', { storage: 's', offset: 1, shape: [2, 3], stride: [6, 2] }],
    ['own', { storage: 'own', offset: 0, shape: [2, 3], stride: [3, 1] }],
    ['col_of_own64', { storage: 'own64', offset: 1, shape: [2], stride: [2] }],
  ]);
  for (const protocol of [2, 4] as const) {
    const buf = buildPthRaw(storages, tensors, { protocol });
    const m = parsePth(buf, 'strided.pth');
    const v = (k: string) => [...m.get(k)!.data];
    assert.deepEqual(v('full'), base);
    assert.deepEqual(m.get('transposed')!.shape, [4, 3]);
    assert.deepEqual(v('transposed'), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    assert.deepEqual(v('window'), [5, 6, 9, 10]);
    assert.deepEqual(v('expanded'), [2, 3, 2, 3, 2, 3]);
    assert.deepEqual(v('tail'), [8, 9, 10, 11]);
    assert.deepEqual(v('every_other'), [1, 3, 5, 7, 9, 11]);
    assert.deepEqual(v('own'), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(v('col_of_own64'), [-1.25, 3]);
    // A storage used by several tensors: each gets its own copy (in-place updates stay separate).
    m.get('full')!.data[8] = 100;
    assert.equal(m.get('tail')!.data[0], 8);
    // A storage owned by one contiguous float32 tensor is aliased, not copied.
    assert.equal(m.get('own')!.data.buffer, buf.buffer);
  }
});

it('dtypes: float64, float16, bfloat16 and integer/bool storages become float32', () => {
  const half = new Uint16Array([0x3c00, 0xc000, 0x3555, 0x7c00, 0x0001, 0x0000, 0x8000]); // 1, -2, ~0.333, inf, 2^-24, 0, -0
  const bf = new Uint16Array([0x3f80, 0xc040, 0x4049]); // 1, -3, 3.140625
  const storages = new Map<string, PthStorage>([
    ['d', { dtype: 'float64', bytes: new Uint8Array(new Float64Array([1.5, -2.25, 1e-3]).buffer) }],
    ['h', { dtype: 'float16', bytes: new Uint8Array(half.buffer) }],
    ['b', { dtype: 'bfloat16', bytes: new Uint8Array(bf.buffer) }],
    ['l', { dtype: 'int64', bytes: new Uint8Array(new BigInt64Array([5n, -7n]).buffer) }],
    ['i', { dtype: 'int32', bytes: new Uint8Array(new Int32Array([-3, 4]).buffer) }],
    ['u', { dtype: 'uint8', bytes: new Uint8Array([0, 255]) }],
    ['z', { dtype: 'bool', bytes: new Uint8Array([1, 0, 1]) }],
  ]);
  const t = (storage: string, n: number): PthTensorRef => ({ storage, offset: 0, shape: [n], stride: [1] });
  const tensors = new Map<string, PthTensorRef>([
    ['d', t('d', 3)],
    ['h', t('h', 7)],
    ['b', t('b', 3)],
    ['bn.num_batches_tracked', { storage: 'l', offset: 1, shape: [], stride: [] }],
    ['l', t('l', 2)],
    ['i', t('i', 2)],
    ['u', t('u', 2)],
    ['z', t('z', 3)],
  ]);
  for (const byteorder of ['little', 'big'] as const) {
    const m = parsePth(buildPthRaw(storages, tensors, { byteorder }), 'dtypes.pth');
    const v = (k: string) => [...m.get(k)!.data];
    assert.deepEqual(v('d'), [1.5, -2.25, Math.fround(1e-3)]);
    assert.deepEqual(v('h'), [1, -2, Math.fround((0x155 / 1024) * 0.25 + 0.25), Infinity, 2 ** -24, 0, -0]);
    assert.deepEqual(v('b'), [1, -3, 3.140625]);
    assert.deepEqual(v('bn.num_batches_tracked'), [-7]);
    assert.deepEqual(m.get('bn.num_batches_tracked')!.shape, []);
    assert.deepEqual(v('l'), [5, -7]);
    assert.deepEqual(v('i'), [-3, 4]);
    assert.deepEqual(v('u'), [0, 255]);
    assert.deepEqual(v('z'), [1, 0, 1]);
  }
});

it('pickle opcodes beyond the usual: non-tensor values are parsed and ignored', () => {
  for (const protocol of [2, 4] as const) {
    const p = new PickleBuilder(protocol).proto().emptyDict().mark();
    tensorPickle(p);
    p.str('meta').byte(0x5d).mark(); // EMPTY_LIST, MARK
    p.byte(0x47).raw(new Uint8Array([0x3f, 0xf8, 0, 0, 0, 0, 0, 0])); // BINFLOAT 1.5
    p.int(-300000000000); // LONG1
    p.byte(0x8d)
      .raw(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]))
      .raw('x'); // BINUNICODE8
    p.byte(0x56).raw('caf\\u00e9\n'); // UNICODE
    p.bool(true).none();
    p.byte(0x8f).mark().int(1).int(2).byte(0x90); // EMPTY_SET, ADDITEMS
    p.byte(0x43, 2).raw('ab'); // SHORT_BINBYTES
    p.byte(0x65); // APPENDS
    p.str('epoch').int(12);
    p.setitems().stop();
    const storages = new Map<string, PthStorage>([['0', { dtype: 'float32', bytes: f32bytes([3, 4]) }]]);
    const m = parsePth(buildPthRaw(storages, new Map(), { pickle: p.bytes(), protocol }), 'extras.pth');
    assert.deepEqual([...m.keys()], ['w']);
    assert.deepEqual([...m.get('w')!.data], [3, 4]);
  }
});

it('nested containers: one is unwrapped, several need the entry option', () => {
  const want = sampleTensors();
  const p = new PickleBuilder(2).proto().emptyDict().mark();
  tensorPickle(p.str('params').emptyDict().mark(), 'a').setitems();
  tensorPickle(p.str('params_ema').emptyDict().mark(), 'b').setitems();
  p.setitems().stop();
  const storages = new Map<string, PthStorage>([['0', { dtype: 'float32', bytes: f32bytes([3, 4]) }]]);
  const buf = buildPthRaw(storages, new Map(), { pickle: p.bytes() });
  assert.throws(() => parsePth(buf, 'two.pth'), /two\.pth.*several dicts of tensors \(params, params_ema\)/);
  assert.deepEqual([...parsePth(buf, 'two.pth', { entry: 'params_ema' }).keys()], ['b']);
  assertSameTensors(parsePth(buildPth(want, { wrap: 'state_dict' }), 'wrapped.pth'), want);
});

// ---------------------------------------------------------------------------------------------
// (c) Malicious pickles.

it('malicious pickles are refused, naming the global, and nothing runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pth-evil-'));
  try {
    const marker = join(dir, 'pwned');
    const storages = new Map<string, PthStorage>([['0', { dtype: 'float32', bytes: f32bytes([3, 4]) }]]);
    const load = (pickle: Uint8Array) => parsePth(buildPthRaw(storages, new Map(), { pickle }), 'evil.pth');
    const cases: Array<[string, string, number]> = [
      ['os', 'system', 2],
      ['posix', 'system', 4],
      ['builtins', 'eval', 2],
      ['builtins', 'exec', 4],
      ['subprocess', 'Popen', 2],
      ['torch', 'load', 2],
      ['torch.storage', '_load_from_bytes', 2],
    ];
    for (const [mod, name, protocol] of cases) {
      const p = new PickleBuilder(protocol as 2 | 4).proto().global(mod, name).str(`touch ${marker}`).tuple(1).reduce().stop();
      assert.throws(
        () => load(p.bytes()),
        (e: Error) => {
          assert.match(
            e.message,
            new RegExp(`^Refusing to load evil\\.pth: the pickle references ${mod.replace('.', '\\.')}\\.${name}, which a state_dict never needs`),
          );
          assert.match(e.message, /nothing is executed/);
          return true;
        },
      );
    }
    // A forbidden global hidden inside an otherwise normal state_dict (as the storage type).
    const p = new PickleBuilder(2).proto().emptyDict().mark().str('w').global('torch._utils', '_rebuild_tensor_v2');
    p.mark().mark().str('storage').global('os', 'system').str('0').str('cpu').int(2).tuple().binpersid();
    assert.throws(() => load(p.bytes()), /references os\.system/);
    // Unknown / unsupported opcodes name the byte.
    assert.throws(() => load(new Uint8Array([0x80, 2, 0xff, 0x2e])), /evil\.pth.*opcode 0xff at byte 2/);
    assert.throws(() => load(new Uint8Array(Buffer.from('\x80\x02(ios\nsystem\n.', 'latin1'))), /opcode 0x69 'i' \(INST\) at byte 3/);
    assert.throws(
      () => load(new PickleBuilder(2).proto().global('collections', 'OrderedDict').emptyTuple().byte(0x81).stop().bytes()),
      /opcode 0x81 \(NEWOBJ\)/,
    );
    // Allowed globals used in odd ways are still errors, not calls.
    assert.throws(
      () => load(new PickleBuilder(2).proto().global('torch', 'FloatStorage').emptyTuple().reduce().stop().bytes()),
      /unsupported call of torch\.FloatStorage/,
    );
    // Structural garbage.
    assert.throws(() => load(new Uint8Array([0x80, 2, 0x7d])), /evil\.pth: malformed pickle.*without STOP/);
    assert.throws(() => load(new Uint8Array([0x80, 2, 0x30, 0x2e])), /stack underflow/);
    assert.throws(() => load(new Uint8Array([0x80, 2, 0x68, 9, 0x2e])), /memo entry 9/);
    assert.throws(() => load(new Uint8Array([0x80, 2, 0x58, 0xff, 0xff, 0xff, 0x7f])), /needs .* more bytes/);
    assert.throws(() => load(new Uint8Array([0x80, 2, 0x5d, 0x2e])), /holds a list, not a dict/);
    assert.equal(existsSync(marker), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('legacy format (torch.save before 1.6): the same tensors, from a file and from memory', () => {
  const want = sampleTensors();
  const buf = buildLegacyPth(want);
  assertSameTensors(parsePth(buf, 'legacy.pth'), want);
  const dir = mkdtempSync(join(tmpdir(), 'pth-legacy-'));
  try {
    const p = join(dir, 'legacy.pth');
    writeFileSync(p, buf);
    assertSameTensors(readPth(p), want);
    writeFileSync(p, buf.subarray(0, buf.length - 7));
    assert.throws(() => readPth(p), /legacy\.pth: legacy-format \(pre-1\.6 torch\.save\) checkpoint is truncated: storage \d+ needs bytes up to/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// (d) Broken files.

it('broken files give clear errors naming the file', { skip: !hasFixture && 'fixture missing' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pth-bad-'));
  try {
    const orig = readFileSync(FIXTURE);
    const write = (name: string, data: Uint8Array | string) => {
      const p = join(dir, name);
      writeFileSync(p, data);
      return p;
    };
    const expectError = (p: string, re: RegExp) =>
      assert.throws(
        () => readPth(p),
        (e: Error) => {
          assert.ok(e.message.includes(p), `message names the file: ${e.message}`);
          assert.match(e.message, re);
          return true;
        },
      );
    expectError(write('half.pth', orig.subarray(0, orig.length >> 1)), /truncated/);
    expectError(write('short.pth', orig.subarray(0, orig.length - 10)), /truncated/);
    expectError(write('tiny.pth', orig.subarray(0, 100)), /truncated/);
    expectError(write('empty.pth', new Uint8Array(0)), /is empty/);
    const r = rng(3);
    expectError(
      write(
        'random.pth',
        Uint8Array.from({ length: 4096 }, () => Math.floor(r() * 256)),
      ),
      /not a zip archive/,
    );
    expectError(write('text.pth', 'hello, I am not a checkpoint\n'), /not a zip archive.*text file/);
    expectError(write('image.pth', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])), /not a zip archive.*PNG/);
    expectError(write('legacy.pth', new Uint8Array([0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e])), /legacy/);
    // A flipped byte inside a storage is caught by the CRC (where Node has zlib.crc32).
    const flipped = new Uint8Array(orig);
    flipped[50000] ^= 0x40;
    expectError(write('flipped.pth', flipped), /corrupt|CRC/);
    // A zip that is not a checkpoint.
    expectError(write('other.zip', concatChunks(zipChunks([{ name: 'a/readme.txt', data: new Uint8Array([65]) }]))), /no <folder>\/data\.pkl/);
    assert.throws(() => readPth(join(dir, 'missing.pth')), /ENOENT.*missing\.pth/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('missing storage entry and tensors larger than their storage', () => {
  const storages = new Map<string, PthStorage>([
    ['0', { dtype: 'float32', bytes: f32bytes([1, 2, 3, 4, 5]) }],
    ['1', { dtype: 'float16', bytes: new Uint8Array(6) }],
  ]);
  const ok = new Map<string, PthTensorRef>([['a', { storage: '0', offset: 0, shape: [5], stride: [1] }]]);
  assert.throws(
    () => parsePth(buildPthRaw(storages, ok, { omitStorages: ['0'] }), 'gone.pth'),
    /gone\.pth: tensor a needs storage archive\/data\/0, which the archive lacks/,
  );
  const cases: Array<[PthTensorRef, RegExp]> = [
    [{ storage: '0', offset: 0, shape: [2, 3], stride: [3, 1] }, /tensor big \(shape \[2,3\].*needs 6 elements but its storage data\/0 holds only 5/],
    [{ storage: '0', offset: 3, shape: [3], stride: [1] }, /needs 6 elements/],
    [{ storage: '0', offset: 0, shape: [3, 2], stride: [1, 3] }, /needs 6 elements/],
    [{ storage: '1', offset: 0, shape: [4], stride: [1] }, /float16\) needs 4 elements but its storage data\/1 holds only 3/],
  ];
  for (const [ref, re] of cases) {
    const buf = buildPthRaw(storages, new Map([['big', ref]]));
    assert.throws(
      () => parsePth(buf, 'small.pth'),
      (e: Error) => (assert.match(e.message, /^small\.pth: /), assert.match(e.message, re), true),
    );
  }
  // A zero-size tensor never needs storage.
  assert.deepEqual(
    parsePth(buildPthRaw(storages, new Map([['e', { storage: '0', offset: 99, shape: [0, 4], stride: [4, 1] }]])), 'z.pth').get('e')!.data.length,
    0,
  );
});

// ---------------------------------------------------------------------------------------------
// (e) A published-size checkpoint: speed and memory, measured in a child process.

/** Shapes like the published SRFlow DF2K 4x model (RRDB nb=23 + flow L=3, K=16), padded to ~150 MB. */
function publishedLikeShapes(targetFloats: number): Array<[string, number[]]> {
  const out: Array<[string, number[]]> = [];
  const conv = (name: string, o: number, i: number, k: number, bias = true) => {
    out.push([`${name}.weight`, [o, i, k, k]]);
    if (bias) out.push([`${name}.bias`, [o]]);
  };
  conv('RRDB.conv_first', 64, 3, 3);
  for (let b = 0; b < 23; b++)
    for (let r = 1; r <= 3; r++) for (let c = 1; c <= 5; c++) conv(`RRDB.RRDB_trunk.${b}.RDB${r}.conv${c}`, c === 5 ? 64 : 32, 64 + 32 * (c - 1), 3);
  for (const n of ['trunk_conv', 'upconv1', 'upconv2', 'HRconv']) conv(`RRDB.${n}`, 64, 64, 3);
  conv('RRDB.conv_last', 3, 64, 3);
  let total = out.reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
  const an = (name: string, c: number) => out.push([`${name}.bias`, [1, c, 1, 1]], [`${name}.logs`, [1, c, 1, 1]]);
  let layer = 0;
  for (let level = 0; total < targetFloats; level = Math.min(level + 1, 2)) {
    const C = 12 * 2 ** level;
    for (let k = 0; k < 16 && total < targetFloats; k++) {
      const start = out.length;
      const L = `flowUpsamplerNet.layers.${layer++}`;
      an(`${L}.actnorm`, C);
      out.push([`${L}.invconv.weight`, [C, C]]);
      for (const [sub, inC, outC] of [
        ['fAffine', C / 2 + 320, C],
        ['fFeatures', 320, 2 * C],
      ] as const) {
        conv(`${L}.affine.${sub}.0`, 64, inC, 3, false);
        an(`${L}.affine.${sub}.0.actnorm`, 64);
        conv(`${L}.affine.${sub}.2`, 64, 64, 1, false);
        an(`${L}.affine.${sub}.2.actnorm`, 64);
        conv(`${L}.affine.${sub}.4`, outC, 64, 3);
        out.push([`${L}.affine.${sub}.4.logs`, [outC, 1, 1]]);
      }
      for (let i = start; i < out.length; i++) total += out[i][1].reduce((x, y) => x * y, 1);
    }
  }
  out.push(['flowUpsamplerNet.f.0.weight', [96, 320, 3, 3]], ['flowUpsamplerNet.f.0.bias', [96]]);
  return out;
}

interface ChildReport {
  ms: number;
  rssBefore: number;
  rssAfter: number;
  maxRss: number;
  count: number;
  floats: number;
  checksum: number;
}

function checksum(m: Map<string, RawTensor>): number {
  let s = 0;
  for (const t of m.values()) for (let i = 0; i < t.data.length; i += 97) s += t.data[i];
  return s;
}

if (CHILD) {
  // Child: load the file named in the environment and report time and memory.
  (globalThis as { gc?: () => void }).gc?.();
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const m = readPth(CHILD);
  const ms = performance.now() - t0;
  const rssAfter = process.memoryUsage().rss;
  const maxRss = process.resourceUsage().maxRSS * 1024;
  let floats = 0;
  for (const t of m.values()) floats += t.data.length;
  const report: ChildReport = { ms, rssBefore, rssAfter, maxRss, count: m.size, floats, checksum: checksum(m) };
  process.stdout.write(`PTH_REPORT ${JSON.stringify(report)}\n`);
} else {
  // load time is measured by `srflow bench load FILE` (docs/PERFORMANCE.md), not asserted here
  it('a ~150 MB published-size checkpoint loads with < 2x its size in extra memory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pth-big-'));
    try {
      const shapes = publishedLikeShapes(37_500_000);
      const r = rng(11);
      const tensors = new Map<string, RawTensor>();
      let floats = 0;
      for (const [name, shape] of shapes) {
        const t = randomTensor(shape, r);
        tensors.set(name, t);
        floats += t.data.length;
      }
      const file = join(dir, 'SRFlow_DF2K_4X_like.pth');
      writePth(file, tensors);
      const size = statSync(file).size;
      assert.ok(size > 145e6 && size < 170e6, `file is ${size} bytes`);
      const want = checksum(tensors);
      tensors.clear();
      const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url)], {
        env: { ...process.env, PTH_MEM_CHILD: file },
        encoding: 'utf8',
        timeout: 120_000,
      });
      const line = child.stdout.split('\n').find((l) => l.startsWith('PTH_REPORT '));
      assert.ok(line, `child failed: ${child.stderr}`);
      const rep = JSON.parse(line.slice('PTH_REPORT '.length)) as ChildReport;
      const extra = rep.rssAfter - rep.rssBefore;
      const peak = rep.maxRss - rep.rssBefore;
      console.log(
        `150MB case: ${shapes.length} tensors, ${(size / 1e6).toFixed(1)} MB, load ${rep.ms.toFixed(0)} ms, ` +
          `extra RSS ${(extra / 1e6).toFixed(1)} MB (${(extra / size).toFixed(2)}x), peak extra ${(peak / 1e6).toFixed(1)} MB (${(peak / size).toFixed(2)}x)`,
      );
      assert.equal(rep.count, shapes.length);
      assert.equal(rep.floats, floats);
      assert.equal(rep.checksum, want);
      assert.ok(extra < 2 * size, `extra RSS ${extra} >= 2x ${size}`);
      assert.ok(peak < 2 * size, `peak extra RSS ${peak} >= 2x ${size}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
