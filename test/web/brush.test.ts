/**
 * The temperature brush in real headless Chromium: paint all of a 32×32 input but its left part, run two
 * samples, and check that they agree (τ 0, the mean) on the left quarter and differ on the right.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function scene(w: number, h: number): Buffer {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) raw[3 * (y * w + x) + c] = Math.round(120 + 50 * Math.sin(x / 3 + c) * Math.cos(y / 4));
  return raw;
}

test('web page: the temperature brush keeps unpainted regions at the mean', { skip: !existsSync(CHROMIUM) && `${CHROMIUM} not found` }, async () => {
  const b = spawnSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'web/vite.config.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(b.status, 0, `vite build failed:\n${b.stdout}\n${b.stderr}`);
  const { serve } = await import('../../web/serve.js');
  const { chromium } = await import('playwright-core');
  const { server, url } = await serve({ port: 0 });
  const profile = mkdtempSync(join(tmpdir(), 'srflow-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 1200 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const waitState = (states: string[]) =>
      page.waitForFunction((s) => s.includes(document.body.dataset.state ?? ''), states, { timeout: 60_000, polling: 50 });
    await page.goto(url);
    await waitState(['ready', 'error']);
    const png = await sharp(scene(32, 32), { raw: { width: 32, height: 32, channels: 3 } })
      .png()
      .toBuffer();
    await page.setInputFiles('#file', { name: 'scene.png', mimeType: 'image/png', buffer: png });
    await waitState(['ready']);
    await page.check('#brush-on');
    // paint everything, then erase the left part with a wide brush
    await page.click('#brush-fill');
    await page.fill('#brush-size', '40');
    const box = (await page.locator('#brush-view').boundingBox())!;
    await page.check('#brush-erase');
    await page.mouse.move(box.x + box.width * 0.2, box.y + 2);
    await page.mouse.down();
    for (let k = 0; k <= 10; k++) await page.mouse.move(box.x + box.width * 0.2, box.y + (box.height * k) / 10);
    await page.mouse.up();
    await page.fill('#samples', '2');
    await page.click('#run');
    await waitState(['done', 'error']);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', (await page.textContent('#status')) ?? '');
    const px = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLCanvasElement>('canvas.sample')].map((c) => ({
        w: c.width,
        h: c.height,
        data: Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data),
      })),
    );
    const W = px[0].w;
    const H = px[0].h;
    const mse = (x0: number, x1: number) => {
      let s = 0;
      let n = 0;
      for (let y = 0; y < H; y++) {
        for (let x = x0; x < x1; x++) {
          for (let c = 0; c < 3; c++) {
            const i = 4 * (y * W + x) + c;
            s += (px[0].data[i] - px[1].data[i]) ** 2;
            n++;
          }
        }
      }
      return s / n;
    };
    const d = { left: mse(0, W / 4), right: mse((3 * W) / 4, W) };
    const db = (m: number) => (m === 0 ? Infinity : 10 * Math.log10((255 * 255) / m));
    assert.ok(db(d.left) >= 40, `left quarter ${db(d.left)} dB`);
    assert.ok(db(d.right) < 40, `right quarter ${db(d.right)} dB`);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
