/**
 * The WebAssembly kernels (wasm/, from native/wasm/): every kernel against the float64 reference
 * on random shapes, single-threaded and threaded, SIMD-128 and portable paths; and the model
 * parity check (../shared/fixtures/parity-4x) with SRFLOW_BACKEND=wasm in a child process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createWasmKernels, createWasmKernelsSync, wasmSimdSupported, type WasmKernels } from '../../src/kernels/wasm.js';
import * as ref from '../../src/kernels/reference.js';
import type { Conv2dGeom } from '../../src/kernels/types.js';

const WASM = new URL('../../wasm/srflow-kernels.wasm', import.meta.url);
const WASM_T = new URL('../../wasm/srflow-kernels-threads.wasm', import.meta.url);
const FIX = fileURLToPath(new URL('../../../shared/fixtures/parity-4x/', import.meta.url));

let seed = 987654321;
function rnd(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}
const rint = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
const rand32 = (n: number) => Float32Array.from({ length: n }, () => rnd() * 2 - 1);
const f64 = (a: Float32Array) => Float64Array.from(a);

function expectClose(got: Float32Array, want: Float64Array, what: string): void {
  assert.equal(got.length, want.length, what);
  let d = 0;
  let s = 0;
  for (let i = 0; i < got.length; i++) {
    d += (got[i] - want[i]) ** 2;
    s += want[i] * want[i];
  }
  const e = Math.sqrt(d / (s > 0 ? s : 1));
  assert.ok(e <= 1e-5, `${what}: relative error ${e}`);
}

function convCases(): Conv2dGeom[] {
  const out: Conv2dGeom[] = [
    { n: 1, cin: 1, h: 1, w: 1, cout: 1, kh: 1, kw: 1, pad: 0 },
    { n: 1, cin: 64, h: 16, w: 16, cout: 64, kh: 3, kw: 3, pad: 1 },
    { n: 2, cin: 96, h: 12, w: 13, cout: 40, kh: 3, kw: 3, pad: 1 }, // K = 864: depth blocking
    { n: 1, cin: 6, h: 5, w: 5, cout: 7, kh: 1, kw: 1, pad: 1 }, // 1x1 with padding
    { n: 1, cin: 3, h: 6, w: 7, cout: 4, kh: 3, kw: 2, pad: 0 },
  ];
  for (let i = 0; i < 10; i++) {
    const k = [1, 3, 3][rint(0, 2)];
    out.push({ n: rint(1, 3), cin: rint(1, 40), h: rint(1, 19), w: rint(1, 37), cout: rint(1, 45), kh: k, kw: k, pad: k === 3 ? rint(0, 2) : 0 });
  }
  return out.filter((g) => g.h + 2 * g.pad - g.kh + 1 >= 1 && g.w + 2 * g.pad - g.kw + 1 >= 1);
}

function checkKernels(K: WasmKernels, label: string): void {
  for (const g of convCases()) {
    const oh = g.h + 2 * g.pad - g.kh + 1;
    const ow = g.w + 2 * g.pad - g.kw + 1;
    const tag = `${label} ${JSON.stringify(g)}`;
    const x = rand32(g.n * g.cin * g.h * g.w);
    const w = rand32(g.cout * g.cin * g.kh * g.kw);
    const b = rand32(g.cout);
    const y = rand32(g.n * g.cout * oh * ow);
    const y64 = new Float64Array(y.length);
    ref.conv2d(f64(x), f64(w), f64(b), g, y64);
    K.conv2d(x, w, b, g, y);
    expectClose(y, y64, `conv2d ${tag}`);
    const gy = rand32(y.length);
    for (const acc of [false, true]) {
      const gx = rand32(x.length);
      const gx64 = f64(gx);
      ref.conv2dBackwardData(f64(gy), f64(w), g, gx64, acc);
      K.conv2dBackwardData(gy, w, g, gx, acc);
      expectClose(gx, gx64, `conv2dBackwardData acc=${acc} ${tag}`);
      const gw = rand32(w.length);
      const gb = rand32(g.cout);
      const gw64 = f64(gw);
      const gb64 = f64(gb);
      ref.conv2dBackwardFilter(f64(gy), f64(x), g, gw64, gb64, acc);
      K.conv2dBackwardFilter(gy, x, g, gw, gb, acc);
      expectClose(gw, gw64, `conv2dBackwardFilter gw acc=${acc} ${tag}`);
      expectClose(gb, gb64, `conv2dBackwardFilter gb acc=${acc} ${tag}`);
    }
  }
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [64, 576, 100],
    [5, 300, 70],
  ];
  for (let i = 0; i < 5; i++) shapes.push([rint(1, 70), rint(1, 90), rint(1, 70)]);
  for (const [m, k, n] of shapes) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        for (const acc of [false, true]) {
          const a = rand32(m * k);
          const bm = rand32(k * n);
          const out = rand32(m * n);
          const want = f64(out);
          ref.matmul(f64(a), f64(bm), m, k, n, ta, tb, want, acc);
          K.matmul(a, bm, m, k, n, ta, tb, out, acc);
          expectClose(out, want, `matmul ${label} m=${m} k=${k} n=${n} ta=${ta} tb=${tb} acc=${acc}`);
        }
      }
    }
  }
}

test('the wasm modules are committed and this engine has WebAssembly SIMD', () => {
  assert.ok(existsSync(WASM), 'wasm/srflow-kernels.wasm (scripts/build-wasm.sh)');
  assert.ok(existsSync(WASM_T), 'wasm/srflow-kernels-threads.wasm (scripts/build-wasm.sh)');
  assert.ok(wasmSimdSupported());
  const mod = new WebAssembly.Module(readFileSync(WASM));
  assert.deepEqual(WebAssembly.Module.imports(mod), []);
});

test('single-threaded wasm kernels match the float64 reference (simd128 and scalar paths)', () => {
  const K = createWasmKernelsSync(readFileSync(WASM));
  assert.equal(K.name, 'wasm-simd128');
  assert.equal(K.threads(), 1);
  checkKernels(K, 'simd128');
  assert.equal(K.setSimd('scalar'), 'scalar');
  assert.equal(K.name, 'wasm-scalar');
  checkKernels(K, 'scalar');
  // Float64Array calls go to the reference kernels; lengths are validated.
  const g: Conv2dGeom = { n: 1, cin: 2, h: 4, w: 4, cout: 3, kh: 3, kw: 3, pad: 1 };
  const x = Float64Array.from(rand32(32));
  const w = Float64Array.from(rand32(54));
  const o1 = new Float64Array(48);
  const o2 = new Float64Array(48);
  K.conv2d(x, w, null, g, o1);
  ref.conv2d(x, w, null, g, o2);
  assert.deepEqual(o1, o2);
  assert.throws(() => K.conv2d(new Float32Array(31), new Float32Array(54), null, g, new Float32Array(48)), /Expected x of length 32/);
  K.dispose();
});

test('threaded wasm kernels (3 threads, shared memory) match the float64 reference', async () => {
  const K = await createWasmKernels({ single: WASM, threaded: WASM_T, threads: 3 });
  try {
    assert.equal(K.requestedThreads, 3);
    assert.equal(K.threads(), 3);
    assert.equal(K.name, 'wasm-simd128-threads3');
    checkKernels(K, 'threads3');
    // a call that needs the memory to grow (~100 MiB)
    const g: Conv2dGeom = { n: 1, cin: 64, h: 160, w: 160, cout: 64, kh: 3, kw: 3, pad: 1 };
    const x = rand32(64 * 160 * 160);
    const w = rand32(64 * 64 * 9);
    const y = new Float32Array(64 * 160 * 160);
    K.conv2d(x, w, null, g, y);
    const y64 = new Float64Array(y.length);
    ref.conv2d(f64(x), f64(w), null, g, y64);
    expectClose(y, y64, 'large conv2d');
    assert.ok(K.memoryBytes() > 64 * 160 * 160 * 4 * 2);
  } finally {
    K.dispose();
  }
});

test('parity fixture passes with SRFLOW_BACKEND=wasm', { skip: !existsSync(FIX + 'weights.pth') && 'fixture not found' }, () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  // the library reads no environment: the child applies it as the CLI does (src/env.ts → configureEngine)
  const script = `
    const { kernels } = await import('./src/kernels/index.ts');
    const { engineOptionsFromEnv } = await import('./src/env.ts');
    const { configureEngine } = await import('./src/models/engine.ts');
    configureEngine(engineOptionsFromEnv());
    const { loadConfigFile } = await import('./src/models/config.ts');
    const { SRFlowNet } = await import('./src/models/srflow.ts');
    const { loadStateDict } = await import('./src/models/state.ts');
    const { readPth } = await import('./src/io/pth.ts');
    const { readSafetensors } = await import('./src/io/safetensors.ts');
    const { verifyModel } = await import('./src/models/verify.ts');
    const fix = ${JSON.stringify(FIX)};
    const net = new SRFlowNet(loadConfigFile(fix + 'config.json'));
    loadStateDict(net, readPth(fix + 'weights.pth'));
    const rows = verifyModel(net, readSafetensors(fix + 'tensors.safetensors').tensors);
    console.log(JSON.stringify({ backend: kernels().name, rows: rows.length, failed: rows.filter((r) => !r.pass).map((r) => [r.name, r.relErr]) }));
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, SRFLOW_BACKEND: 'wasm', SRFLOW_THREADS: '2' },
    encoding: 'utf8',
    timeout: 300_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.match(out.backend, /^wasm-simd128/);
  assert.ok(out.rows > 30, `verified ${out.rows} tensors`);
  assert.deepEqual(out.failed, []);
});
