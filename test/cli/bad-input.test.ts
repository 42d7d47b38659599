/**
 * Bad input never hurts: every bad case gives one `srflow: …` line on stderr, no stack trace, exit
 * code 2 (usage) or 1 (failure), and no new file anywhere near the inputs or outputs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { createModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { runCli } from '../helpers/cli.js';

let dir = '';
let out = '';
const f = (name: string) => join(dir, name);

const run = runCli;

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

/** A PNG whose header claims width × height (no pixel data). */
function pngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(64))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'srflow-cli-bad-'));
  out = join(dir, 'out');
  mkdirSync(out);
  const m = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 }), 1);
  await m.save(f('tiny.safetensors'));
  const raw = Buffer.alloc(16 * 12 * 3, 128);
  await sharp(raw, { raw: { width: 16, height: 12, channels: 3 } })
    .png()
    .toFile(f('good.png'));
  await sharp(raw, { raw: { width: 16, height: 12, channels: 3 } })
    .png()
    .toFile(f('good2.png'));
  writeFileSync(f('empty.png'), '');
  const good = readFileSync(f('good.png'));
  writeFileSync(f('truncated.png'), good.subarray(0, Math.floor(good.length / 2)));
  writeFileSync(f('text.png'), 'this is not an image\n');
  writeFileSync(f('vector.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
  writeFileSync(f('huge.png'), pngHeader(100000, 100000));
  writeFileSync(f('long.png'), pngHeader(70000, 10));
  await sharp(Buffer.alloc(20000 * 2 * 3, 90), { raw: { width: 20000, height: 2, channels: 3 } })
    .png()
    .toFile(f('wide.png'));
  const model = readFileSync(f('tiny.safetensors'));
  writeFileSync(f('truncated.safetensors'), model.subarray(0, Math.floor(model.length / 2)));
  writeFileSync(f('garbage.safetensors'), Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 7919) % 251)));
  // a model file whose configuration does not match its tensors
  const other = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 16 }), 1);
  const tensors = new Map([...m.parameters()].map(([n, p]) => [n, { shape: p.shape, data: p.data as Float32Array }]));
  writeSafetensors(f('mismatched.safetensors'), tensors, { format: 'srflow-model', format_version: '1', config: JSON.stringify(other.config.opt) });
});
after(() => rmSync(dir, { recursive: true, force: true }));

const M = () => ['--model', f('tiny.safetensors')];

