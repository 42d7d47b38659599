/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length, a JSON header { name: { dtype, shape, data_offsets }, __metadata__ },
 * then the raw little-endian tensor bytes. Tensors come back as float32 (F16/BF16/F64 are
 * converted); writing is atomic (temporary file, then rename).
 */
import { closeSync, openSync, fstatSync, renameSync, writeSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { openForReading, readFully } from './file.js';

export interface RawTensor {
  shape: number[];
  data: Float32Array;
}

/** One tensor of a checkpoint file, read on demand (`openPth`, `openSafetensors`). */
export interface LazyTensor {
  shape: number[];
  /** Stored dtype (float32, F16, …); values always come back as float32. */
  dtype: string;
  /**
   * The values as float32, contiguous, row-major: written into `into` (which must hold exactly
   * the tensor's element count) or into a fresh array. Each call reads the file again.
   */
  read(into?: Float32Array): Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, RawTensor>;
  metadata: Record<string, string>;
}

const DTYPE_SIZE: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, U8: 1 };

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Convert raw little-endian bytes of a given dtype to a fresh or aliased Float32Array. */
export function bytesToFloat32(bytes: Uint8Array, dtype: string, count: number, what: string): Float32Array {
  const need = count * (DTYPE_SIZE[dtype] ?? 0);
  if (!DTYPE_SIZE[dtype]) throw new Error(`Unsupported dtype ${dtype} for ${what}`);
  if (bytes.byteLength !== need) throw new Error(`Tensor ${what} has ${bytes.byteLength} bytes but its dtype and shape need ${need}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F32') {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, count);
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    switch (dtype) {
      case 'F16':
        out[i] = halfToFloat(dv.getUint16(2 * i, true));
        break;
      case 'BF16':
        out[i] = new Float32Array(new Uint32Array([dv.getUint16(2 * i, true) << 16]).buffer)[0];
        break;
      case 'F64':
        out[i] = dv.getFloat64(8 * i, true);
        break;
      case 'I64':
        out[i] = Number(dv.getBigInt64(8 * i, true));
        break;
      case 'I32':
        out[i] = dv.getInt32(4 * i, true);
        break;
      case 'U8':
        out[i] = bytes[i];
        break;
    }
  }
  return out;
}

const readExactly = (fd: number, buf: Uint8Array, pos: number): void => readFully(fd, buf, pos, () => new Error('unexpected end of file'));

interface HeaderEntry {
  name: string;
  dtype: string;
  shape: number[];
  count: number;
  /** Byte range of the tensor's data in the file. */
  start: number;
  end: number;
}

/**
 * The JSON header of a safetensors file (`bytes`; the data starts at `base`, the file has `size`
 * bytes): every tensor's entry, checked to lie inside the file, and the string metadata.
 */
function parseHeader(bytes: Uint8Array, base: number, size: number, source: string): { entries: HeaderEntry[]; metadata: Record<string, string> } {
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new Error(`${source} is not a safetensors file (header is not JSON)`);
  }
  const entries: HeaderEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const info = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (!info || !Array.isArray(info.shape) || !Array.isArray(info.data_offsets)) throw new Error(`${source}: malformed entry for tensor ${name}`);
    const [a, b] = info.data_offsets;
    if (!(a >= 0 && b >= a && base + b <= size)) throw new Error(`${source}: tensor ${name} lies outside the file (truncated?)`);
    entries.push({ name, dtype: info.dtype, shape: info.shape.slice(), count: info.shape.reduce((p, q) => p * q, 1), start: base + a, end: base + b });
  }
  return { entries, metadata };
}

/** Parse a safetensors buffer already in memory. Float32 tensors alias the buffer. */
export function parseSafetensors(buf: Uint8Array, source = 'safetensors data'): SafetensorsFile {
  if (buf.byteLength < 8) throw new Error(`${source} is not a safetensors file (too short)`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen = Number(dv.getBigUint64(0, true));
  if (hlen <= 0 || 8 + hlen > buf.byteLength) throw new Error(`${source} is not a safetensors file (bad header length ${hlen})`);
  const { entries, metadata } = parseHeader(buf.subarray(8, 8 + hlen), 8 + hlen, buf.byteLength, source);
  const tensors = new Map<string, RawTensor>();
  for (const e of entries) {
    tensors.set(e.name, { shape: e.shape, data: bytesToFloat32(buf.subarray(e.start, e.end), e.dtype, e.count, e.name) });
  }
  return { tensors, metadata };
}

/** Read a safetensors file from disk. */
export function readSafetensors(path: string): SafetensorsFile {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    // Read into an 8-aligned buffer; float32 data then aliases it whenever the offsets allow.
    const buf = new Uint8Array(size);
    readExactly(fd, buf, 0);
    return parseSafetensors(buf, path);
  } finally {
    closeSync(fd);
  }
}

/** Serialise tensors (all float32) and string metadata into safetensors bytes (as chunks). */
export function serializeSafetensors(tensors: Map<string, RawTensor> | Record<string, RawTensor>, metadata: Record<string, string> = {}): Uint8Array[] {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const [name, t] of entries) {
    const count = t.shape.reduce((p, q) => p * q, 1);
    if (count !== t.data.length) throw new Error(`Tensor ${name}: shape [${t.shape}] does not match its ${t.data.length} values`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + 4 * count] };
    off += 4 * count;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const hbytes = Buffer.from(json, 'utf8');
  const lenBuf = new Uint8Array(8);
  new DataView(lenBuf.buffer).setBigUint64(0, BigInt(hbytes.byteLength), true);
  const chunks: Uint8Array[] = [lenBuf, hbytes];
  for (const [, t] of entries) chunks.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return chunks;
}

/** Write tensors atomically: to a temporary file beside `path`, then rename over it. */
export function writeSafetensors(path: string, tensors: Map<string, RawTensor> | Record<string, RawTensor>, metadata: Record<string, string> = {}): void {
  const chunks = serializeSafetensors(tensors, metadata);
  writeFileAtomic(path, chunks);
}

/** Write chunks to `path` atomically (temporary file in the same folder, then rename). */
export function writeFileAtomic(path: string, chunks: Uint8Array[]): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    for (const c of chunks) {
      let off = 0;
      while (off < c.byteLength) off += writeSync(fd, c, off, c.byteLength - off);
    }
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    try {
      unlinkSync(tmp);
    } catch {
      /* not created */
    }
    throw e;
  }
}

/** An open safetensors file: tensor names, shapes and readers, metadata; `close()` releases the file. */
export interface OpenSafetensors {
  tensors: Map<string, LazyTensor>;
  metadata: Record<string, string>;
  close(): void;
}

/**
 * Open a safetensors file reading only its header; each tensor's `read()` then reads its bytes
 * from the file, straight into the target Float32Array for F32 data (no intermediate copy).
 */
export function openSafetensors(path: string, source = path): OpenSafetensors {
  return openForReading(
    path,
    () => new Error('unexpected end of file'),
    (f) => {
      if (f.size < 8) throw new Error(`${source} is not a safetensors file (too short)`);
      const lenBuf = new Uint8Array(8);
      f.read(lenBuf, 0);
      const hlen = Number(new DataView(lenBuf.buffer).getBigUint64(0, true));
      if (hlen <= 0 || 8 + hlen > f.size) throw new Error(`${source} is not a safetensors file (bad header length ${hlen})`);
      const hbuf = new Uint8Array(hlen);
      f.read(hbuf, 8);
      const { entries, metadata } = parseHeader(hbuf, 8 + hlen, f.size, source);
      const tensors = new Map<string, LazyTensor>();
      for (const { name, dtype, shape, count, start, end } of entries) {
        const es = DTYPE_SIZE[dtype];
        if (!es) throw new Error(`Unsupported dtype ${dtype} for ${name}`);
        if (end - start !== count * es) throw new Error(`Tensor ${name} has ${end - start} bytes but its dtype and shape need ${count * es}`);
        tensors.set(name, {
          shape,
          dtype,
          read: (into?: Float32Array) => {
            if (!f.isOpen) throw new Error(`internal: ${source} was closed`);
            if (into && into.length !== count) throw new Error(`internal: tensor ${name} has ${count} values, not ${into.length}`);
            if (dtype === 'F32') {
              const out = into ?? new Float32Array(count);
              f.read(new Uint8Array(out.buffer, out.byteOffset, 4 * count), start);
              return out;
            }
            const raw = new Uint8Array(end - start);
            f.read(raw, start);
            const data = bytesToFloat32(raw, dtype, count, name);
            if (into) {
              into.set(data);
              return into;
            }
            return data;
          },
        });
      }
      return { tensors, metadata };
    },
  );
}
