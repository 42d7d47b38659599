/**
 * Test-only writer of PyTorch-format checkpoints (what `torch.save(state_dict)` produces): a zip
 * archive of STORED entries whose data records are 64-byte aligned through a local-header extra
 * field ('FB' padding, as torch does), general-purpose flags 0x0808 with data descriptors, ZIP64
 * end records, and a protocol-2 pickle (OrderedDict + `_rebuild_tensor_v2` + BINPERSID). Options
 * cover the variants readers must accept (folder name, protocol 4, DEFLATE, forced ZIP64 fields,
 * big-endian byteorder, other dtypes, shared storages, strides) and raw pickle injection.
 */
import * as zlib from 'node:zlib';
import type { RawTensor } from '../../src/io/safetensors.js';
import { writeFileAtomic } from '../../src/io/safetensors.js';

// ---------------------------------------------------------------------------------------------
// Pickle builder.

export class PickleBuilder {
  private parts: number[] = [];
  private chunks: Uint8Array[] = [];
  private memoCount = 0;
  constructor(readonly protocol: 2 | 4 = 2) {}
  byte(...b: number[]): this {
    this.parts.push(...b);
    return this;
  }
  raw(bytes: Uint8Array | string): this {
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    for (const x of b) this.parts.push(x);
    return this;
  }
  private u32(v: number): this {
    return this.byte(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }
  proto(): this {
    return this.byte(0x80, this.protocol);
  }
  mark(): this {
    return this.byte(0x28);
  }
  stop(): this {
    return this.byte(0x2e);
  }
  emptyDict(): this {
    return this.byte(0x7d);
  }
  emptyTuple(): this {
    return this.byte(0x29);
  }
  tuple(n?: number): this {
    if (n === 1) return this.byte(0x85);
    if (n === 2) return this.byte(0x86);
    if (n === 3) return this.byte(0x87);
    return this.byte(0x74); // TUPLE (needs a MARK)
  }
  setitems(): this {
    return this.byte(0x75);
  }
  reduce(): this {
    return this.byte(0x52);
  }
  build(): this {
    return this.byte(0x62);
  }
  binpersid(): this {
    return this.byte(0x51);
  }
  bool(v: boolean): this {
    return this.byte(v ? 0x88 : 0x89);
  }
  none(): this {
    return this.byte(0x4e);
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    if (this.protocol >= 4 && b.length < 256) return this.byte(0x8c, b.length).raw(b);
    return this.byte(0x58).u32(b.length).raw(b);
  }
  int(v: number): this {
    if (v >= 0 && v < 256) return this.byte(0x4b, v);
    if (v >= 0 && v < 65536) return this.byte(0x4d, v & 0xff, v >> 8);
    if (v >= -(2 ** 31) && v < 2 ** 31) return this.byte(0x4a).u32(v >>> 0);
    // LONG1: little-endian two's complement.
    let b = BigInt(v);
    const out: number[] = [];
    for (;;) {
      out.push(Number(b & 0xffn));
      b >>= 8n;
      if ((b === 0n && !(out[out.length - 1] & 0x80)) || (b === -1n && out[out.length - 1] & 0x80)) break;
    }
    return this.byte(0x8a, out.length, ...out);
  }
  global(module: string, name: string): this {
    if (this.protocol >= 4) return this.str(module).str(name).byte(0x93);
    return this.byte(0x63).raw(`${module}\n${name}\n`);
  }
  /** Memoize the top of the stack; returns its memo index through `cb`. */
  put(cb?: (i: number) => void): this {
    const i = this.memoCount++;
    cb?.(i);
    if (this.protocol >= 4) return this.byte(0x94);
    if (i < 256) return this.byte(0x71, i);
    return this.byte(0x72).u32(i);
  }
  get(i: number): this {
    if (i < 256) return this.byte(0x68, i);
    return this.byte(0x6a).u32(i);
  }
  bytes(): Uint8Array {
    let body = Uint8Array.from(this.parts);
    if (this.protocol >= 4 && body.length > 2 && body[0] === 0x80) {
      // One FRAME after PROTO covering the rest, as Python's pickler does for protocol 4.
      const rest = body.subarray(2);
      const frame = new Uint8Array(2 + 9 + rest.length);
      frame.set(body.subarray(0, 2));
      frame[2] = 0x95;
      new DataView(frame.buffer).setBigUint64(3, BigInt(rest.length), true);
      frame.set(rest, 11);
      body = frame;
    }
    return body;
  }
}

// ---------------------------------------------------------------------------------------------
// State-dict pickles.

export type PthDtype = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'uint8' | 'bool';
const STORAGE_NAME: Record<PthDtype, string> = {
  float32: 'FloatStorage',
  float64: 'DoubleStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};
const DTYPE_SIZE: Record<PthDtype, number> = { float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, uint8: 1, bool: 1 };

export interface PthStorage {
  dtype: PthDtype;
  /** Raw little-endian bytes (numel = byteLength / element size). */
  bytes: Uint8Array;
}
export interface PthTensorRef {
  storage: string;
  offset: number;
  shape: number[];
  stride: number[];
}

export interface PthWriteOptions {
  /** Top-level folder inside the zip (torch's default is `archive`). */
  folder?: string;
  protocol?: 2 | 4;
  /** Plain dict instead of OrderedDict (+ `_metadata` BUILD). */
  plainDict?: boolean;
  /** Wrap the state dict as `{ [wrap]: state_dict }`. */
  wrap?: string;
  /** Use DEFLATE for every entry. */
  deflate?: boolean;
  /** Saturate sizes/offsets in the central directory and store them in ZIP64 extra fields. */
  forceZip64?: boolean;
  /** Write a `byteorder` entry; 'big' also byte-swaps every storage. */
  byteorder?: 'little' | 'big';
  /** Replace data.pkl with these bytes (malicious-pickle tests). */
  pickle?: Uint8Array;
  /** Leave out these storage keys from the archive. */
  omitStorages?: string[];
  /** Legacy persistent ids (a sixth element, the view metadata None), as torch < 1.6 wrote. */
  legacy?: boolean;
}

export function contiguousStride(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function stateDictPickle(storages: Map<string, PthStorage>, tensors: Map<string, PthTensorRef>, opts: PthWriteOptions = {}): Uint8Array {
  const p = new PickleBuilder(opts.protocol ?? 2);
  p.proto();
  if (opts.wrap !== undefined) p.emptyDict().put().str(opts.wrap);
  let odIdx = -1;
  if (opts.plainDict) p.emptyDict().put();
  else
    p.global('collections', 'OrderedDict')
      .put((i) => (odIdx = i))
      .emptyTuple()
      .reduce()
      .put();
  let rebuildIdx = -1;
  const storageTypeIdx = new Map<string, number>();
  p.mark();
  for (const [name, t] of tensors) {
    const s = storages.get(t.storage);
    if (!s) throw new Error(`writer: tensor ${name} references unknown storage ${t.storage}`);
    p.str(name).put();
    if (rebuildIdx < 0) p.global('torch._utils', '_rebuild_tensor_v2').put((i) => (rebuildIdx = i));
    else p.get(rebuildIdx);
    p.mark();
    // Persistent id: ('storage', storage_type, key, location, numel)
    p.mark().str('storage').put();
    const st = STORAGE_NAME[s.dtype];
    const si = storageTypeIdx.get(st);
    if (si === undefined) p.global('torch', st).put((i) => storageTypeIdx.set(st, i));
    else p.get(si);
    p.str(t.storage)
      .put()
      .str('cpu')
      .put()
      .int(s.bytes.byteLength / DTYPE_SIZE[s.dtype]);
    if (opts.legacy) p.none();
    p.tuple().put().binpersid();
    p.int(t.offset);
    intTuple(p, t.shape);
    intTuple(p, t.stride);
    p.bool(false);
    if (odIdx >= 0) p.get(odIdx);
    else p.global('collections', 'OrderedDict');
    p.emptyTuple().reduce().put();
    p.tuple().put().reduce().put();
  }
  p.setitems();
  if (!opts.plainDict) {
    // state_dict()._metadata, set through BUILD as torch does: {'_metadata': OrderedDict({'': {'version': 1}})}
    p.emptyDict().put().str('_metadata').put().get(odIdx).emptyTuple().reduce().put();
    p.str('').emptyDict().put().str('version').int(1).byte(0x73).byte(0x73); // SETITEM x2
    p.byte(0x73).build(); // SETITEM into the state dict, then BUILD
  }
  if (opts.wrap !== undefined) p.byte(0x73); // SETITEM into the wrapper
  p.stop();
  return p.bytes();
}

function intTuple(p: PickleBuilder, v: number[]): void {
  if (v.length >= 1 && v.length <= 3) {
    for (const x of v) p.int(x);
    p.tuple(v.length).put();
  } else if (v.length === 0) p.emptyTuple();
  else {
    p.mark();
    for (const x of v) p.int(x);
    p.tuple().put();
  }
}

// ---------------------------------------------------------------------------------------------
// Zip writer.

const crcTable = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
export function crc32(data: Uint8Array): number {
  const native = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
  if (native) return native(data) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface ZipInput {
  name: string;
  data: Uint8Array;
}

/** Build a torch-style zip as a list of chunks (large data is not copied). */
export function zipChunks(entries: ZipInput[], opts: { deflate?: boolean; forceZip64?: boolean } = {}): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let off = 0;
  const push = (c: Uint8Array) => {
    chunks.push(c);
    off += c.byteLength;
  };
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const method = opts.deflate ? 8 : 0;
    const payload = opts.deflate ? new Uint8Array(zlib.deflateRawSync(e.data)) : e.data;
    const crc = crc32(e.data);
    const headerOffset = off;
    // Local header: 30 bytes + name + 'FB' padding extra field so that the data is 64-aligned.
    const pad = (64 - ((off + 30 + name.length + 4) % 64)) % 64;
    const local = new Uint8Array(30 + name.length + 4 + pad);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 45, true);
    lv.setUint16(6, 0x0808, true);
    lv.setUint16(8, method, true);
    lv.setUint16(12, 0x21, true); // crc/sizes 0: they follow in a data descriptor
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, 4 + pad, true);
    local.set(name, 30);
    lv.setUint16(30 + name.length, 0x4246, true); // 'FB'
    lv.setUint16(32 + name.length, pad, true);
    local.fill(0x5a, 34 + name.length);
    push(local);
    push(payload);
    const big = opts.forceZip64 || payload.byteLength >= 0xffffffff || e.data.byteLength >= 0xffffffff;
    const dd = new Uint8Array(big ? 24 : 16);
    const ddv = new DataView(dd.buffer);
    ddv.setUint32(0, 0x08074b50, true);
    ddv.setUint32(4, crc, true);
    if (big) {
      ddv.setBigUint64(8, BigInt(payload.byteLength), true);
      ddv.setBigUint64(16, BigInt(e.data.byteLength), true);
    } else {
      ddv.setUint32(8, payload.byteLength, true);
      ddv.setUint32(12, e.data.byteLength, true);
    }
    push(dd);
    // Central directory record.
    const z64 = opts.forceZip64 || big || headerOffset >= 0xffffffff;
    const extraLen = z64 ? 4 + 24 : 0;
    const c = new Uint8Array(46 + name.length + extraLen);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 45, true);
    cv.setUint16(6, 45, true);
    cv.setUint16(8, 0x0808, true);
    cv.setUint16(10, method, true);
    cv.setUint16(14, 0x21, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, z64 ? 0xffffffff : payload.byteLength, true);
    cv.setUint32(24, z64 ? 0xffffffff : e.data.byteLength, true);
    cv.setUint16(28, name.length, true);
    cv.setUint16(30, extraLen, true);
    cv.setUint32(42, z64 ? 0xffffffff : headerOffset, true);
    c.set(name, 46);
    if (z64) {
      const x = 46 + name.length;
      cv.setUint16(x, 0x0001, true);
      cv.setUint16(x + 2, 24, true);
      cv.setBigUint64(x + 4, BigInt(e.data.byteLength), true);
      cv.setBigUint64(x + 12, BigInt(payload.byteLength), true);
      cv.setBigUint64(x + 20, BigInt(headerOffset), true);
    }
    central.push(c);
  }
  const cdOffset = off;
  for (const c of central) push(c);
  const cdSize = off - cdOffset;
  // ZIP64 end of central directory record + locator (torch always writes them), then the EOCD.
  const eocd64Offset = off;
  const tail = new Uint8Array(56 + 20 + 22);
  const tv = new DataView(tail.buffer);
  tv.setUint32(0, 0x06064b50, true);
  tv.setBigUint64(4, 44n, true);
  tv.setUint16(12, 45, true);
  tv.setUint16(14, 45, true);
  tv.setBigUint64(24, BigInt(entries.length), true);
  tv.setBigUint64(32, BigInt(entries.length), true);
  tv.setBigUint64(40, BigInt(cdSize), true);
  tv.setBigUint64(48, BigInt(cdOffset), true);
  tv.setUint32(56, 0x07064b50, true);
  tv.setBigUint64(64, BigInt(eocd64Offset), true);
  tv.setUint32(72, 1, true);
  tv.setUint32(76, 0x06054b50, true);
  const sat = opts.forceZip64;
  tv.setUint16(76 + 8, sat ? 0xffff : entries.length, true);
  tv.setUint16(76 + 10, sat ? 0xffff : entries.length, true);
  tv.setUint32(76 + 12, sat ? 0xffffffff : cdSize, true);
  tv.setUint32(76 + 16, sat ? 0xffffffff : cdOffset, true);
  push(tail);
  return chunks;
}