const cases: { name: string; args: () => string[]; code: 1 | 2; match: RegExp; env?: () => Record<string, string> }[] = [
  {
    name: 'missing input file',
    args: () => ['upscale', f('nope.png'), ...M(), '--out-dir', out],
    code: 1,
    match: /Cannot read image .*nope\.png: file not found/,
  },
  { name: 'empty input file', args: () => ['upscale', f('empty.png'), ...M(), '--out-dir', out], code: 1, match: /empty/ },
  { name: 'truncated input file', args: () => ['upscale', f('truncated.png'), ...M(), '--out-dir', out], code: 1, match: /Cannot read image .*truncated\.png/ },
  { name: 'non-image input file', args: () => ['upscale', f('text.png'), ...M(), '--out-dir', out], code: 1, match: /not an image/ },
  { name: 'unsupported format', args: () => ['upscale', f('vector.svg'), ...M(), '--out-dir', out], code: 1, match: /unsupported/ },
  { name: 'absurd dimensions', args: () => ['upscale', f('huge.png'), ...M(), '--out-dir', out], code: 1, match: /more than 268402689 pixels/ },
  { name: 'absurd side', args: () => ['upscale', f('long.png'), ...M(), '--out-dir', out], code: 1, match: /absurd dimensions 70000×10/ },
  { name: 'output too large', args: () => ['upscale', f('wide.png'), ...M(), '--out-dir', out], code: 1, match: /80000×8, beyond the limits/ },
  {
    name: 'a good input then a bad one: nothing written',
    args: () => ['upscale', f('good.png'), f('text.png'), ...M(), '--out-dir', out],
    code: 1,
    match: /text\.png/,
  },
  {
    name: 'missing model file',
    args: () => ['upscale', f('good.png'), '--model', f('none.safetensors'), '--out-dir', out],
    code: 1,
    match: /Cannot read model .*file not found/,
  },
  {
    name: 'truncated model file',
    args: () => ['upscale', f('good.png'), '--model', f('truncated.safetensors'), '--out-dir', out],
    code: 1,
    match: /Cannot read model/,
  },
  {
    name: 'corrupt model file',
    args: () => ['upscale', f('good.png'), '--model', f('garbage.safetensors'), '--out-dir', out],
    code: 1,
    match: /Cannot read model|not a PyTorch checkpoint/,
  },
  {
    name: 'mismatched model file',
    args: () => ['upscale', f('good.png'), '--model', f('mismatched.safetensors'), '--out-dir', out],
    code: 1,
    match: /mismatched\.safetensors/,
  },
  { name: 'an image as the model', args: () => ['upscale', f('good.png'), '--model', f('good.png'), '--out-dir', out], code: 1, match: /Cannot read model/ },
  {
    name: 'default model not installed',
    args: () => ['upscale', f('good.png'), '--out-dir', out],
    env: () => ({ SRFLOW_DEFAULT_MODEL: f('not-installed.safetensors') }),
    code: 1,
    match: /default model is not installed.*--model/,
  },
  { name: 'negative temperature', args: () => ['upscale', f('good.png'), ...M(), '--out-dir', out, '--temperature', '-0.5'], code: 2, match: /--temperature/ },
  {
    name: 'NaN temperature',
    args: () => ['upscale', f('good.png'), ...M(), '--out-dir', out, '--temperature', 'NaN'],
    code: 2,
    match: /--temperature but received "NaN"/,
  },
  {
    name: 'empty temperature in a list',
    args: () => ['upscale', f('good.png'), ...M(), '--out-dir', out, '--temperature', '0.4,,0.8'],
    code: 2,
    match: /--temperature/,
  },
  { name: 'zero samples', args: () => ['upscale', f('good.png'), ...M(), '--out-dir', out, '--samples', '0'], code: 2, match: /--samples/ },
  { name: 'non-integer seed', args: () => ['upscale', f('good.png'), ...M(), '--out-dir', out, '--seed', '1.5'], code: 2, match: /--seed/ },
  { name: 'unknown flag', args: () => ['upscale', f('good.png'), ...M(), '--out-dir', out, '--sharpen'], code: 2, match: /unknown option '--sharpen'/ },
  { name: 'missing inputs', args: () => ['upscale', ...M()], code: 2, match: /missing required argument/ },
  {
    name: '-o with several inputs',
    args: () => ['upscale', f('good.png'), f('good2.png'), ...M(), '-o', join(out, 'x.png')],
    code: 2,
    match: /one input with -o/,
  },
  {
    name: '-o with several outputs',
    args: () => ['upscale', f('good.png'), ...M(), '-o', join(out, 'x.png'), '--samples', '2'],
    code: 2,
    match: /one output with -o/,
  },
  { name: '-o onto the input', args: () => ['upscale', f('good.png'), ...M(), '-o', f('good.png')], code: 2, match: /overwrite the input/ },
  { name: '-o with an unknown extension', args: () => ['upscale', f('good.png'), ...M(), '-o', join(out, 'x.bmp')], code: 2, match: /\.png, \.jpg/ },
  { name: '-o into a missing folder', args: () => ['upscale', f('good.png'), ...M(), '-o', join(out, 'no', 'x.png')], code: 2, match: /does not exist/ },
  {
    name: '-o and --out-dir',
    args: () => ['upscale', f('good.png'), ...M(), '-o', join(out, 'x.png'), '--out-dir', out],
    code: 2,
    match: /either -o or --out-dir/,
  },
  {
    name: '--uncertainty with one sample',
    args: () => ['upscale', f('good.png'), ...M(), '--out-dir', out, '--uncertainty', join(out, 'u.png')],
    code: 2,
    match: /--samples ≥ 2/,
  },
  { name: 'bad --consistency', args: () => ['upscale', f('good.png'), ...M(), '--out-dir', out, '--consistency', 'strict'], code: 2, match: /none or exact/ },
  { name: 'bad --format', args: () => ['upscale', f('good.png'), ...M(), '--out-dir', out, '--format', 'bmp'], code: 2, match: /png, jpg or webp/ },
  { name: 'bad --tile', args: () => ['upscale', f('good.png'), ...M(), '--out-dir', out, '--tile', 'big'], code: 2, match: /--tile/ },
  { name: 'bad --max-memory', args: () => ['upscale', f('good.png'), ...M(), '--out-dir', out, '--max-memory', '0'], code: 2, match: /--max-memory/ },
  { name: '--out-dir is a file', args: () => ['upscale', f('good.png'), ...M(), '--out-dir', f('good2.png')], code: 2, match: /is a file/ },
  { name: 'eval: missing folder', args: () => ['eval', '--hr', f('nothing'), ...M()], code: 1, match: /nothing/ },
  { name: 'eval: zero samples', args: () => ['eval', '--hr', dir, ...M(), '--samples', '0'], code: 2, match: /--samples/ },
  { name: 'eval: no --hr', args: () => ['eval', ...M()], code: 2, match: /--hr/ },
  { name: 'eval: bad temperatures', args: () => ['eval', '--hr', dir, ...M(), '--temperatures', '0,-1'], code: 2, match: /--temperatures/ },
  {
    name: 'encode: missing HR image',
    args: () => ['encode', ...M(), '--hr', f('nope.png'), '-o', join(out, 'z.safetensors')],
    code: 1,
    match: /nope\.png: file not found/,
  },
  {
    name: 'encode: HR and LR sizes disagree',
    args: () => ['encode', ...M(), '--hr', f('good.png'), '--lr', f('good2.png'), '-o', join(out, 'z.safetensors')],
    code: 1,
    match: /4× the LR/,
  },
  {
    name: 'decode: a model file as latents',
    args: () => ['decode', ...M(), '--lr', f('good.png'), '--latents', f('tiny.safetensors'), '-o', join(out, 'd.png')],
    code: 1,
    match: /not srflow-latents/,
  },
  {
    name: 'decode: missing latents',
    args: () => ['decode', ...M(), '--lr', f('good.png'), '--latents', f('none.safetensors'), '-o', join(out, 'd.png')],
    code: 1,
    match: /Cannot read latents/,
  },
  {
    name: 'decode: negative temperature',
    args: () => ['decode', ...M(), '--lr', f('good.png'), '--latents', f('none.safetensors'), '-o', join(out, 'd.png'), '--temperature', '-1'],
    code: 2,
    match: /--temperature/,
  },
];

