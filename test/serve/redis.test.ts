/**
 * `srflow serve --redis` with `srflow worker`s on a real Redis (CI's on loopback, or one started
 * here): 10 raw PNG jobs on two workers, one killed with kill -9 mid-job, all complete exactly once
 * with the library's outputs; SIGTERM drains a worker; cancelling a queued job; then every bad
 * request, 429, the time limit and cancelling a running job with a server and a worker in this
 * process. Skipped, with the reason, only when no redis-server can be had.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { buildServer } from '../../src/serve/server.js';
import { BULL_PREFIX, RedisBackend, dataKeys } from '../../src/serve/redis.js';
import { startWorker, type RunningWorker } from '../../src/serve/worker.js';
import { catalog } from '../../src/serve/models.js';
import type { Limits } from '../../src/serve/jobs.js';
import { Cli, freePort, getJob, postImage, runTenJobs, startServe, testPng, testRedis, tinyModel, tmp, until, waitState } from './helpers.js';
import { checkBadRequests, rejectedCounts, SMALL_LIMITS } from './bad-requests.js';

let redis: { url: string; stop: () => Promise<void> } | null = null;
let skip = '';
let dir = '';
let model = '';
const clis: Cli[] = [];
const closers: (() => Promise<void>)[] = [];
const queues: string[] = [];

// Short locks so a killed worker's job is taken over in seconds; generous enough for a loaded machine.
const FAST_RECOVERY = ['--lock-duration', '8000', '--stalled-interval', '1000', '--max-stalled', '5'];

before(async () => {
  const r = await testRedis();
  if ('skip' in r) {
    skip = r.skip;
    process.stderr.write(`# ${skip}\n`);
    return;
  }
  redis = r;
  dir = tmp('srflow-serve-redis-');
  model = await tinyModel(dir);
});

after(async () => {
  for (const c of clis) await c.stop();
  for (const c of closers.reverse()) await c().catch(() => {});
  if (redis) {
    // Remove what the tests left in Redis (CI's server may be shared by several test files).
    const r = new Redis(redis.url);
    for (const q of queues) {
      const qq = new Queue(q, { connection: { url: redis.url }, prefix: BULL_PREFIX });
      await qq.obliterate({ force: true }).catch(() => {});
      await qq.close();
      let cursor = '0';
      let rounds = 0;
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `srflow-data:${q}:*`, 'COUNT', 1000);
        if (keys.length) await r.del(...keys);
        cursor = next;
      } while (cursor !== '0' && ++rounds < 1000);
    }
    r.disconnect();
    await redis.stop();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function queueName(): string {
  const q = `test-${randomBytes(4).toString('hex')}`;
  queues.push(q);
  return q;
}

function worker(q: string, extra: string[] = []): Cli {
  const w = new Cli(['worker', '--redis', redis!.url, '--queue', q, '--model', model, '--threads', '1', ...FAST_RECOVERY, ...extra]);
  clis.push(w);
  return w;
}

test("Redis: serve + two workers, one killed with kill -9 mid-job: 10 raw PNG jobs complete exactly once with the library's 4× outputs", async (t) => {
  if (skip) return t.skip(skip);
  const q = queueName();
  const { cli: serve, base } = await startServe(['--redis', redis!.url, '--queue', q, '--model', model]);
  clis.push(serve);
  const w1 = worker(q);
  const w2 = worker(q);
  await Promise.all([w1.waitFor(/ready/), w2.waitFor(/ready/)]);

  // Jobs long enough (~0.5 s each) that the kill lands while one runs.
  const pngs = await Promise.all(Array.from({ length: 10 }, (_, k) => testPng(96 + k, 90, k)));
  const done = runTenJobs(base, model, pngs, 180_000);
  const m = await w1.waitFor(/job ([0-9a-f-]{36}) started/);
  w1.p.kill('SIGKILL');
  const killedJob = m[1];
  await done;
  const ex = await w1.exited;
  assert.equal(ex.signal, 'SIGKILL');
  assert.doesNotMatch(w1.out, new RegExp(`job ${killedJob} done`), 'the killed worker did not finish the job');
  assert.match(w2.out, new RegExp(`job ${killedJob} started \\(attempt 2, recovered from a stalled worker\\)`), 'the other worker took it over');

  // Exactly once: 10 completions in the queue and in the workers' statistics, none failed.
  const queue = new Queue(q, { connection: { url: redis!.url }, prefix: BULL_PREFIX });
  closers.push(() => queue.close());
  const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting');
  assert.deepEqual(counts, { completed: 10, failed: 0, active: 0, waiting: 0 });
  const job = await queue.getJob(killedJob);
  assert.ok((job?.stalledCounter ?? 0) >= 1, 'the killed job was recovered from its stalled worker');
  const r = new Redis(redis!.url);
  closers.push(async () => r.disconnect());
  assert.equal(await r.hget(dataKeys(q).stats, 'fin:done'), '10');
  assert.equal(await r.exists(dataKeys(q).input(killedJob)), 0, 'the upload is deleted once the job is done');

  // A text file posted as an image: 400 JSON; /healthz still 200; the metrics see one worker.
  const bad = await postImage(base, 'just some text\n');
  assert.equal(bad.status, 400);
  assert.match(String(bad.json.error), /not a readable image/);
  const h = await fetch(`${base}/healthz`);
  assert.equal(h.status, 200);
  assert.deepEqual(await h.json(), { status: 'ok', mode: 'redis' });
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^srflow_jobs\{state="done"\} 10$/m);
  assert.match(metrics, /^srflow_jobs_finished_total\{outcome="done"\} 10$/m);
  assert.match(metrics, /^srflow_job_duration_seconds_count 10$/m);
  assert.match(metrics, /^srflow_jobs_submitted_total 10$/m);

  // SIGTERM drains: the running job finishes, the worker exits 0 and takes nothing more.
  const slow = await testPng(96, 96, 9);
  const a = await postImage(base, slow, 'samples=4');
  const b = await postImage(base, slow, 'samples=4');
  const ida = String(a.json.id);
  const idb = String(b.json.id);
  await w2.waitFor(new RegExp(`job ${ida} started`));
  w2.p.kill('SIGTERM');
  const ex2 = await w2.exited;
  assert.equal(ex2.code, 0, w2.err);
  assert.match(w2.out, new RegExp(`SIGTERM: draining[\\s\\S]*job ${ida} done[\\s\\S]*stopped`));
  assert.equal((await getJob(base, ida)).state, 'done');
  assert.equal((await getJob(base, idb)).state, 'queued');
  assert.doesNotMatch(w2.out, new RegExp(`job ${idb} started`));
  // Cancelling the queued job: it never runs.
  const c = await fetch(`${base}/v1/jobs/${idb}`, { method: 'DELETE' });
  assert.equal(c.status, 200);
  assert.equal(((await c.json()) as { state: string }).state, 'cancelled');
  const jb = await getJob(base, idb);
  assert.deepEqual([jb.state, jb.outputs], ['cancelled', []]);
  assert.equal(await queue.getJob(idb), undefined, 'removed from the queue');
  assert.match(await (await fetch(`${base}/metrics`)).text(), /^srflow_jobs\{state="cancelled"\} 1$/m);
});

async function inProcess(q: string, limits: Limits): Promise<{ base: string }> {
  // With a models folder the server refuses unknown model names itself (without, workers do).
  const models = catalog({ model, modelsDir: dir });
  const backend = await RedisBackend.connect(redis!.url, q, limits);
  const app: FastifyInstance = await buildServer({ backend, limits, models });
  closers.push(async () => {
    await app.close();
    await backend.close();
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { base: `http://127.0.0.1:${(app.server.address() as { port: number }).port}` };
}

async function inProcessWorker(q: string): Promise<RunningWorker> {
  const w = await startWorker({
    redisUrl: redis!.url,
    queue: q,
    concurrency: 1,
    models: catalog({ model }),
    lockDurationMs: 8000,
    stalledIntervalMs: 1000,
    maxStalledCount: 5,
    log: () => {},
  });
  closers.push(() => w.close());
  return w;
}

test('Redis: every bad request is a 4xx JSON error; full queue → 429; the time limit; cancelling a running job', async (t) => {
  if (skip) return t.skip(skip);
  const q = queueName();
  const { base } = await inProcess(q, { ...SMALL_LIMITS, maxQueue: 1 });
  await checkBadRequests(base);
  const rej = await rejectedCounts(base);
  assert.equal(rej.too_large, 3);

  // No worker yet: one job waits, the next is refused.
  const slowPng = await testPng(64, 64, 4);
  const a = await postImage(base, slowPng, 'samples=8&temperature=0.5');
  assert.equal(a.status, 202);
  const full = await postImage(base, slowPng);
  assert.equal(full.status, 429);
  assert.match(String(full.json.error), /queue is full \(1 jobs waiting, limit 1\)/);
  assert.equal((await getJob(base, String(a.json.id))).state, 'queued');

  // A worker takes it; cancel it while it runs.
  await inProcessWorker(q);
  const ida = String(a.json.id);
  await waitState(base, ida, ['active', 'done'], 180_000);
  // The worker reports progress while it runs.
  await until(
    'a progress between 0 and 1 from the worker',
    async () => {
      const j = await getJob(base, ida);
      assert.equal(j.state, 'active', 'the slow job stopped running before its progress was seen');
      return j.progress > 0 && j.progress < 1 ? true : undefined;
    },
    180_000,
    20,
  );
  const c = await fetch(`${base}/v1/jobs/${ida}`, { method: 'DELETE' });
  assert.equal(c.status, 200);
  assert.equal((await getJob(base, ida)).state, 'cancelled');
  const r = new Redis(redis!.url);
  closers.push(async () => r.disconnect());
  await until('the worker to stop the cancelled job', async () => ((await r.hget(dataKeys(q).stats, 'fin:cancelled')) === '1' ? true : undefined), 30_000);
  const after = await getJob(base, ida);
  assert.deepEqual([after.state, after.outputs], ['cancelled', []]);

  // The time limit travels with the job: a server with a 50 ms limit, same queue and worker.
  const { base: strict } = await inProcess(q, { ...SMALL_LIMITS, jobTimeoutMs: 50 });
  const tj = await postImage(strict, slowPng, 'samples=8');
  assert.equal(tj.status, 202);
  const jt = await waitState(strict, String(tj.json.id), ['done', 'failed'], 180_000);
  assert.equal(jt.state, 'failed');
  assert.match(String(jt.error), /timed out after 0\.05 s/);

  // Still serving: a normal job completes, progress 1, one output.
  const ok = await postImage(base, await testPng(8, 8), 'temperature=0');
  assert.equal(ok.status, 202);
  const jo = await waitState(base, String(ok.json.id), ['done', 'failed'], 180_000);
  assert.equal(jo.state, 'done', jo.error);
  assert.equal(jo.outputs.length, 1);
  const img = await fetch(`${base}${jo.outputs[0].url}`);
  assert.equal(img.status, 200);
  assert.equal(img.headers.get('content-type'), 'image/png');
  const late = await fetch(`${base}/v1/jobs/${String(ok.json.id)}`, { method: 'DELETE' });
  assert.equal(late.status, 409);
  const m = await (await fetch(`${base}/metrics`)).text();
  assert.match(m, /^srflow_jobs_finished_total\{outcome="timeout"\} 1$/m);
  assert.match(m, /^srflow_jobs_finished_total\{outcome="cancelled"\} 1$/m);
  assert.match(m, /^srflow_workers 1$/m);
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
});

test('Redis down: the server answers 503 JSON naming it, /healthz 503, and serves again once Redis is back', async (t) => {
  if (skip) return t.skip(skip);
  const port = await freePort();
  const own = await testRedis({ own: true, port });
  if ('skip' in own) return t.skip(own.skip);
  let stopped = false;
  closers.push(async () => {
    if (!stopped) await own.stop();
  });
  const q = queueName();
  const models = catalog({ model });
  const backend = await RedisBackend.connect(own.url, q, SMALL_LIMITS);
  const app: FastifyInstance = await buildServer({ backend, limits: SMALL_LIMITS, models });
  closers.push(async () => {
    await app.close();
    await backend.close();
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const png = await testPng(8, 8);
  assert.equal((await postImage(base, png)).status, 202);

  await own.stop();
  stopped = true;
  const down = await postImage(base, png);
  assert.equal(down.status, 503);
  assert.match(String(down.json.error), /The job queue \(Redis\) is unavailable/);
  const h = await fetch(`${base}/healthz`);
  assert.equal(h.status, 503);
  assert.match(String(((await h.json()) as { error: string }).error), /Redis unreachable/);

  const again = await testRedis({ own: true, port });
  if ('skip' in again) throw new Error(again.skip);
  closers.push(again.stop);
  await until('the server to reconnect', async () => ((await fetch(`${base}/healthz`)).status === 200 ? true : undefined), 30_000, 200);
  assert.equal((await postImage(base, png)).status, 202);
});
