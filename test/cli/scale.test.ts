/**
 * `--scale 4|8` on the CLI: `srflow upscale --scale 8` picks the shipped 8x model (here tiny
 * untrained 4x and 8x models in a folder given by $SRFLOW_MODELS_DIR), a --model of another scale
 * is a usage error, a missing shipped 8x model is a failure naming the file, and nothing is written
 * on any error. `srflow eval` and `srflow encode` take the same choice.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { createModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { runCli } from '../helpers/cli.js';
import { buildProgram } from '../../src/cli/index.js';

let dir = '';
let shipped = '';
let empty = '';
const f = (name: string) => join(dir, name);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'srflow-cli-scale-'));
  shipped = f('shipped');
  empty = f('empty');
  mkdirSync(shipped);
  mkdirSync(empty);
  for (const scale of [4, 8] as const) {
    await createModel(makeOpt({ scale, nb: 1, K: 1, L: scale === 8 ? 4 : 3, blocks: [0], hidden: 8, nf: 8 }), 1).save(
      join(shipped, `srflow-${scale}x.safetensors`),
    );
  }
  const raw = Buffer.alloc(7 * 5 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = 60 + ((i * 37) % 140);
  await sharp(raw, { raw: { width: 7, height: 5, channels: 3 } })
    .png()
    .toFile(f('in.png'));
  mkdirSync(f('hr'));
  const hr = Buffer.alloc(32 * 32 * 3);
  for (let i = 0; i < hr.length; i++) hr[i] = 50 + ((i * 13) % 150);
  await sharp(hr, { raw: { width: 32, height: 32, channels: 3 } })
    .png()
    .toFile(join(f('hr'), 'a.png'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

const env = (models: string) => ({ SRFLOW_MODELS_DIR: models });

test('srflow upscale --scale 8: the shipped 8x model, 8× the size, <stem>_x8.png; the default stays 4x', async () => {
  const out = f('out8');
  const r = await runCli(['upscale', f('in.png'), '--scale', '8', '--out-dir', out, '--temperature', '0', '--json'], env(shipped));
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.scale, 8);
  assert.equal(j.images[0].outputs[0].path, join(out, 'in_x8.png'));
  const meta = await sharp(join(out, 'in_x8.png')).metadata();
  assert.deepEqual([meta.width, meta.height], [56, 40]);
  const r4 = await runCli(['upscale', f('in.png'), '--out-dir', f('out4'), '--temperature', '0', '--quiet'], env(shipped));
  assert.equal(r4.code, 0, r4.stderr);
  const m4 = await sharp(join(f('out4'), 'in_x4.png')).metadata();
  assert.deepEqual([m4.width, m4.height], [28, 20]);
});

test('srflow upscale: --scale that disagrees with --model is a usage error; a missing 8x model names the file; bad --scale', async () => {
  const out = f('bad');
  const r = await runCli(['upscale', f('in.png'), '--model', join(shipped, 'srflow-4x.safetensors'), '--scale', '8', '--out-dir', out], env(shipped));
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /^srflow: --scale 8 does not match the model .*srflow-4x\.safetensors, which upscales 4×: leave --scale out, or pass a model of scale 8\n$/,
  );
  const m = await runCli(['upscale', f('in.png'), '--scale', '8', '--out-dir', out], env(empty));
  assert.equal(m.code, 1, m.stderr);
  assert.ok(m.stderr.includes(`srflow: The shipped 8x model is not installed (${join(empty, 'srflow-8x.safetensors')} is missing)`), m.stderr);
  const b = await runCli(['upscale', f('in.png'), '--scale', '3', '--out-dir', out], env(shipped));
  assert.equal(b.code, 2);
  assert.match(b.stderr, /Expected 4 or 8 for --scale but received "3"/);
  assert.deepEqual(readdirSync(dir).sort(), ['empty', 'hr', 'in.png', 'out4', 'out8', 'shipped']);
});

test('srflow upscale --help documents --scale and the 8x model', () => {
  const help = buildProgram()
    .commands.find((c) => c.name() === 'upscale')!
    .helpInformation();
  assert.match(help, /--scale <n>/);
  assert.match(help, /models\/srflow-8x\.safetensors/);
});

test('srflow eval and srflow encode take --scale too', async () => {
  const e = await runCli(['eval', '--hr', f('hr'), '--scale', '8', '--temperatures', '0', '--json'], env(shipped));
  assert.equal(e.code, 0, e.stderr);
  assert.equal(JSON.parse(e.stdout).scale, 8);
  const enc = await runCli([
    'encode',
    '--model',
    join(shipped, 'srflow-8x.safetensors'),
    '--scale',
    '4',
    '--hr',
    join(f('hr'), 'a.png'),
    '-o',
    f('z.safetensors'),
  ]);
  assert.equal(enc.code, 2, enc.stderr);
  assert.match(enc.stderr, /--scale 4 does not match the model .*srflow-8x\.safetensors, which upscales 8×/);
});
