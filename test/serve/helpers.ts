/**
 * Helpers for the job-service tests: a Redis on loopback (CI's, or one started here), the CLI as
 * child processes, a small synthetic model, test images, polling with bounds.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { createModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { upscale } from '../../src/upscale/index.js';
import { randomiseModel } from '../helpers/model.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `f` until it returns a value other than undefined; throws after `timeoutMs`. */
export async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, timeoutMs = 120_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A Redis for the integration tests: SRFLOW_TEST_REDIS_URL (CI starts one on loopback), else a
 * redis-server started here on a free loopback port, else the reason there is none (tests skip).
 */
export async function testRedis(o: { own?: boolean; port?: number } = {}): Promise<{ url: string; stop: () => Promise<void> } | { skip: string }> {
  const env = process.env.SRFLOW_TEST_REDIS_URL;
  if (env && !o.own) return { url: env, stop: async () => {} };
  const which = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (which.error || which.status !== 0) {
    return {
      skip: 'redis-server is not installed (apt-get install redis-server; .ci/run installs it) and SRFLOW_TEST_REDIS_URL is not set: Redis tests skipped',
    };
  }
  const port = o.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'srflow-redis-'));
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const stop = async () => {
    if (p.exitCode === null) {
      p.kill('SIGTERM');
      await Promise.race([new Promise((r) => p.once('exit', r)), sleep(5000)]);
      if (p.exitCode === null) p.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const { Redis } = await import('ioredis');
  const r = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {}); // refused until it is up
  try {
    await until(
      'redis-server to answer',
      async () => {
        try {
          if (r.status !== 'ready') await r.connect();
          return (await r.ping()) === 'PONG' ? true : undefined;
        } catch {
          r.disconnect();
          return undefined;
        }
      },
      10_000,
      100,
    );
  } catch (e) {
    await stop();
    return { skip: `redis-server did not start: ${(e as Error).message}` };
  } finally {
    r.disconnect();
  }
  return { url: `redis://127.0.0.1:${port}`, stop };
}

/** A CLI process (`srflow <args>` from the sources) with its output collected. */
export class Cli {
  readonly p: ChildProcess;
  out = '';
  err = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[]) {
    this.p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.p.stdout!.on('data', (d) => (this.out += d));
    this.p.stderr!.on('data', (d) => (this.err += d));
    this.exited = new Promise((resolve) => this.p.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Wait until stdout matches; returns the match. */
  async waitFor(re: RegExp, timeoutMs = 180_000): Promise<RegExpMatchArray> {
    return until(
      `${re} in the output of a CLI process (stdout so far: ${JSON.stringify(this.out.slice(-400))}, stderr: ${JSON.stringify(this.err.slice(-400))})`,
      () => {
        if (this.p.exitCode !== null && !re.test(this.out))
          throw new Error(`the process exited (${this.p.exitCode}) before printing ${re}: ${this.err.slice(-600)}`);
        return this.out.match(re) ?? undefined;
      },
      timeoutMs,
      50,
    );
  }

  /** Stop it (SIGTERM, then SIGKILL after 10 s) and wait for the exit. */
  async stop(): Promise<void> {
    if (this.p.exitCode !== null || this.p.signalCode !== null) return;
    this.p.kill('SIGTERM');
    const t = setTimeout(() => this.p.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(t);
  }
}

/** Start `srflow serve` and return its base URL. */
export async function startServe(args: string[]): Promise<{ cli: Cli; base: string }> {
  const cli = new Cli(['serve', '--port', '0', '--host', '127.0.0.1', ...args]);
  const m = await cli.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
  return { cli, base: m[1] };
}

/** A small random SRFlow model (4×) saved to `dir`; jobs with it take a fraction of a second. */
export async function tinyModel(dir: string, name = 'tiny'): Promise<string> {
  const m = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 }), 1);
  randomiseModel(m, 3);
  const path = join(dir, `${name}.safetensors`);
  await m.save(path);
  return path;
}