function byteswap(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  for (let i = 0; i < bytes.byteLength; i += size) for (let j = 0; j < size; j++) out[i + j] = bytes[i + size - 1 - j];
  return out;
}

/** A torch checkpoint from explicit storages and tensor views, as zip chunks. */
export function pthChunksRaw(storages: Map<string, PthStorage>, tensors: Map<string, PthTensorRef>, opts: PthWriteOptions = {}): Uint8Array[] {
  const folder = opts.folder ?? 'archive';
  const pkl = opts.pickle ?? stateDictPickle(storages, tensors, opts);
  const entries: ZipInput[] = [{ name: `${folder}/data.pkl`, data: pkl }];
  if (opts.byteorder) entries.push({ name: `${folder}/byteorder`, data: Buffer.from(opts.byteorder) });
  for (const [key, s] of storages) {
    if (opts.omitStorages?.includes(key)) continue;
    const bytes = opts.byteorder === 'big' ? byteswap(s.bytes, DTYPE_SIZE[s.dtype]) : s.bytes;
    entries.push({ name: `${folder}/data/${key}`, data: bytes });
  }
  entries.push({ name: `${folder}/version`, data: Buffer.from('3\n') });
  entries.push({ name: `${folder}/.data/serialization_id`, data: Buffer.from('1234567890123456789012345678901234567890') });
  return zipChunks(entries, opts);
}

