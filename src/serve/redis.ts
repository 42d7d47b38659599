/**
 * Redis mode, the server's side: jobs go to a BullMQ queue; the uploaded image, the outputs, the
 * cancel marks and the queue-wide statistics live in Redis beside it, each with an expiry, so any
 * server process can answer for a job that any worker ran.
 *
 * Keys (besides BullMQ's own under `srflow:<queue>:`), all under `srflow-data:<queue>:`:
 *   in:<id>               the uploaded image (deleted when the job finishes; expires anyway)
 *   out:<id>:<token>:<n>  output n, written by the worker that held the job's lock (token); the
 *                         job's return value names the keys of the run that completed it
 *   cancel:<id>           set by DELETE; the worker running the job stops it
 *   cancelled             sorted set of cancelled jobs (score: time), for the jobs-by-state gauge
 *   stats                 hash: finished jobs by outcome and the duration histogram
 */
import { Queue, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { HttpError, JOB_STATES, type JobParams, type JobState, type JobView, type Limits } from './jobs.js';
import { DURATION_BUCKETS, emptyDurations, OUTCOMES, type Outcome, type QueueSnapshot } from './metrics.js';
import { outputUrl, type Backend } from './backend.js';

export const BULL_PREFIX = 'srflow';

export function dataKeys(queue: string) {
  const p = `srflow-data:${queue}:`;
  return {
    input: (id: string) => `${p}in:${id}`,
    output: (id: string, token: string, n: number) => `${p}out:${id}:${token}:${n}`,
    cancel: (id: string) => `${p}cancel:${id}`,
    cancelled: `${p}cancelled`,
    stats: `${p}stats`,
  };
}
export type DataKeys = ReturnType<typeof dataKeys>;

/** What a job carries in BullMQ (the image itself is in `in:<id>`). */
export interface QueuedJob {
  params: JobParams;
  timeoutMs: number;
  ttlMs: number;
}

/** A job's BullMQ return value. */
export interface JobResult {
  outputs: { key: string; temperature: number; seed: number; width: number; height: number }[];
}

/** Check a redis:// URL (a UsageError-worthy message on failure). */
export function checkRedisUrl(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `Expected a redis://host:port URL for --redis but received ${JSON.stringify(url)}`;
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return `Expected a redis:// or rediss:// URL for --redis but received ${JSON.stringify(url)}`;
  return null;
}

/** A plain client for the data keys; fails requests fast instead of queueing them while Redis is away. */
export function dataClient(url: string): Redis {
  const r = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 5000, lazyConnect: true });
  r.on('error', () => {}); // connection trouble surfaces through the failing commands (and /healthz)
  return r;
}

