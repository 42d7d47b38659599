/**
 * Minimal read-only ZIP parser (what `torch.save` writes), for archives in memory or read piecewise
 * from a file (`readZipDirectoryFrom`).
 * Reads the central directory (ZIP64 end-of-central-directory record and ZIP64 extended
 * information extra fields included); entry data comes back as a view into the buffer for
 * STORED entries, or freshly inflated for DEFLATE ones. CRC-32s are checked whenever the archive
 * records one (torch can be told to write 0 instead): with Node's `zlib.crc32`, else in JavaScript.
 */
import * as zlib from 'node:zlib';

export class ZipFormatError extends Error {
  override name = 'ZipFormatError';
}

export interface ZipEntry {
  name: string;
  /** 0 = STORED, 8 = DEFLATE. */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  /** Byte offset of the entry's (possibly compressed) data in the archive. */
  dataOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

const utf8 = new TextDecoder('utf-8');

function u64(dv: DataView, pos: number, what: string, source: string): number {
  const v = dv.getBigUint64(pos, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipFormatError(`${source}: ${what} ${v} is too large (corrupt archive)`);
  return Number(v);
}

function describeStart(buf: Uint8Array): string {
  const n = Math.min(8, buf.byteLength);
  const hex = [...buf.subarray(0, n)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  if (buf[0] === 0x89 && buf[1] === 0x50 && buf[2] === 0x4e && buf[3] === 0x47) return 'it is a PNG image';
  if (buf[0] === 0xff && buf[1] === 0xd8) return 'it is a JPEG image';
  if (buf[0] === 0x80 && buf[1] >= 2 && buf[1] <= 5) {
    return 'it is a bare pickle, neither a zip archive nor a legacy (pre-1.6) torch.save file (whose first pickle is its magic number)';
  }
  let text = true;
  for (let i = 0; i < Math.min(64, buf.byteLength); i++) {
    const c = buf[i];
    if (c < 9 || (c > 13 && c < 32) || c === 127) {
      text = false;
      break;
    }
  }
  if (text) return 'it looks like a text file';
  return `it starts with bytes ${hex}`;
}

/** Reads `len` bytes at `pos` of an archive (a view or a fresh buffer; never shorter unless at the end). */
export type ZipRead = (pos: number, len: number) => Uint8Array;

/** Parse the central directory of a ZIP archive held in `buf`. Entry order is preserved. */
export function readZipDirectory(buf: Uint8Array, source: string): Map<string, ZipEntry> {
  return readZipDirectoryFrom(buf.byteLength, (pos, len) => buf.subarray(pos, pos + len), source);
}

function viewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Parse the central directory of a ZIP archive of `size` bytes through `read` (so a file can be
 * parsed without reading it whole: the tail, the central directory and each local header).
 */
export function readZipDirectoryFrom(size: number, read: ZipRead, source: string): Map<string, ZipEntry> {
  if (size === 0) throw new ZipFormatError(`${source} is empty (0 bytes); expected a zip archive`);
  const head = read(0, Math.min(64, size));
  const startsLikeZip = size >= 4 && viewOf(head).getUint32(0, true) === SIG_LOCAL;

  // End of central directory: 22 bytes plus a comment of up to 65535 bytes (and a ZIP64 locator before it).
  const tailStart = Math.max(0, size - 22 - 0xffff - 20);
  const tail = read(tailStart, size - tailStart);
  const tdv = viewOf(tail);
  let eocdT = -1;
  for (let p = tail.byteLength - 22; p >= 0 && p >= tail.byteLength - 22 - 0xffff; p--) {
    if (tail[p] === 0x50 && tdv.getUint32(p, true) === SIG_EOCD && p + 22 + tdv.getUint16(p + 20, true) <= tail.byteLength) {
      eocdT = p;
      break;
    }
  }
  if (eocdT < 0) {
    if (startsLikeZip)
      throw new ZipFormatError(`${source} is truncated: it starts like a zip archive but its central directory (at the end of the file) is missing`);
    throw new ZipFormatError(`${source} is not a zip archive (PyTorch checkpoints are zip archives): ${describeStart(head)}`);
  }
  let count = tdv.getUint16(eocdT + 10, true);
  let cdSize = tdv.getUint32(eocdT + 12, true);
  let cdOffset = tdv.getUint32(eocdT + 16, true);
  if (tdv.getUint16(eocdT + 4, true) !== 0 && tdv.getUint16(eocdT + 4, true) !== 0xffff) {
    throw new ZipFormatError(`${source}: multi-disk zip archives are not supported`);
  }

  // ZIP64 end of central directory locator sits right before the EOCD record.
  if (eocdT >= 20 && tdv.getUint32(eocdT - 20, true) === SIG_EOCD64_LOCATOR) {
    const off64 = u64(tdv, eocdT - 12, 'ZIP64 end-of-central-directory offset', source);
    const rec = off64 + 56 <= size ? read(off64, 56) : new Uint8Array(0);
    const rdv = viewOf(rec);
    if (rec.byteLength < 56 || rdv.getUint32(0, true) !== SIG_EOCD64) {
      throw new ZipFormatError(`${source}: the ZIP64 end-of-central-directory record is missing or corrupt (truncated file?)`);
    }
    count = u64(rdv, 32, 'entry count', source);
    cdSize = u64(rdv, 40, 'central directory size', source);
    cdOffset = u64(rdv, 48, 'central directory offset', source);
  } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    throw new ZipFormatError(`${source}: the archive needs ZIP64 records but has none (corrupt or truncated)`);
  }
  if (cdOffset + cdSize > size) {
    throw new ZipFormatError(
      `${source} is truncated or corrupt: the central directory (${cdSize} bytes at ${cdOffset}) lies beyond the end of the ${size}-byte file`,
    );
  }

  const cd = read(cdOffset, cdSize);
  const dv = viewOf(cd);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  const end = cdSize;
  for (let i = 0; i < count; i++) {
    if (p + 46 > end || dv.getUint32(p, true) !== SIG_CENTRAL) {
      throw new ZipFormatError(`${source}: corrupt central directory (entry ${i} of ${count} at byte ${cdOffset + p})`);
    }
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc32 = dv.getUint32(p + 16, true);
    let compressedSize = dv.getUint32(p + 20, true);
    let usize = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let localHeaderOffset = dv.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > end) throw new ZipFormatError(`${source}: corrupt central directory (entry ${i} overruns it)`);
    const name = utf8.decode(cd.subarray(p + 46, p + 46 + nameLen));
    // ZIP64 extended information extra field (id 0x0001): only the fields saturated above, in order.
    let q = p + 46 + nameLen;
    const qEnd = q + extraLen;
    while (q + 4 <= qEnd) {
      const id = dv.getUint16(q, true);
      const len = dv.getUint16(q + 2, true);
      if (q + 4 + len > qEnd) break;
      if (id === 0x0001) {
        let r = q + 4;
        const take = (what: string): number => {
          if (r + 8 > q + 4 + len) throw new ZipFormatError(`${source}: entry ${name} has a short ZIP64 extra field (no ${what})`);
          const v = u64(dv, r, what, source);
          r += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = take('uncompressed size');
        if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take('local header offset');
      }
      q += 4 + len;
    }
    if (flags & 1) throw new ZipFormatError(`${source}: entry ${name} is encrypted`);
    const lh = localHeaderOffset + 30 <= size ? read(localHeaderOffset, 30) : new Uint8Array(0);
    const ldv = viewOf(lh);
    if (lh.byteLength < 30 || ldv.getUint32(0, true) !== SIG_LOCAL) {
      throw new ZipFormatError(`${source}: entry ${name} has no valid local header at byte ${localHeaderOffset} (corrupt or truncated)`);
    }
    const dataOffset = localHeaderOffset + 30 + ldv.getUint16(26, true) + ldv.getUint16(28, true);
    if (dataOffset + compressedSize > size) {
      throw new ZipFormatError(`${source} is truncated: entry ${name} needs bytes up to ${dataOffset + compressedSize} but the file has ${size}`);
    }
    if (!entries.has(name)) entries.set(name, { name, method, flags, crc32, compressedSize, size: usize, localHeaderOffset, dataOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

type Crc32Fn = (data: Uint8Array, value?: number) => number;

let crcTable: Uint32Array | null = null;
/** CRC-32 (IEEE) in plain JavaScript: where zlib.crc32 is missing (older Node, the browser). */
function jsCrc32(data: Uint8Array, value = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const t = crcTable;
  let c = ~value;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** Node's zlib.crc32 when it exists and works (a bundler's stand-in for node:zlib throws), else the JS one. */
const nodeCrc32: Crc32Fn = (() => {
  try {
    const f = (zlib as unknown as { crc32?: Crc32Fn }).crc32;
    if (typeof f === 'function' && f(new Uint8Array([49, 50, 51])) >>> 0 === 0x884863d2) return f;
  } catch {
    // not Node
  }
  return jsCrc32;
})();

/**
 * The uncompressed bytes of an entry: a view into `buf` when STORED, otherwise inflated.
 * `verifyCrc` checks the recorded CRC-32 (skipped when it is 0 or Node lacks zlib.crc32).
 */
export function zipEntryData(buf: Uint8Array, entry: ZipEntry, source: string, verifyCrc = true): Uint8Array {
  return zipEntryDecode(buf.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize), entry, source, verifyCrc);
}

/** Check a STORED entry's bytes against its recorded CRC-32 (when recorded and Node has zlib.crc32). */
export function zipCheckCrc(data: Uint8Array, entry: ZipEntry, source: string): void {
  if (entry.crc32 !== 0) {
    const got = nodeCrc32(data) >>> 0;
    if (got !== entry.crc32 >>> 0)
      throw new ZipFormatError(`${source}: entry ${entry.name} is corrupt (CRC-32 ${got.toString(16)} instead of ${entry.crc32.toString(16)})`);
  }
}

/** The uncompressed bytes of an entry from its raw (possibly compressed) data record. */
export function zipEntryDecode(raw: Uint8Array, entry: ZipEntry, source: string, verifyCrc = true): Uint8Array {
  let data: Uint8Array;
  if (entry.method === 0) {
    if (entry.size !== entry.compressedSize) throw new ZipFormatError(`${source}: stored entry ${entry.name} has inconsistent sizes`);
    data = raw;
  } else if (entry.method === 8) {
    try {
      // Cap the output at the declared size so a corrupt or hostile entry cannot balloon.
      data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size) });
    } catch (e) {
      throw new ZipFormatError(`${source}: entry ${entry.name} cannot be inflated (${(e as Error).message}); the file is corrupt`);
    }
    if (data.byteLength !== entry.size) throw new ZipFormatError(`${source}: entry ${entry.name} inflates to ${data.byteLength} bytes, not ${entry.size}`);
  } else {
    throw new ZipFormatError(`${source}: entry ${entry.name} uses unsupported compression method ${entry.method}`);
  }
  if (verifyCrc) zipCheckCrc(data, entry, source);
  return data;
}