/** A torch checkpoint of float32 tensors (one storage per tensor, keys "0", "1", ...), as chunks. */
export function pthChunks(tensors: Map<string, RawTensor>, opts: PthWriteOptions = {}): Uint8Array[] {
  const storages = new Map<string, PthStorage>();
  const refs = new Map<string, PthTensorRef>();
  let k = 0;
  for (const [name, t] of tensors) {
    const key = String(k++);
    storages.set(key, { dtype: 'float32', bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
    refs.set(name, { storage: key, offset: 0, shape: t.shape, stride: contiguousStride(t.shape) });
  }
  return pthChunksRaw(storages, refs, opts);
}

export function concatChunks(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  return out;
}

export function buildPth(tensors: Map<string, RawTensor>, opts: PthWriteOptions = {}): Uint8Array {
  return concatChunks(pthChunks(tensors, opts));
}

export function buildPthRaw(storages: Map<string, PthStorage>, tensors: Map<string, PthTensorRef>, opts: PthWriteOptions = {}): Uint8Array {
  return concatChunks(pthChunksRaw(storages, tensors, opts));
}

export function writePth(path: string, tensors: Map<string, RawTensor>, opts: PthWriteOptions = {}): void {
  writeFileAtomic(path, pthChunks(tensors, opts));
}

/**
 * The legacy torch.save format (torch < 1.6, or `_use_new_zipfile_serialization=False`): pickles of
 * the magic number, the protocol version 1001 and the system info, the state dict, the sorted
 * storage keys; then each storage as an int64 element count and its bytes.
 */
export function buildLegacyPth(tensors: Map<string, RawTensor>): Uint8Array {
  const storages = new Map<string, PthStorage>();
  const refs = new Map<string, PthTensorRef>();
  let k = 0;
  for (const [name, t] of tensors) {
    const key = String(100 + k++);
    storages.set(key, { dtype: 'float32', bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
    refs.set(name, { storage: key, offset: 0, shape: t.shape, stride: contiguousStride(t.shape) });
  }
  const magic = new PickleBuilder(2)
    .proto()
    .byte(0x8a, 10)
    .raw(new Uint8Array([0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]))
    .stop()
    .bytes();
  const version = new PickleBuilder(2).proto().int(1001).stop().bytes();
  const sys = new PickleBuilder(2).proto().emptyDict().mark().str('protocol_version').int(1001).str('little_endian').bool(true).setitems().stop().bytes();
  const main = stateDictPickle(storages, refs, { legacy: true });
  const keys = [...storages.keys()].sort();
  const kp = new PickleBuilder(2).proto().mark();
  for (const key of keys) kp.str(key);
  kp.byte(0x6c).stop(); // LIST
  const chunks: Uint8Array[] = [magic, version, sys, main, kp.bytes()];
  for (const key of keys) {
    const b = (storages.get(key) as PthStorage).bytes;
    const n = new Uint8Array(8);
    new DataView(n.buffer).setBigInt64(0, BigInt(b.byteLength / 4), true);
    chunks.push(n, b);
  }
  return concatChunks(chunks);
}
