/**
 * The model registry: add (checked, copied, atomic), list, use by name (`--model NAME`), remove; a
 * corrupt file is refused and the registry is left byte-for-byte untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { createModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { ModelRegistry, registryHome, sha256File } from '../../src/registry/index.js';
import { writePth } from '../helpers/pth-writer.js';
import type { RawTensor } from '../../src/io/safetensors.js';
import { runCli } from '../helpers/cli.js';

const run = runCli;

/** A small bare RRDBNet checkpoint (published RRDB_*.pth layout). */
function writeRrdb(file: string, seed: number): void {
  const m = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0] }), seed);
  const t = new Map<string, RawTensor>();
  for (const [n, p] of m.net.rrdbParameters()) t.set(n.slice(5), { shape: p.shape, data: p.data as Float32Array });
  writePth(file, t);
}

/** Every file under dir with its bytes (to prove nothing changed). */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(dir)) return out;
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(p, readFileSync(p).toString('base64'));
    }
  };
  walk(dir);
  return out;
}

test('registry home: $SRFLOW_HOME, else the platform cache folder', () => {
  assert.equal(registryHome({ SRFLOW_HOME: '/x/y' }, 'linux', '/home/u'), '/x/y');
  assert.equal(registryHome({}, 'linux', '/home/u'), '/home/u/.cache/srflow');
  assert.equal(registryHome({ XDG_CACHE_HOME: '/c' }, 'linux', '/home/u'), '/c/srflow');
  assert.equal(registryHome({}, 'darwin', '/Users/u'), '/Users/u/Library/Caches/srflow');
  assert.match(registryHome({ LOCALAPPDATA: 'C:\\L' }, 'win32', 'C:\\Users\\u'), /^C:\\L.srflow.Cache$/);
});

test('add, list, resolve, remove; refusals leave the registry untouched', () => {
  const dir = mkdtempSync(join(tmpdir(), 'srflow-reg-'));
  try {
    const home = join(dir, 'home');
    const reg = new ModelRegistry(home);
    assert.deepEqual(reg.list(), []);
    const src = join(dir, 'RRDB_DF2K_4X.pth');
    writeRrdb(src, 1);
    const e = reg.add(src);
    assert.equal(e.name, 'RRDB_DF2K_4X');
    assert.equal(e.kind, 'rrdb');
    assert.equal(e.scale, 4);
    assert.equal(e.sha256, sha256File(src));
    assert.equal(e.bytes, statSync(src).size);
    assert.deepEqual(readFileSync(reg.pathOf(e)), readFileSync(src), 'stored copy is identical');
    assert.deepEqual(
      reg.list().map((x) => x.name),
      ['RRDB_DF2K_4X'],
    );
    const r = reg.resolve('RRDB_DF2K_4X');
    assert.equal(r?.path, join(home, 'models', 'RRDB_DF2K_4X.pth'));
    assert.equal(reg.resolve('nope'), null);

    // refusals: duplicate name, bad name, corrupt file, missing file: nothing changes
    const before = snapshot(home);
    assert.throws(() => reg.add(src), /already registered/);
    assert.throws(() => reg.add(src, { name: '../evil' }), /Expected a model name/);
    const corrupt = join(dir, 'corrupt.pth');
    const bytes = readFileSync(src);
    writeFileSync(corrupt, bytes.subarray(0, bytes.length - 100)); // truncated
    assert.throws(() => reg.add(corrupt), /Refusing to add .*corrupt\.pth: .*truncated/);
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(bytes.length / 2)] ^= 0x55; // inside a storage: CRC
    writeFileSync(corrupt, flipped);
    assert.throws(() => reg.add(corrupt), /Refusing to add .*corrupt\.pth: .*(CRC|corrupt)/);
    writeFileSync(corrupt, 'not a model');
    assert.throws(() => reg.add(corrupt), /Refusing to add/);
    assert.throws(() => reg.add(join(dir, 'missing.pth')), /Refusing to add .*missing\.pth: .*file not found/);
    assert.deepEqual(snapshot(home), before, 'registry untouched');

    const src2 = join(dir, 'other.pth');
    writeRrdb(src2, 2);
    reg.add(src2, { name: 'mine' });
    assert.deepEqual(
      reg.list().map((x) => x.name),
      ['mine', 'RRDB_DF2K_4X'],
    );
    reg.remove('RRDB_DF2K_4X');
    assert.equal(existsSync(join(home, 'models', 'RRDB_DF2K_4X.pth')), false);
    assert.deepEqual(
      reg.list().map((x) => x.name),
      ['mine'],
    );
    assert.throws(() => reg.remove('RRDB_DF2K_4X'), /No model named RRDB_DF2K_4X is registered \(registered: mine\)/);
    // no temporary files left behind
    assert.deepEqual(readdirSync(join(home, 'models')).sort(), ['mine.pth', 'registry.json']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: models add/list/remove, --model NAME for upscale and info, corrupt add refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'srflow-reg-cli-'));
  try {
    const env = { SRFLOW_HOME: join(dir, 'home') };
    const src = join(dir, 'RRDB_DF2K_4X.pth');
    writeRrdb(src, 3);
    let r = await run(['models', 'list'], env);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /no models registered/);
    r = await run(['models', 'add', src, '--name', 'rrdb4'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /added rrdb4: RRDB network/);
    r = await run(['models', 'list', '--json'], env);
    const listed = JSON.parse(r.stdout) as { models: { name: string; sha256: string }[] };
    assert.deepEqual(
      listed.models.map((m) => m.name),
      ['rrdb4'],
    );
    assert.equal(listed.models[0].sha256, sha256File(src));

    // corrupt file: exit 1, one line, registry untouched
    const before = snapshot(env.SRFLOW_HOME);
    const corrupt = join(dir, 'bad.pth');
    writeFileSync(corrupt, readFileSync(src).subarray(0, 5000));
    r = await run(['models', 'add', corrupt], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^srflow: Refusing to add .*bad\.pth/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.deepEqual(snapshot(env.SRFLOW_HOME), before);

    // use by name
    const lr = join(dir, 'lr.png');
    await sharp(Buffer.alloc(10 * 8 * 3, 120), { raw: { width: 10, height: 8, channels: 3 } })
      .png()
      .toFile(lr);
    r = await run(['upscale', lr, '--model', 'rrdb4', '-o', join(dir, 'sr.png'), '--quiet'], env);
    assert.equal(r.code, 0, r.stderr);
    const meta = await sharp(join(dir, 'sr.png')).metadata();
    assert.deepEqual([meta.width, meta.height], [40, 32]);
    r = await run(['info', 'rrdb4', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as { kind: string; sha256: string; scale: number; tensors: { matched: number } };
    assert.equal(info.kind, 'rrdb');
    assert.equal(info.scale, 4);
    assert.equal(info.sha256, sha256File(src));
    assert.equal(info.tensors.matched, 2 + 15 * 2 + 2 + 2 * 2 + 2 + 2);
    r = await run(['upscale', lr, '--model', 'nosuch', '-o', join(dir, 'x.png'), '--quiet'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No model file and no registered model named "nosuch" \(registered: rrdb4\)/);
    assert.equal(existsSync(join(dir, 'x.png')), false);

    r = await run(['models', 'remove', 'rrdb4'], env);
    assert.equal(r.code, 0, r.stderr);
    r = await run(['models', 'list', '--json'], env);
    assert.deepEqual(JSON.parse(r.stdout).models, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
