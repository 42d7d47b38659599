/**
 * The web page loads a model file the user picks (here a published-layout RRDB_*.pth, read in the
 * browser) and upscales with it: the output is the RRDB's own output, as the CLI computes it.
 * Headless Chromium as in e2e.test.ts; the page is built by that test's vite build when present.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { createModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { Tensor } from '../../src/tensor/tensor.js';
import type { RawTensor } from '../../src/io/safetensors.js';
import { buildPth } from '../helpers/pth-writer.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test(
  'web page: a picked RRDB_*.pth is loaded in the browser and upscales deterministically',
  { skip: !existsSync(CHROMIUM) && `${CHROMIUM} not found` },
  async () => {
    const b = spawnSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'web/vite.config.ts'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(b.status, 0, `vite build failed:\n${b.stdout}\n${b.stderr}`);
    const model = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0] }), 21);
    const t = new Map<string, RawTensor>();
    for (const [n, p] of model.net.rrdbParameters()) t.set(n.slice(5), { shape: p.shape, data: p.data as Float32Array });
    const pth = Buffer.from(buildPth(t));
    const w = 12;
    const h = 10;
    const raw = Buffer.alloc(w * h * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = Math.round(127 + 100 * Math.sin(i * 0.3));
    const png = await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toBuffer();

    const { serve } = await import('../../web/serve.js');
    const { chromium } = await import('playwright-core');
    const { server, url } = await serve({ port: 0 });
    const profile = mkdtempSync(join(tmpdir(), 'srflow-chromium-'));
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const errors: string[] = [];
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      page.on('pageerror', (e) => errors.push(e.message));
      const waitState = (states: string[], timeout = 60_000) =>
        page.waitForFunction((s) => s.includes(document.body.dataset.state ?? ''), states, { timeout, polling: 50 });
      await page.goto(url);
      await waitState(['ready', 'error']);
      // a file that is no model: a clear message
      await page.setInputFiles('#model-file', { name: 'notes.pth', mimeType: 'application/octet-stream', buffer: Buffer.from('not a model') });
      await waitState(['error']);
      assert.match((await page.textContent('#status')) ?? '', /notes\.pth is not a PyTorch checkpoint/);
      await page.setInputFiles('#model-file', { name: 'RRDB_tiny.pth', mimeType: 'application/octet-stream', buffer: pth });
      await page.waitForFunction(() => /RRDB_tiny\.pth \(/.test(document.getElementById('model-badge')?.textContent ?? ''), null, {
        timeout: 60_000,
        polling: 50,
      });
      assert.match((await page.textContent('#run')) ?? '', /Upscale 4× \(RRDB/);
      await page.setInputFiles('#file', { name: 'small.png', mimeType: 'image/png', buffer: png });
      await waitState(['ready']);
      await page.fill('#samples', '1');
      await page.click('#run');
      await waitState(['done', 'error']);
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', (await page.textContent('#status')) ?? '');
      const got = await page.evaluate(() => {
        const c = document.querySelector<HTMLCanvasElement>('canvas.sample')!;
        return { w: c.width, h: c.height, px: Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data) };
      });
      assert.deepEqual([got.w, got.h], [4 * w, 4 * h]);
      const n = w * h;
      const data = new Float32Array(3 * n);
      for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) data[c * n + i] = raw[3 * i + c] / 255;
      const out = model.net.rrdb.forward(new Tensor(data, [1, 3, h, w]), { withOut: true }).out as Tensor;
      const N = 16 * n;
      let worst = 0;
      for (let i = 0; i < N; i++)
        for (let c = 0; c < 3; c++) {
          worst = Math.max(worst, Math.abs(got.px[4 * i + c] - Math.round(Math.min(1, Math.max(0, out.data[c * N + i])) * 255)));
        }
      assert.ok(worst <= 1, `page vs the RRDB: max |Δ| = ${worst}/255`);
      assert.deepEqual(errors, []);
    } finally {
      await ctx.close();
      server.close();
      rmSync(profile, { recursive: true, force: true });
    }
  },
);
