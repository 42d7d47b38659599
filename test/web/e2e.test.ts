/**
 * End to end in real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
 * build the page (web/), serve it cross-origin isolated on a free localhost port, reject a
 * non-image and a too-large image, upscale a 24×24 image to 96×96 samples that differ, save a
 * screenshot (to a temporary folder; SRFLOW_SCREENSHOT=docs/screenshots/web.png refreshes the
 * committed one), cancel a long run, and switch to the 8× model (12×12 → 96×96, equal to the CLI
 * engine's sample with the same model).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const haveChromium = existsSync(CHROMIUM);

/**
 * A small synthetic photo-like RGB test image (gradient sky, a disc, stripes): raw RGB bytes.
 * The disc's colour is moderate on purpose: on a flat, strongly saturated disc (240, 190, 40) the
 * shipped model's τ = 0.8 samples blow up (models/README.md, known limitations), and there the
 * inverse flow amplifies float rounding, so two correct engines no longer agree pixel for pixel.
 */
function testRaw(w: number, h: number): Buffer {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = 3 * (y * w + x);
      const u = x / w;
      const v = y / h;
      let r = 90 + 120 * v;
      let g = 140 + 80 * u;
      let b = 230 - 60 * v;
      if ((u - 0.62) ** 2 + (v - 0.38) ** 2 < 0.05) [r, g, b] = [200, 160, 80];
      if (v > 0.7) [r, g, b] = Math.floor(x / Math.max(1, w / 8)) % 2 ? [60, 130, 50] : [90, 160, 70];
      raw[i] = r;
      raw[i + 1] = g;
      raw[i + 2] = b;
    }
  }
  return raw;
}

