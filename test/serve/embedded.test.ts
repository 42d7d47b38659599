/**
 * `srflow serve` without Redis: the embedded queue. The CLI end to end (10 raw PNG jobs with the
 * library's exact outputs, a text file refused, /healthz, SIGTERM finishing the running job), then
 * every bad request, the limits (429, time limit), cancellation and metrics on a server in this
 * process.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/serve/server.js';
import { EmbeddedBackend } from '../../src/serve/embedded.js';
import { catalog } from '../../src/serve/models.js';
import type { Limits } from '../../src/serve/jobs.js';
import { Cli, getJob, postImage, runTenJobs, startServe, testPng, tinyModel, tmp, until, waitState } from './helpers.js';
import { checkBadRequests, rejectedCounts, SMALL_LIMITS } from './bad-requests.js';

let dir = '';
let model = '';
const started: { cli?: Cli; app?: FastifyInstance; backend?: EmbeddedBackend }[] = [];

before(async () => {
  dir = tmp('srflow-serve-embedded-');
  model = await tinyModel(dir);
});

after(async () => {
  for (const s of started) {
    await s.cli?.stop();
    await s.app?.close();
    await s.backend?.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

async function inProcess(limits: Limits, concurrency = 1): Promise<{ base: string; backend: EmbeddedBackend }> {
  const models = catalog({ model, modelsDir: dir });
  const backend = new EmbeddedBackend(limits, models, concurrency);
  const app = await buildServer({ backend, limits, models });
  started.push({ app, backend });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { base: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, backend };
}

test("CLI, embedded: 10 raw PNG jobs finish with the library's 4× outputs; a text file is a 400 JSON error; /healthz 200; SIGTERM finishes the running job", async () => {
  const { cli, base } = await startServe(['--model', model]);
  started.push({ cli });
  const pngs = await Promise.all(Array.from({ length: 10 }, (_, k) => testPng(10 + k, 9, k)));
  await runTenJobs(base, model, pngs);

  const bad = await postImage(base, 'hello, I am a text file\n');
  assert.equal(bad.status, 400);
  assert.match(String(bad.json.error), /not a readable image/);
  const h = await fetch(`${base}/healthz`);
  assert.equal(h.status, 200);
  assert.deepEqual(await h.json(), { status: 'ok', mode: 'embedded' });

  // SIGTERM while a job runs: the job finishes, the server exits 0.
  const slow = await postImage(base, await testPng(64, 64, 3), 'samples=8&temperature=0.5');
  assert.equal(slow.status, 202);
  await waitState(base, String(slow.json.id), ['active']);
  cli.p.kill('SIGTERM');
  const ex = await cli.exited;
  assert.equal(ex.code, 0, cli.err);
  assert.match(cli.out, /SIGTERM: finishing 1 running job\(s\)[\s\S]*stopped/);
});

test('embedded: every bad request is a 4xx JSON error naming the problem, and the server keeps serving', async () => {
  const { base } = await inProcess(SMALL_LIMITS);
  await checkBadRequests(base);
  const rej = await rejectedCounts(base);
  assert.ok(rej.bad_image >= 6, JSON.stringify(rej));
  assert.ok(rej.bad_request >= 16, JSON.stringify(rej));
  assert.equal(rej.too_large, 3);
  // ... and still runs jobs (here with a model named from the models folder).
  const png = await testPng(8, 8);
  const r = await postImage(base, png, 'temperature=0&model=tiny');
  assert.equal(r.status, 202);
  const j = await waitState(base, String(r.json.id), ['done', 'failed']);
  assert.equal(j.state, 'done', j.error);
  const m = await (await fetch(`${base}/metrics`)).text();
  assert.match(m, /^srflow_jobs\{state="done"\} 1$/m);
  assert.match(m, /^srflow_jobs_submitted_total 1$/m);
  assert.match(m, /^srflow_job_duration_seconds_count 1$/m);
  assert.match(m, /^srflow_job_duration_seconds_bucket\{le="\+Inf"\} 1$/m);
});

test('embedded: full queue → 429, cancelling queued and running jobs, progress, outputs only when done', async () => {
  const { base } = await inProcess({ ...SMALL_LIMITS, maxQueue: 1 });
  const slowPng = await testPng(64, 64, 1);
  const a = await postImage(base, slowPng, 'samples=8&temperature=0.5'); // starts at once
  const b = await postImage(base, slowPng, 'samples=2'); // waits
  assert.equal(a.status, 202);
  assert.equal(b.status, 202);
  const c = await postImage(base, slowPng);
  assert.equal(c.status, 429, JSON.stringify(c.json));
  assert.match(String(c.json.error), /queue is full \(1 jobs waiting, limit 1\)/);
  const ida = String(a.json.id);
  const idb = String(b.json.id);
  assert.equal((await getJob(base, idb)).state, 'queued');
  // Outputs of an unfinished job: 409.
  const early = await fetch(`${base}/v1/jobs/${ida}/outputs/0`);
  assert.equal(early.status, 409);
  // Progress is reported while it runs.
  const seen = await until(
    'a progress between 0 and 1',
    async () => {
      const j = await getJob(base, ida);
      assert.notEqual(j.state, 'done', 'the slow job finished before its progress was seen');
      return j.progress > 0 && j.progress < 1 ? j.progress : undefined;
    },
    180_000,
    20,
  );
  assert.ok(seen > 0 && seen < 1);
  // Cancel the queued one, then the running one.
  const cb = await fetch(`${base}/v1/jobs/${idb}`, { method: 'DELETE' });
  assert.equal(cb.status, 200);
  assert.equal(((await cb.json()) as { state: string }).state, 'cancelled');
  const ca = await fetch(`${base}/v1/jobs/${ida}`, { method: 'DELETE' });
  assert.equal(ca.status, 200);
  assert.equal((await getJob(base, ida)).state, 'cancelled');
  assert.equal((await getJob(base, idb)).state, 'cancelled');
  // The thread is freed: the next job runs and finishes; cancelling a finished job is a 409.
  const d = await postImage(base, await testPng(8, 8), 'temperature=0');
  assert.equal(d.status, 202);
  const jd = await waitState(base, String(d.json.id), ['done', 'failed'], 180_000);
  assert.equal(jd.state, 'done', jd.error);
  const late = await fetch(`${base}/v1/jobs/${String(d.json.id)}`, { method: 'DELETE' });
  assert.equal(late.status, 409);
  assert.match(String(((await late.json()) as { error: string }).error), /already finished \(done\)/);
  const miss = await fetch(`${base}/v1/jobs/${String(d.json.id)}/outputs/1`);
  assert.equal(miss.status, 404);
  assert.match(String(((await miss.json()) as { error: string }).error), /has 1 output\(s\): no output 1/);
  const m = await (await fetch(`${base}/metrics`)).text();
  assert.match(m, /^srflow_jobs\{state="cancelled"\} 2$/m);
  assert.match(m, /^srflow_requests_rejected_total\{reason="queue_full"\} 1$/m);
  await until('the cancelled running job to be counted', async () =>
    /^srflow_jobs_finished_total\{outcome="cancelled"\} 2$/m.test(await (await fetch(`${base}/metrics`)).text()) ? true : undefined,
  );
});

test('embedded: a job over the time limit fails as timed out; the server keeps serving', async () => {
  const { base } = await inProcess({ ...SMALL_LIMITS, jobTimeoutMs: 50 });
  const r = await postImage(base, await testPng(64, 64, 2), 'samples=8');
  assert.equal(r.status, 202);
  const j = await waitState(base, String(r.json.id), ['done', 'failed'], 180_000);
  assert.equal(j.state, 'failed');
  assert.match(String(j.error), /timed out after 0\.05 s/);
  assert.deepEqual(j.outputs, []);
  const m = await (await fetch(`${base}/metrics`)).text();
  assert.match(m, /^srflow_jobs_finished_total\{outcome="timeout"\} 1$/m);
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
});

test('CLI: bad options exit 2, an unreachable Redis exits 1, each with one line naming the problem', async () => {
  const cases: [string[], number, RegExp][] = [
    [['serve', '--port', 'http', '--max-pixels', '0'], 2, /Expected an integer ≥ 0 for --port but received "http"/],
    [['serve', '--redis', 'localhost:6379'], 2, /Expected a redis:\/\/ or rediss:\/\/ URL for --redis/],
    [['serve', '--model', '/nonexistent/model.safetensors'], 1, /Cannot read model \/nonexistent\/model\.safetensors: file not found/],
    [['worker', '--redis', 'redis://127.0.0.1:1', '--model', model], 1, /Cannot reach Redis at redis:\/\/127\.0\.0\.1:1/],
  ];
  await Promise.all(
    cases.map(async ([args, code, re]) => {
      const c = new Cli(args);
      started.push({ cli: c });
      const ex = await c.exited;
      assert.equal(ex.code, code, `${args.join(' ')}: ${c.err}`);
      assert.match(c.err, re, args.join(' '));
      assert.equal(c.err.trim().split('\n').length, 1, `${args.join(' ')}: one line`);
    }),
  );
});