export function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A smooth RGB PNG, different for each `k`. */
export async function testPng(w: number, h: number, k = 0): Promise<Buffer> {
  const b = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) b[(y * w + x) * 3 + c] = Math.round(255 * (0.5 + 0.3 * Math.sin(x / 3 + c + k) * Math.cos(y / 4 - k)));
    }
  }
  return sharp(b, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

/** What the library itself makes of an image: the reference the service's outputs must equal. */
export async function expected(modelPath: string, png: Buffer, o: { temperature: number; seed: number; samples?: number }): Promise<Buffer[]> {
  const r = await upscale(png, { model: modelPath, temperature: o.temperature, seed: o.seed, samples: o.samples ?? 1, output: 'png' });
  return r.images as Buffer[];
}

/** Decoded pixels, to compare images whatever their PNG encoding. */
export async function pixels(png: Buffer): Promise<{ width: number; height: number; data: Buffer }> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data };
}

export interface JobJson {
  id: string;
  state: string;
  progress: number;
  outputs: { url: string; temperature: number; seed: number; width: number; height: number }[];
  error?: string;
}

export async function postImage(
  base: string,
  body: Buffer | string,
  query = '',
  type = 'image/png',
): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${base}/v1/jobs${query ? `?${query}` : ''}`, {
    method: 'POST',
    body: typeof body === 'string' ? body : new Uint8Array(body),
    headers: { 'content-type': type },
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

export async function getJob(base: string, id: string): Promise<JobJson> {
  const r = await fetch(`${base}/v1/jobs/${id}`);
  if (r.status !== 200) throw new Error(`GET /v1/jobs/${id}: ${r.status} ${await r.text()}`);
  return (await r.json()) as JobJson;
}

/** Wait until a job is in one of `states`. */
export async function waitState(base: string, id: string, states: string[], timeoutMs = 180_000): Promise<JobJson> {
  return until(
    `job ${id} to be ${states.join('/')}`,
    async () => {
      const j = await getJob(base, id);
      return states.includes(j.state) ? j : undefined;
    },
    timeoutMs,
    100,
  );
}

export async function getBytes(base: string, path: string): Promise<{ status: number; type: string | null; bytes: Buffer }> {
  const r = await fetch(`${base}${path}`);
  return { status: r.status, type: r.headers.get('content-type'), bytes: Buffer.from(await r.arrayBuffer()) };
}

/** Post `pngs`, wait for all, check each output equals the library's for the same image and seed. */
export async function runTenJobs(base: string, modelPath: string, pngs: Buffer[], timeoutMs = 120_000): Promise<string[]> {
  const ids: string[] = [];
  for (let k = 0; k < pngs.length; k++) {
    const r = await postImage(base, pngs[k], `temperature=0.8&seed=${k}`);
    assert.equal(r.status, 202, JSON.stringify(r.json));
    assert.match(String(r.json.id), /^[0-9a-f-]{36}$/);
    ids.push(String(r.json.id));
  }
  for (let k = 0; k < ids.length; k++) {
    const j = await waitState(base, ids[k], ['done', 'failed', 'cancelled'], timeoutMs);
    assert.equal(j.state, 'done', `job ${k}: ${j.error}`);
    assert.equal(j.progress, 1);
    assert.equal(j.outputs.length, 1);
    const o = j.outputs[0];
    assert.deepEqual({ temperature: o.temperature, seed: o.seed }, { temperature: 0.8, seed: k });
    const got = await getBytes(base, o.url);
    assert.equal(got.status, 200);
    assert.equal(got.type, 'image/png');
    const img = await pixels(got.bytes);
    const src = await pixels(pngs[k]);
    assert.deepEqual([img.width, img.height, o.width, o.height], [4 * src.width, 4 * src.height, 4 * src.width, 4 * src.height], `job ${k}: 4× output`);
    const want = await pixels((await expected(modelPath, pngs[k], { temperature: 0.8, seed: k }))[0]);
    assert.ok(img.data.equals(want.data), `job ${k}: output equals the library's upscale() of the same image, temperature and seed`);
  }
  return ids;
}