async function testPng(w: number, h: number): Promise<Buffer> {
  return sharp(testRaw(w, h), { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

/** Sample 1 of the same image, model (the page's 4× or 8× one), τ and seed computed here by the CLI's engine (native or reference kernels). */
async function cliSample(w: number, h: number, temperature: number, seed: number, scale: 4 | 8 = 4, opts: { guard?: boolean } = {}): Promise<Uint8Array> {
  const { loadModel } = await import('../../src/models/api.js');
  const { superResolve } = await import('../../src/upscale/engine.js');
  const model = await loadModel(join(ROOT, `web/dist/model/srflow-${scale}x.safetensors`));
  const raw = testRaw(w, h);
  const n = w * h;
  const data = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) data[c * n + i] = raw[3 * i + c] / 255;
  // as the page runs it: the model's default consistency, its guard unless turned off
  const r = await superResolve(
    model,
    { data, channels: 3, height: h, width: w },
    { draws: [{ temperature, seed }], maxMemoryMB: 1024, consistency: model.net.defaultConsistency, ...(opts.guard === false ? { guard: false } : {}) },
  );
  const s = r.samples[0];
  const N = s.width * s.height;
  const out = new Uint8Array(4 * N);
  for (let i = 0; i < N; i++) {
    for (let c = 0; c < 3; c++) out[4 * i + c] = Math.round(s.data[c * N + i] * 255);
    out[4 * i + 3] = 255;
  }
  return out;
}

let built = false;
/** vite build of the page, once per run of this file. */
function buildOnce(): void {
  if (built) return;
  const b = spawnSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'web/vite.config.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(b.status, 0, `vite build failed:\n${b.stdout}\n${b.stderr}`);
  built = true;
}

/** Chromium without a GPU: the page runs the WebAssembly kernels. */
const WASM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * The built page served cross-origin isolated on a free port, in a fresh headless Chromium profile:
 * the page, its URL, the page errors seen, a wait for `document.body.dataset.state`, and close().
 */
async function openPage(args: string[]) {
  buildOnce();
  const { serve } = await import('../../web/serve.js');
  const { chromium } = await import('playwright-core');
  const { server, url } = await serve({ port: 0 });
  const profile = mkdtempSync(join(tmpdir(), 'srflow-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, viewport: { width: 1100, height: 900 }, args });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const waitState = (states: string[], timeout = 60_000) =>
    page.waitForFunction((s) => s.includes(document.body.dataset.state ?? ''), states, { timeout, polling: 50 });
  const close = async () => {
    await ctx.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { page, url, errors, waitState, close };
}

test(
  'web page in headless Chromium: upscale, uncertainty, errors, cancel, screenshot',
  { skip: !haveChromium && `${CHROMIUM} not found: install it (apt-get install -y chromium); .ci/run does` },
  async () => {
    const t0 = Date.now();
    const { page, url, errors, waitState, close } = await openPage(WASM_ARGS);
    try {
      const state = () => page.evaluate(() => document.body.dataset.state);

      await page.goto(url);
      await waitState(['ready', 'error']);
      assert.equal(await state(), 'ready', (await page.textContent('#status')) ?? '');
      assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'served cross-origin isolated');
      // --disable-gpu: Chromium offers no WebGPU adapter, so the page runs WebAssembly and says so
      assert.match((await page.textContent('#backend')) ?? '', /WebAssembly SIMD, \d+ thread/);
      assert.equal(await page.evaluate(() => document.body.dataset.backend), 'wasm');
      assert.match((await page.textContent('#model-badge')) ?? '', /untrained demo model|model: /);

      // clear messages for a file that is not an image and for a too-large image
      await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image') });
      await waitState(['error']);
      assert.match((await page.textContent('#status')) ?? '', /not an image/);
      await page.setInputFiles('#file', { name: 'big.png', mimeType: 'image/png', buffer: await testPng(600, 520) });
      // the state is already 'error' from the previous file: wait for this file's message
      await page.waitForFunction(() => /600×520/.test(document.querySelector('#status')?.textContent ?? ''), null, { timeout: 60_000, polling: 50 });
      assert.equal(await state(), 'error');
      assert.match((await page.textContent('#status')) ?? '', /600×520: too large .*at most 512×512/);
      assert.equal(await page.isDisabled('#run'), true);

      // 24×24 → 96×96, three samples
      await page.setInputFiles('#file', { name: 'scene.png', mimeType: 'image/png', buffer: await testPng(24, 24) });
      await waitState(['ready']);
      await page.fill('#samples', '3');
      await page.click('#run');
      await waitState(['done', 'error']);
      assert.equal(await state(), 'done', (await page.textContent('#status')) ?? '');
      const out = await page.evaluate(() => {
        const cs = [...document.querySelectorAll<HTMLCanvasElement>('canvas.sample')];
        const px = cs.map((c) => Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data));
        let diff = 0;
        for (let i = 0; i < px[0].length; i++) diff += Math.abs(px[0][i] - px[1][i]);
        const u = document.querySelector<HTMLCanvasElement>('#uncertainty')!;
        const links = [...document.querySelectorAll<HTMLAnchorElement>('a.dl')].map((a) => a.href);
        return { sizes: cs.map((c) => [c.width, c.height]), meanAbsDiff: diff / px[0].length, std: [u.width, u.height], links, first: px[0] };
      });
      assert.deepEqual(out.sizes, [
        [96, 96],
        [96, 96],
        [96, 96],
      ]);
      assert.ok(out.meanAbsDiff > 0.5, `samples 1 and 2 differ (mean |Δ| = ${out.meanAbsDiff})`);
      assert.deepEqual(out.std, [96, 96]);
      // the page computes what the CLI's engine computes (up to float rounding of the kernels)
      const want = await cliSample(24, 24, 0.8, 0);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i] - out.first[i]));
      assert.ok(worst <= 2, `page sample 1 vs the CLI engine: max |Δ| = ${worst}/255`);
      await page.waitForFunction(() => [...document.querySelectorAll<HTMLAnchorElement>('a.dl')].every((a) => a.href.startsWith('blob:')), null, {
        timeout: 10_000,
      });
      assert.equal(out.links.length, 5);
      // The screenshot goes to a temporary folder, so test runs leave the work tree alone;
      // SRFLOW_SCREENSHOT=docs/screenshots/web.png refreshes the committed one.
      const shotPath = process.env.SRFLOW_SCREENSHOT ? join(ROOT, process.env.SRFLOW_SCREENSHOT) : join(mkdtempSync(join(tmpdir(), 'srflow-shot-')), 'web.png');
      mkdirSync(dirname(shotPath), { recursive: true });
      await page.screenshot({ path: shotPath, fullPage: true });
      const shot = await sharp(shotPath).metadata();
      assert.ok(
        shot.format === 'png' && (shot.width ?? 0) > 600 && (shot.height ?? 0) > 400,
        `screenshot ${shotPath}: ${shot.format} ${shot.width}×${shot.height}`,
      );
      const doneText = await page.textContent('#timing');

      // cancel a long run: the worker is stopped, no result arrives, and a fresh one gets ready
      await page.setInputFiles('#file', { name: 'large.png', mimeType: 'image/png', buffer: await testPng(320, 320) });
      await waitState(['ready']);
      await page.fill('#samples', '8');
      await page.click('#run');
      await waitState(['running']);
      await page.waitForFunction(() => /Working/.test(document.getElementById('status')!.textContent ?? ''), null, { timeout: 10_000 });
      assert.equal(await page.isEnabled('#cancel'), true);
      await page.click('#cancel');
      assert.equal(await state(), 'cancelled');
      assert.match((await page.textContent('#status')) ?? '', /Cancelled/);
      await page.waitForFunction(() => !(document.getElementById('run') as HTMLButtonElement).disabled, null, { timeout: 30_000 });
      assert.equal(await page.textContent('#timing'), doneText, 'no result after cancel');
      assert.equal(await state(), 'cancelled');
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
    assert.ok(Date.now() - t0 < 90_000, `took ${Date.now() - t0} ms`);
  },
);

test(
  'web page in headless Chromium: the 8× choice loads the 8× model and gives 8× outputs',
  { skip: !haveChromium && `${CHROMIUM} not found: install it (apt-get install -y chromium); .ci/run does` },
  async () => {
    const { page, url, errors, waitState, close } = await openPage(WASM_ARGS);
    const fetched: string[] = [];
    try {
      page.on('request', (r) => fetched.push(new URL(r.url()).pathname));
      const state = () => page.evaluate(() => document.body.dataset.state);
      await page.goto(url);
      await waitState(['ready', 'error']);
      assert.equal(await state(), 'ready', (await page.textContent('#status')) ?? '');
      // both scales are offered; only the 4× model is downloaded until 8× is chosen
      assert.deepEqual(await page.$$eval('#scale option', (os) => os.map((o) => (o as HTMLOptionElement).value)), ['4', '8']);
      assert.equal(await page.inputValue('#scale'), '4');
      assert.match((await page.textContent('#run')) ?? '', /Upscale 4×/);
      assert.ok(fetched.includes('/model/srflow-4x.safetensors') && !fetched.includes('/model/srflow-8x.safetensors'), fetched.join(' '));
      // a 300×300 image fits 4× (at most 512) but not 8× (at most 256): switching says so
      await page.setInputFiles('#file', { name: 'mid.png', mimeType: 'image/png', buffer: await testPng(300, 300) });
      await waitState(['ready']);
      await page.selectOption('#scale', '8');
      await waitState(['error']);
      assert.match((await page.textContent('#status')) ?? '', /300×300: too large for the browser at 8× \(at most 256×256; the output would be 2400×2400\)/);
      assert.ok(fetched.includes('/model/srflow-8x.safetensors'));
      assert.match((await page.textContent('#run')) ?? '', /Upscale 8×/);
      // 12×12 → 96×96 at 8×, two samples, sample 1 equal to the CLI engine's with the 8× model
      await page.setInputFiles('#file', { name: 'small.png', mimeType: 'image/png', buffer: await testPng(12, 12) });
      await waitState(['ready']);
      assert.match((await page.textContent('#drop-text')) ?? '', /12×12 → 96×96/);
      await page.fill('#samples', '2');
      await page.click('#run');
      await waitState(['done', 'error']);
      assert.equal(await state(), 'done', (await page.textContent('#status')) ?? '');
      const out = await page.evaluate(() => {
        const cs = [...document.querySelectorAll<HTMLCanvasElement>('canvas.sample')];
        const links = [...document.querySelectorAll<HTMLAnchorElement>('a.dl')].map((a) => a.download);
        return {
          sizes: cs.map((c) => [c.width, c.height]),
          first: Array.from(cs[0].getContext('2d')!.getImageData(0, 0, cs[0].width, cs[0].height).data),
          links,
        };
      });
      assert.deepEqual(out.sizes, [
        [96, 96],
        [96, 96],
      ]);
      assert.ok(out.links.includes('small_x8_t0.80_s1.png'), out.links.join(' '));
      const want = await cliSample(12, 12, 0.8, 0, 8);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i] - out.first[i]));
      assert.ok(worst <= 2, `page 8× sample 1 vs the CLI engine: max |Δ| = ${worst}/255`);
      // back to 4×: the model is already in memory (no second download), and outputs are 4× again
      const before = fetched.filter((p) => p.endsWith('.safetensors')).length;
      await page.selectOption('#scale', '4');
      await waitState(['ready']);
      assert.match((await page.textContent('#run')) ?? '', /Upscale 4×/);
      assert.equal(fetched.filter((p) => p.endsWith('.safetensors')).length, before);
      assert.match((await page.textContent('#drop-text')) ?? '', /12×12 → 48×48/);
      // ?scale=8 preselects the 8× model
      await page.goto(`${url}?scale=8`);
      await waitState(['ready', 'error']);
      assert.equal(await page.inputValue('#scale'), '8');
      assert.match((await page.textContent('#run')) ?? '', /Upscale 8×/);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  },
);

