import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { loadImage, saveImage, encodeImage, toRawPixels, planarToUint8, MAX_PIXELS } from '../../src/io/image.js';
import type { Planar } from '../../src/io/image.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'srflow-image-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
}

function randomU8(n: number, seed = 1): Uint8Array {
  const r = lcg(seed);
  return Uint8Array.from({ length: n }, () => r() >>> 24);
}

/** Interleaved HWC → planar CHW (as integers). */
function planarOf(raw: ArrayLike<number>, w: number, h: number, ch: number, c: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < w * h; i++) out.push(raw[i * ch + c]);
  return out;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

/** A syntactically valid PNG header claiming w×h RGB pixels, with a tiny IDAT. */
function fakePng(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(64))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

test('8-bit RGB PNG round trip is exact', async () => {
  const w = 13;
  const h = 7;
  const raw = randomU8(w * h * 3, 5);
  const img = await loadImage({ data: raw, width: w, height: h, channels: 3 });
  assert.equal(img.bitDepth, 8);
  assert.equal(img.grayscale, false);
  assert.equal(img.alpha, null);
  const p = join(dir, 'rt8.png');
  await saveImage(p, img);
  const back = await loadImage(p);
  assert.equal(back.width, w);
  assert.equal(back.height, h);
  assert.equal(back.bitDepth, 8);
  assert.equal(back.format, 'png');
  assert.equal(back.hadAlpha, false);
  const q = planarToUint8(back.rgb);
  for (let c = 0; c < 3; c++) assert.deepEqual(Array.from(q.subarray(c * w * h, (c + 1) * w * h)), planarOf(raw, w, h, 3, c));
  // Values come back as v / 255.
  assert.equal(back.rgb.data[0], Math.fround(raw[0] / 255));
});

test('16-bit PNG keeps 16-bit precision', async () => {
  const w = 9;
  const h = 6;
  const r = lcg(11);
  const raw = Uint16Array.from({ length: w * h * 3 }, () => r() >>> 16);
  const img = await loadImage({ data: raw, width: w, height: h, channels: 3 });
  assert.equal(img.bitDepth, 16);
  const p = join(dir, 'rt16.png');
  await saveImage(p, img);
  const meta = await sharp(p).metadata();
  assert.equal(meta.depth, 'ushort');
  const back = await loadImage(p);
  assert.equal(back.bitDepth, 16);
  for (let c = 0; c < 3; c++) {
    const got = Array.from(back.rgb.data.subarray(c * w * h, (c + 1) * w * h), (v) => Math.round(v * 65535));
    assert.deepEqual(got, planarOf(raw, w, h, 3, c));
  }
  // Written at bitDepth 8 it is rounded to 8 bits.
  const p8 = join(dir, 'rt16as8.png');
  await saveImage(p8, { ...back, bitDepth: 8 });
  assert.equal((await sharp(p8).metadata()).depth, 'uchar');
});

