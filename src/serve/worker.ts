/**
 * `srflow worker`: takes jobs from the BullMQ queue and runs them on inference threads.
 *
 * - Nothing lost: BullMQ holds a lock per running job, renewed from this (free) main thread; a
 *   worker that dies (kill -9, a lost machine) stops renewing, the stalled-job check of any other
 *   worker moves the job back to the queue after `lockDuration`, and another worker runs it.
 *   Outputs are written under the lock's token and the job's return value names them, so a run
 *   that lost its lock can never become the job's result: each job completes exactly once.
 * - SIGTERM drains (see cli/worker.ts): the worker takes no new jobs and finishes the running ones.
 * - Each job has a time limit (set by the server that queued it) and can be cancelled (the
 *   server sets `cancel:<id>`; this worker looks every half second while the job runs).
 */
import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { AbortedError, InferencePool } from './pool.js';
import { modelPath, type ModelCatalog } from './models.js';
import { bucketOf } from './metrics.js';
import { BULL_PREFIX, connectOrThrow, dataClient, dataKeys, type JobResult, type QueuedJob } from './redis.js';

export interface WorkerOptions {
  redisUrl: string;
  queue: string;
  concurrency: number;
  models: ModelCatalog;
  /** BullMQ lock duration, ms: how long a dead worker's job stays locked before another may take it. */
  lockDurationMs: number;
  /** How often this worker checks for stalled jobs, ms. */
  stalledIntervalMs: number;
  /** Times a job may be recovered from a dead worker before it fails. */
  maxStalledCount: number;
  log: (line: string) => void;
}

export interface RunningWorker {
  name: string;
  /** Stop taking jobs; with force, abandon the running ones (other workers recover them). */
  close(force?: boolean): Promise<void>;
}

const CANCEL_POLL_MS = 500;
const PROGRESS_EVERY_MS = 250;

export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  const redis: Redis = dataClient(o.redisUrl);
  await connectOrThrow(redis, o.redisUrl);
  const keys = dataKeys(o.queue);
  const pool = new InferencePool(o.concurrency);
  const name = `${hostname()}:${process.pid}`;

  const record = async (outcome: string, job: Job) => {
    const secs = job.processedOn && job.finishedOn ? Math.max(0, (job.finishedOn - job.processedOn) / 1000) : 0;
    await redis
      .multi()
      .hincrby(keys.stats, `fin:${outcome}`, 1)
      .hincrby(keys.stats, `dur:b${bucketOf(secs)}`, 1)
      .hincrbyfloat(keys.stats, 'dur:sum', secs)
      .hincrby(keys.stats, 'dur:count', 1)
      .del(keys.input(job.id!))
      .exec();
    return secs;
  };

  const processor = async (job: Job<QueuedJob, JobResult>, token?: string, bullSignal?: AbortSignal): Promise<JobResult> => {
    const id = job.id!;
    const { params, timeoutMs, ttlMs } = job.data;
    if (await redis.exists(keys.cancel(id))) throw new UnrecoverableError('cancelled');
    const input = await redis.getBuffer(keys.input(id));
    if (!input) throw new UnrecoverableError('The uploaded image expired before a worker could run the job');
    let path: string;
    try {
      path = modelPath(o.models, params.model, params.scale);
    } catch (e) {
      throw new UnrecoverableError((e as Error).message);
    }
    o.log(`job ${id} started (attempt ${job.attemptsStarted}${job.stalledCounter ? `, recovered from a stalled worker` : ''})`);
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error(`timed out after ${timeoutMs / 1000} s (the server's job time limit)`)), timeoutMs);
    const poll = setInterval(() => {
      redis.exists(keys.cancel(id)).then(
        (n) => n && ac.abort(new Error('cancelled')),
        () => {},
      );
    }, CANCEL_POLL_MS);
    const onBullAbort = () => ac.abort(new Error('the worker was stopped'));
    bullSignal?.addEventListener('abort', onBullAbort, { once: true });
    let lastReport = 0;
    try {
      const outs = await pool.run(
        { id, input, params, modelPath: path },
        {
          signal: ac.signal,
          onProgress: (p) => {
            const now = Date.now();
            if (now - lastReport < PROGRESS_EVERY_MS) return;
            lastReport = now;
            job.updateProgress(p).catch(() => {});
          },
        },
      );
      const tok = token ?? 'none';
      const m = redis.multi();
      const result: JobResult = { outputs: [] };
      outs.forEach((out, n) => {
        const key = keys.output(id, tok, n);
        m.set(key, Buffer.from(out.bytes.buffer, out.bytes.byteOffset, out.bytes.byteLength), 'PX', ttlMs);
        result.outputs.push({ key, temperature: out.temperature, seed: out.seed, width: out.width, height: out.height });
      });
      await m.exec();
      return result;
    } catch (e) {
      if (e instanceof AbortedError) throw new UnrecoverableError(e.message);
      if (/inference thread stopped/.test((e as Error).message)) throw e; // retried once
      throw new UnrecoverableError((e as Error).message);
    } finally {
      clearTimeout(timer);
      clearInterval(poll);
      bullSignal?.removeEventListener('abort', onBullAbort);
    }
  };

  const worker = new Worker<QueuedJob, JobResult>(o.queue, processor, {
    connection: { url: o.redisUrl, maxRetriesPerRequest: null },
    prefix: BULL_PREFIX,
    concurrency: o.concurrency,
    lockDuration: o.lockDurationMs,
    stalledInterval: o.stalledIntervalMs,
    maxStalledCount: o.maxStalledCount,
    name,
  });
  worker.on('error', (e) => o.log(`queue error: ${e.message}`));
  worker.on('completed', (job) => {
    record('done', job).then(
      (s) => o.log(`job ${job.id} done in ${s.toFixed(2)} s`),
      () => {},
    );
    redis.zrem(keys.cancelled, job.id!).catch(() => {});
  });
  worker.on('failed', (job, err) => {
    if (!job) return;
    // moveToFailed sets finishedOn only when the job will not be retried.
    const final = err instanceof UnrecoverableError || err.name === 'UnrecoverableError' || (typeof job.finishedOn === 'number' && job.finishedOn > 0);
    if (!final) {
      o.log(`job ${job.id} failed, will retry: ${err.message}`);
      return;
    }
    const outcome = err.message === 'cancelled' ? 'cancelled' : err.message.startsWith('timed out') ? 'timeout' : 'failed';
    record(outcome, job).then(
      () => o.log(`job ${job.id} ${outcome === 'failed' ? `failed: ${err.message}` : outcome}`),
      () => {},
    );
    // A cancelled job is reported from its cancel mark; its failed record would count it twice.
    if (outcome === 'cancelled') job.remove().catch(() => {});
  });
  await worker.waitUntilReady();
  o.log(`worker ${name} ready (queue ${o.queue}, concurrency ${o.concurrency})`);

  let closing: Promise<void> | null = null;
  return {
    name,
    close(force = false) {
      if (force) {
        return worker.close(true).then(async () => {
          await pool.close();
          redis.disconnect();
        });
      }
      closing ??= (async () => {
        await worker.close();
        await pool.close();
        await redis.quit().catch(() => redis.disconnect());
      })();
      return closing;
    },
  };
}