/** Chromium's WebGPU on SwiftShader (its CPU Vulkan), headless: no --disable-gpu. */
const WEBGPU_ARGS = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

test(
  'web page in headless Chromium: WebGPU (SwiftShader) when offered, WebAssembly otherwise, the same sample to ≤ 1/255',
  { skip: !haveChromium && `${CHROMIUM} not found: install it (apt-get install -y chromium); .ci/run does` },
  async (t) => {
    const { page, url, errors, close } = await openPage(WEBGPU_ARGS);
    try {
      await page.goto(url);
      const adapter = await page.evaluate(async () => {
        const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
        return gpu ? (await gpu.requestAdapter()) !== null : false;
      });
      if (!adapter) {
        t.skip('Chromium offers no WebGPU adapter here (flags --enable-unsafe-webgpu --use-webgpu-adapter=swiftshader)');
        return;
      }
      const waitState = (states: string[], timeout = 120_000) =>
        page.waitForFunction((s) => s.includes(document.body.dataset.state ?? ''), states, { timeout, polling: 50 });
      // 8×8 → 32×32, one sample at τ = 0.8, seed 0 (SwiftShader is slow: the smallest input)
      const png = await testPng(8, 8);
      const runOnce = async (query: string) => {
        await page.goto(url + query);
        await waitState(['ready', 'error']);
        assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready', (await page.textContent('#status')) ?? '');
        const backend = { kind: await page.evaluate(() => document.body.dataset.backend), label: (await page.textContent('#backend')) ?? '' };
        await page.setInputFiles('#file', { name: 'tiny.png', mimeType: 'image/png', buffer: png });
        await waitState(['ready']);
        await page.fill('#samples', '1');
        await page.click('#run');
        await waitState(['done', 'error'], 240_000);
        assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', (await page.textContent('#status')) ?? '');
        const px = await page.evaluate(() => {
          const c = document.querySelector<HTMLCanvasElement>('canvas.sample')!;
          return { size: [c.width, c.height], data: Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data) };
        });
        return { backend, timing: (await page.textContent('#timing')) ?? '', ...px };
      };
      // the sampling guard runs on the CPU backends only: both without it (?guard=0) to compare the kernels
      const g = await runOnce('?guard=0');
      assert.equal(g.backend.kind, 'webgpu', `auto picks WebGPU when offered: ${g.backend.label}`);
      assert.match(g.backend.label, /^WebGPU \(.*swiftshader/i);
      assert.match(g.timing, /on WebGPU/);
      const w = await runOnce('?backend=wasm&guard=0');
      assert.equal(w.backend.kind, 'wasm');
      assert.match(w.backend.label, /WebAssembly SIMD/);
      assert.match(w.timing, /on WebAssembly/);
      assert.deepEqual(g.size, [32, 32]);
      assert.deepEqual(w.size, [32, 32]);
      let worst = 0;
      for (let i = 0; i < g.data.length; i++) worst = Math.max(worst, Math.abs(g.data[i] - w.data[i]));
      assert.ok(worst <= 1, `WebGPU vs WebAssembly sample: max |Δ| = ${worst}/255`);
      // and both are the CLI engine's sample
      const want = await cliSample(8, 8, 0.8, 0, 4, { guard: false });
      let worstCli = 0;
      for (let i = 0; i < want.length; i++) worstCli = Math.max(worstCli, Math.abs(want[i] - g.data[i]));
      assert.ok(worstCli <= 1, `WebGPU page sample vs the CLI engine: max |Δ| = ${worstCli}/255`);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  },
);