function listing(): string[] {
  return [...readdirSync(dir).map((n) => `top/${n}`), ...readdirSync(out).map((n) => `out/${n}`)].sort();
}

test('every bad case: one srflow: line, no stack, the right exit code, no new files', async () => {
  const files = listing();
  const failures: string[] = [];
  // two at a time
  const queue = cases.slice();
  const worker = async () => {
    for (let c = queue.shift(); c; c = queue.shift()) {
      const r = await run(c.args(), c.env?.() ?? {});
      const lines = r.stderr.trimEnd().split('\n');
      const problems: string[] = [];
      if (r.code !== c.code) problems.push(`exit ${r.code}, expected ${c.code}`);
      if (lines.length !== 1) problems.push(`${lines.length} stderr lines`);
      if (!lines[0].startsWith('srflow: ')) problems.push('no srflow: prefix');
      if (/\n\s+at /.test(r.stderr) || /Error: /.test(r.stderr)) problems.push('stack trace or raw error name');
      if (!c.match.test(lines[0])) problems.push(`message does not match ${c.match}`);
      if (problems.length) failures.push(`${c.name}: ${problems.join('; ')}\n    stderr: ${r.stderr.trimEnd()}`);
    }
  };
  await Promise.all([worker(), worker()]);
  assert.deepEqual(failures, []);
  assert.deepEqual(listing(), files, 'no new files');
});

test('--verbose adds the stack trace to a failure', async () => {
  const r = await run(['upscale', f('text.png'), ...M(), '--out-dir', out, '--verbose']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^srflow: Cannot read image/);
  assert.match(r.stderr, /\n\s+at /);
});