/** Wait until Redis answers PING, or throw a message naming the URL. */
export async function connectOrThrow(r: Redis, url: string, timeoutMs = 5000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        if (r.status === 'wait') await r.connect();
        await r.ping();
      })(),
      new Promise((_, rej) => (timer = setTimeout(() => rej(new Error('no answer')), timeoutMs))),
    ]);
  } catch (e) {
    r.disconnect();
    throw new Error(`Cannot reach Redis at ${url}: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

const QUEUED_STATES = ['waiting', 'prioritized', 'delayed', 'waiting-children'];

function stateOf(bull: string, cancelled: boolean): JobState | null {
  if (bull === 'completed') return 'done';
  if (cancelled) return 'cancelled';
  if (bull === 'active') return 'active';
  if (bull === 'failed') return 'failed';
  if (QUEUED_STATES.includes(bull)) return 'queued';
  return null;
}

/** Redis trouble (down, timing out) becomes a 503 naming it, not a 500. */
async function guard<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof HttpError) throw e;
    const why = (e as Error).message.replace(/^Reached the max retries per request limit.*/s, 'no connection');
    throw new HttpError(503, `The job queue (Redis) is unavailable: ${why}`, { 'retry-after': '5' });
  }
}

export class RedisBackend implements Backend {
  readonly mode = 'redis' as const;
  readonly queue: Queue;
  readonly keys: DataKeys;
  private closing = false;

  constructor(
    private readonly redis: Redis,
    url: string,
    readonly queueName: string,
    private readonly limits: Limits,
  ) {
    this.queue = new Queue(queueName, { connection: { url, maxRetriesPerRequest: 1, connectTimeout: 5000 }, prefix: BULL_PREFIX });
    this.queue.on('error', () => {}); // surfaced through /healthz and failing requests
    this.keys = dataKeys(queueName);
  }

  static async connect(url: string, queueName: string, limits: Limits): Promise<RedisBackend> {
    const r = dataClient(url);
    await connectOrThrow(r, url);
    const b = new RedisBackend(r, url, queueName, limits);
    await b.queue.waitUntilReady();
    return b;
  }

  submit(id: string, input: Buffer, params: JobParams): Promise<void> {
    return guard(() => this.submitUnguarded(id, input, params));
  }

  private async submitUnguarded(id: string, input: Buffer, params: JobParams): Promise<void> {
    if (this.closing) throw new HttpError(503, 'The server is shutting down; try again later');
    const c = await this.queue.getJobCounts('waiting', 'prioritized', 'delayed');
    const depth = Object.values(c).reduce((a, b) => a + b, 0);
    if (depth >= this.limits.maxQueue) {
      throw new HttpError(429, `The queue is full (${depth} jobs waiting, limit ${this.limits.maxQueue}); try again later`, { 'retry-after': '5' });
    }
    const ttlS = Math.ceil(this.limits.resultTtlMs / 1000);
    // The image must outlive the job's wait, its run and its retries: keep it for the TTL past the time limit.
    await this.redis.set(this.keys.input(id), input, 'PX', this.limits.resultTtlMs + this.limits.jobTimeoutMs);
    const data: QueuedJob = { params, timeoutMs: this.limits.jobTimeoutMs, ttlMs: this.limits.resultTtlMs };
    await this.queue.add('upscale', data, {
      jobId: id,
      attempts: 2, // a crash of the inference thread is retried once; bad jobs fail at once (UnrecoverableError)
      backoff: { type: 'fixed', delay: 1000 },
      removeOnComplete: { age: ttlS },
      removeOnFail: { age: ttlS },
    });
  }

  get(id: string): Promise<JobView | null> {
    return guard(() => this.getUnguarded(id));
  }

  /** The job's record and its state, read consistently (a job that finishes between the two reads is read again). */
  private async fetch(id: string): Promise<{ job: Job; bull: string } | null> {
    for (let tries = 0; ; tries++) {
      const job = await this.queue.getJob(id);
      if (!job) return null;
      const bull = await job.getState();
      if (!((bull === 'completed' || bull === 'failed') && !job.finishedOn) || tries >= 3) return { job, bull };
    }
  }

  private async getUnguarded(id: string): Promise<JobView | null> {
    const [found, cancelled] = await Promise.all([this.fetch(id), this.redis.exists(this.keys.cancel(id))]);
    if (!found) return cancelled ? { id, state: 'cancelled', progress: 0, outputs: [], error: 'cancelled' } : null;
    const { job } = found;
    const state = stateOf(found.bull, cancelled > 0);
    if (state === null) return null;
    const result = state === 'done' ? (job.returnvalue as JobResult | null) : null;
    const v: JobView = {
      id,
      state,
      progress: state === 'done' ? 1 : typeof job.progress === 'number' ? job.progress : 0,
      outputs: (result?.outputs ?? []).map((o, n) => ({ url: outputUrl(id, n), temperature: o.temperature, seed: o.seed, width: o.width, height: o.height })),
    };
    if (state === 'cancelled') v.error = 'cancelled';
    else if (state === 'failed') v.error = job.failedReason;
    return v;
  }

  output(id: string, n: number): Promise<Buffer | null> {
    return guard(() => this.outputUnguarded(id, n));
  }

  private async outputUnguarded(id: string, n: number): Promise<Buffer | null> {
    const found = await this.fetch(id);
    if (!found || found.bull !== 'completed') return null;
    const o = (found.job.returnvalue as JobResult | null)?.outputs[n];
    return o ? this.redis.getBuffer(o.key) : null;
  }

  cancel(id: string): Promise<JobView | null> {
    return guard(() => this.cancelUnguarded(id));
  }

  private async cancelUnguarded(id: string): Promise<JobView | null> {
    const before = await this.get(id);
    if (!before) return null;
    if (before.state === 'cancelled') return before;
    if (before.state === 'done' || before.state === 'failed') throw new HttpError(409, `Job ${id} already finished (${before.state}); nothing to cancel`);
    const ttlMs = this.limits.resultTtlMs;
    await this.redis.multi().set(this.keys.cancel(id), '1', 'PX', ttlMs).zadd(this.keys.cancelled, Date.now(), id).exec();
    if (before.state === 'queued') {
      const job = await this.queue.getJob(id);
      try {
        await job?.remove(); // a job a worker has just taken is locked: that worker sees the mark instead
        await this.redis.del(this.keys.input(id));
      } catch {
        /* taken meanwhile */
      }
    }
    return { id, state: 'cancelled', progress: before.progress, outputs: [], error: 'cancelled' };
  }

  snapshot(): Promise<QueueSnapshot> {
    return guard(() => this.snapshotUnguarded());
  }

  private async snapshotUnguarded(): Promise<QueueSnapshot> {
    const c = await this.queue.getJobCounts('waiting', 'prioritized', 'delayed', 'waiting-children', 'active', 'completed', 'failed');
    const now = Date.now();
    const [, cancelled] = await Promise.all([
      this.redis.zremrangebyscore(this.keys.cancelled, '-inf', now - this.limits.resultTtlMs),
      this.redis.zcard(this.keys.cancelled),
    ]);
    const stats = await this.redis.hgetall(this.keys.stats);
    const workers = await this.queue.getWorkersCount();
    const queued = c.waiting + c.prioritized + c.delayed + (c['waiting-children'] ?? 0);
    const jobs = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    jobs.queued = queued;
    jobs.active = c.active;
    jobs.done = c.completed;
    jobs.failed = c.failed;
    jobs.cancelled = cancelled;
    const finished = Object.fromEntries(OUTCOMES.map((o) => [o, Number(stats[`fin:${o}`] ?? 0)])) as Record<Outcome, number>;
    const durations = emptyDurations();
    for (let i = 0; i <= DURATION_BUCKETS.length; i++) durations.buckets[i] = Number(stats[`dur:b${i}`] ?? 0);
    durations.sum = Number(stats['dur:sum'] ?? 0);
    durations.count = Number(stats['dur:count'] ?? 0);
    return { jobs, queueDepth: c.waiting + c.prioritized + c.delayed, finished, durations, workers };
  }

  async health(): Promise<{ ok: boolean; detail?: string }> {
    if (this.closing) return { ok: false, detail: 'shutting down' };
    try {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.redis.ping(), new Promise((_, rej) => (timer = setTimeout(() => rej(new Error('no answer in 2 s')), 2000)))]).finally(() =>
        clearTimeout(timer),
      );
      return { ok: true };
    } catch (e) {
      return { ok: false, detail: `Redis unreachable: ${(e as Error).message}` };
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.queue.close();
    this.redis.disconnect();
  }
}