test('grayscale stays grayscale (8 and 16 bit), expanded to RGB in memory', async () => {
  const w = 8;
  const h = 5;
  const g = randomU8(w * h, 3);
  const p = join(dir, 'gray.png');
  await sharp(Buffer.from(g), { raw: { width: w, height: h, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer()
    .then((b) => writeFileSync(p, b));
  const img = await loadImage(p);
  assert.equal(img.grayscale, true);
  assert.equal(img.rgb.channels, 3);
  const q = planarToUint8(img.rgb);
  for (let c = 0; c < 3; c++) assert.deepEqual(Array.from(q.subarray(c * w * h, (c + 1) * w * h)), Array.from(g));
  const out = join(dir, 'gray-out.png');
  await saveImage(out, img);
  const meta = await sharp(out).metadata();
  assert.equal(meta.channels, 1);
  const again = await loadImage(out);
  assert.equal(again.grayscale, true);
  assert.deepEqual(planarToUint8(again.rgb), q);

  const g16 = Uint16Array.from({ length: w * h }, (_, i) => i * 1601 + 7);
  const p16 = join(dir, 'gray16.png');
  await saveImage(p16, await loadImage({ data: g16, width: w, height: h, channels: 1 }));
  const m16 = await sharp(p16).metadata();
  assert.equal(m16.channels, 1);
  assert.equal(m16.depth, 'ushort');
  const b16 = await loadImage(p16);
  assert.equal(b16.grayscale, true);
  assert.equal(b16.bitDepth, 16);
  assert.deepEqual(
    Array.from(b16.rgb.data.subarray(0, w * h), (v) => Math.round(v * 65535)),
    Array.from(g16),
  );
});

test('RGBA and gray+alpha PNG keep their alpha', async () => {
  const w = 6;
  const h = 4;
  const raw = randomU8(w * h * 4, 9);
  const img = await loadImage({ data: raw, width: w, height: h, channels: 4 });
  assert.equal(img.hadAlpha, true);
  const p = join(dir, 'rgba.png');
  await saveImage(p, img);
  const back = await loadImage(p);
  assert.equal(back.hadAlpha, true);
  assert.ok(back.alpha);
  assert.deepEqual(Array.from(planarToUint8(back.alpha)), planarOf(raw, w, h, 4, 3));
  const q = planarToUint8(back.rgb);
  for (let c = 0; c < 3; c++) assert.deepEqual(Array.from(q.subarray(c * w * h, (c + 1) * w * h)), planarOf(raw, w, h, 4, c));

  const ga = randomU8(w * h * 2, 10);
  const pg = join(dir, 'graya.png');
  await saveImage(pg, await loadImage({ data: ga, width: w, height: h, channels: 2 }));
  const m = await sharp(pg).metadata();
  assert.equal(m.channels, 2);
  const bg = await loadImage(pg);
  assert.equal(bg.grayscale, true);
  assert.deepEqual(Array.from(planarToUint8(bg.alpha!)), planarOf(ga, w, h, 2, 1));
  assert.deepEqual(Array.from(planarToUint8(bg.rgb).subarray(0, w * h)), planarOf(ga, w, h, 2, 0));
});

test('EXIF orientation 6 is applied (JPEG comes back rotated 90° clockwise)', async () => {
  // 32 wide × 16 high: left half red, right half blue.
  const w = 32;
  const h = 16;
  const raw = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      if (x < w / 2) raw[i] = 255;
      else raw[i + 2] = 255;
    }
  const p = join(dir, 'exif.jpg');
  writeFileSync(
    p,
    await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 100 })
      .withMetadata({ orientation: 6 })
      .toBuffer(),
  );
  assert.equal((await sharp(p).metadata()).orientation, 6);
  const img = await loadImage(p);
  assert.equal(img.width, 16);
  assert.equal(img.height, 32);
  const at = (c: number, y: number, x: number) => img.rgb.data[(c * img.height + y) * img.width + x];
  // The left column (red) is now the top row; blue is at the bottom.
  assert.ok(at(0, 4, 8) > 0.9 && at(2, 4, 8) < 0.1);
  assert.ok(at(2, 27, 8) > 0.9 && at(0, 27, 8) < 0.1);
});

test('WebP and JPEG are written (format from the extension or the option)', async () => {
  const w = 24;
  const h = 16;
  const data = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[(c * h + y) * w + x] = (x + y + 10 * c) / 60;
  const rgb: Planar = { data, channels: 3, height: h, width: w };
  for (const name of ['a.webp', 'a.jpg', 'a.JPEG']) {
    const p = join(dir, name);
    await saveImage(p, { rgb }, { quality: 95 });
    const meta = await sharp(p).metadata();
    assert.equal(meta.format, name.endsWith('webp') ? 'webp' : 'jpeg');
    const back = await loadImage(p);
    assert.equal(back.width, w);
    let err = 0;
    for (let i = 0; i < data.length; i++) err = Math.max(err, Math.abs(back.rgb.data[i] - data[i]));
    assert.ok(err < 0.06, `${name}: max error ${err}`);
  }
  // Lossless WebP is exact on 8-bit values.
  const p = join(dir, 'lossless.webp');
  await saveImage(p, { rgb }, { lossless: true });
  assert.deepEqual(planarToUint8((await loadImage(p)).rgb), planarToUint8(rgb));
  // The option overrides the (unknown) extension.
  const pb = join(dir, 'x.bin');
  await saveImage(pb, { rgb }, { format: 'png' });
  assert.equal((await sharp(pb).metadata()).format, 'png');
  const buf = await encodeImage({ rgb }, { format: 'png' });
  assert.deepEqual([...buf.subarray(0, 4)], [137, 80, 78, 71]);
  // JPEG with alpha is flattened onto white.
  const alpha: Planar = { data: new Float32Array(w * h), channels: 1, height: h, width: w };
  const j = await loadImage(await encodeImage({ rgb, alpha }, { format: 'jpg', quality: 100 }));
  assert.ok(j.rgb.data.every((v) => v > 0.97));
});

test('8-bit conversion rounds and clips', () => {
  const rgb: Planar = { data: Float32Array.from([0.3 / 255, 0.6 / 255, 0.5, -0.2, 1.7, NaN]), channels: 3, height: 1, width: 2 };
  const raw = toRawPixels({ rgb });
  // interleaved: pixel 0 = (R0, G0, B0) = (data[0], data[2], data[4])
  assert.deepEqual(Array.from(raw.data), [0, 128, 255, 1, 0, 0]);
  assert.equal(raw.channels, 3);
  const gray = toRawPixels({ rgb, grayscale: true });
  assert.equal(gray.channels, 1);
  const r16 = toRawPixels({ rgb }, { bitDepth: 16 });
  assert.ok(r16.data instanceof Uint16Array);
  assert.equal(r16.data[1], 32768);
});

test('read errors name the file and the problem', async () => {
  await assert.rejects(loadImage(join(dir, 'missing.png')), /^Error: Cannot read image .*missing\.png: file not found$/);
  const empty = join(dir, 'empty.png');
  writeFileSync(empty, '');
  await assert.rejects(loadImage(empty), /Cannot read image .*empty\.png: the file is empty/);
  await assert.rejects(loadImage(Buffer.alloc(0)), /Cannot read image <buffer>: the data is empty/);

  const good = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } })
    .png({ compressionLevel: 0 })
    .toBuffer();
  const trunc = join(dir, 'truncated.png');
  writeFileSync(trunc, good.subarray(0, Math.floor(good.length / 2)));
  await assert.rejects(loadImage(trunc), /Cannot read image .*truncated\.png: corrupt or truncated image data/);

  const txt = join(dir, 'notes.png');
  writeFileSync(txt, 'this is a text file, not a picture\n');
  await assert.rejects(loadImage(txt), /Cannot read image .*notes\.png: not an image, or an unsupported image format/);

  const svg = join(dir, 'vector.svg');
  writeFileSync(svg, '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
  await assert.rejects(loadImage(svg), /Cannot read image .*vector\.svg: unsupported format 'svg'/);

  await assert.rejects(loadImage(fakePng(70000, 10), { name: 'wide.png' }), /Cannot read image wide\.png: absurd dimensions 70000×10.*limitInputPixels/);
  await assert.rejects(loadImage(fakePng(20000, 20000), { name: 'huge.png' }), new RegExp(`Cannot read image huge\\.png: .*${MAX_PIXELS}.*limitInputPixels`));
  await assert.rejects(loadImage(dir), /it is a folder/);
  await assert.rejects(loadImage({ data: new Uint8Array(5), width: 2, height: 2, channels: 3 }), /Expected 12 samples/);
});

test('a failed save leaves no file behind', async () => {
  const rgb: Planar = { data: new Float32Array(3 * 4 * 4).fill(0.5), channels: 3, height: 4, width: 4 };
  const sub = join(dir, 'saves');
  mkdirSync(sub);
  // Unsupported format.
  await assert.rejects(saveImage(join(sub, 'out.bmp'), { rgb }), /Expected a file name ending in \.png, \.jpg, \.jpeg or \.webp/);
  await assert.rejects(
    saveImage(join(sub, 'out.png'), { rgb }, { format: 'gif' as 'png' }),
    /Expected one of png, jpg, jpeg, webp for format but received 'gif'/,
  );
  // Bad image data (encoding fails before anything is written).
  await assert.rejects(saveImage(join(sub, 'bad.png'), { rgb: { ...rgb, data: new Float32Array(7) } }), /Expected 48 values/);
  // Missing folder.
  await assert.rejects(saveImage(join(sub, 'nope', 'out.png'), { rgb }), /Cannot write image .*out\.png: the folder .* does not exist/);
  // The rename fails (a non-empty folder is in the way): the temporary file is removed.
  mkdirSync(join(sub, 'taken.png'));
  writeFileSync(join(sub, 'taken.png', 'x'), 'x');
  await assert.rejects(saveImage(join(sub, 'taken.png'), { rgb }), /Cannot write image .*taken\.png/);
  assert.deepEqual(readdirSync(sub), ['taken.png']);
  assert.equal(existsSync(join(sub, 'out.png')), false);
  // And a successful save overwrites in place, leaving only the file.
  await saveImage(join(sub, 'ok.png'), { rgb });
  await saveImage(join(sub, 'ok.png'), { rgb });
  assert.deepEqual(readdirSync(sub).sort(), ['ok.png', 'taken.png']);
  assert.ok(readFileSync(join(sub, 'ok.png')).length > 0);
});
