/**
 * The embedded queue: `srflow serve` without --redis runs jobs in its own process, on inference
 * threads (pool.ts). Jobs live in memory: a restart loses queued jobs and results (use Redis for
 * jobs that must survive). Finished jobs and their outputs are dropped after the result TTL.
 */
import { HttpError, JOB_STATES, type JobParams, type JobState, type JobView, type Limits } from './jobs.js';
import { emptyDurations, observe, type Outcome, type QueueSnapshot } from './metrics.js';
import { AbortedError, InferencePool } from './pool.js';
import { modelPath, type ModelCatalog } from './models.js';
import { outputUrl, type Backend } from './backend.js';
import type { ThreadOutput } from './pool.js';

interface EJob {
  id: string;
  state: JobState;
  progress: number;
  params: JobParams;
  input: Buffer | null;
  outputs: ThreadOutput[];
  error?: string;
  finishedAt?: number;
  ac?: AbortController;
}

export const CANCELLED = 'cancelled';

export class EmbeddedBackend implements Backend {
  readonly mode = 'embedded' as const;
  private jobs = new Map<string, EJob>();
  private waiting: string[] = [];
  private running = new Set<Promise<void>>();
  private pool: InferencePool;
  private closing = false;
  private sweeper: NodeJS.Timeout;
  private finished: Record<Outcome, number> = { done: 0, failed: 0, cancelled: 0, timeout: 0 };
  private durations = emptyDurations();

  constructor(
    private readonly limits: Limits,
    private readonly models: ModelCatalog,
    readonly concurrency = 1,
  ) {
    this.pool = new InferencePool(concurrency);
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, Math.min(limits.resultTtlMs / 4, 60_000)));
    this.sweeper.unref();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, j] of this.jobs) if (j.finishedAt !== undefined && now - j.finishedAt > this.limits.resultTtlMs) this.jobs.delete(id);
  }

  async submit(id: string, input: Buffer, params: JobParams): Promise<void> {
    if (this.closing) throw new HttpError(503, 'The server is shutting down; try again later');
    try {
      modelPath(this.models, params.model, params.scale); // unknown models are refused up front
    } catch (e) {
      throw new HttpError(400, (e as Error).message);
    }
    if (this.waiting.length >= this.limits.maxQueue) {
      throw new HttpError(429, `The queue is full (${this.waiting.length} jobs waiting, limit ${this.limits.maxQueue}); try again later`, {
        'retry-after': '5',
      });
    }
    this.jobs.set(id, { id, state: 'queued', progress: 0, params, input, outputs: [] });
    this.waiting.push(id);
    this.pump();
  }

  private pump(): void {
    while (this.running.size < this.concurrency && this.waiting.length) {
      const job = this.jobs.get(this.waiting.shift()!);
      if (!job || job.state !== 'queued') continue;
      const p = this.runJob(job).finally(() => {
        this.running.delete(p);
        this.pump();
      });
      this.running.add(p);
    }
  }

  private async runJob(job: EJob): Promise<void> {
    job.state = 'active';
    const ac = new AbortController();
    job.ac = ac;
    const t0 = performance.now();
    const secs = this.limits.jobTimeoutMs / 1000;
    const timer = setTimeout(() => ac.abort(new Error(`timed out after ${secs} s (the server's job time limit)`)), this.limits.jobTimeoutMs);
    let outcome: Outcome;
    try {
      const outputs = await this.pool.run(
        { id: job.id, input: job.input!, params: job.params, modelPath: modelPath(this.models, job.params.model, job.params.scale) },
        { signal: ac.signal, onProgress: (p) => (job.progress = p) },
      );
      if ((job.state as JobState) === 'cancelled') {
        outcome = 'cancelled'; // finished just as it was cancelled: the cancel stands
      } else {
        job.outputs = outputs;
        job.progress = 1;
        job.state = 'done';
        outcome = 'done';
      }
    } catch (e) {
      if ((job.state as JobState) === 'cancelled') outcome = 'cancelled';
      else {
        job.state = 'failed';
        job.error = (e as Error).message;
        outcome = e instanceof AbortedError ? 'timeout' : 'failed';
      }
    } finally {
      clearTimeout(timer);
    }
    job.input = null;
    job.ac = undefined;
    job.finishedAt = Date.now();
    this.finished[outcome]++;
    observe(this.durations, (performance.now() - t0) / 1000);
  }

  private view(j: EJob): JobView {
    const v: JobView = {
      id: j.id,
      state: j.state,
      progress: j.progress,
      outputs: j.outputs.map((o, n) => ({ url: outputUrl(j.id, n), temperature: o.temperature, seed: o.seed, width: o.width, height: o.height })),
    };
    if (j.error !== undefined) v.error = j.error;
    return v;
  }

  private find(id: string): EJob | null {
    const j = this.jobs.get(id);
    if (!j) return null;
    if (j.finishedAt !== undefined && Date.now() - j.finishedAt > this.limits.resultTtlMs) {
      this.jobs.delete(id);
      return null;
    }
    return j;
  }

  async get(id: string): Promise<JobView | null> {
    const j = this.find(id);
    return j ? this.view(j) : null;
  }

  async output(id: string, n: number): Promise<Buffer | null> {
    const o = this.find(id)?.outputs[n];
    return o ? Buffer.from(o.bytes.buffer, o.bytes.byteOffset, o.bytes.byteLength) : null;
  }

  async cancel(id: string): Promise<JobView | null> {
    const j = this.find(id);
    if (!j) return null;
    if (j.state === 'done' || j.state === 'failed') throw new HttpError(409, `Job ${id} already finished (${j.state}); nothing to cancel`);
    if (j.state === 'queued') {
      this.waiting = this.waiting.filter((w) => w !== id);
      j.input = null;
      j.finishedAt = Date.now();
      this.finished.cancelled++;
    } else if (j.state === 'active') {
      j.ac?.abort(new Error(CANCELLED)); // runJob counts it when the thread stops
    }
    j.state = 'cancelled';
    j.error = 'cancelled';
    return this.view(j);
  }

  async snapshot(): Promise<QueueSnapshot> {
    this.sweep();
    const jobs = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const j of this.jobs.values()) jobs[j.state]++;
    return { jobs, queueDepth: this.waiting.length, finished: { ...this.finished }, durations: structuredClone(this.durations), workers: this.concurrency };
  }

  /** Jobs running now. */
  get active(): number {
    return this.running.size;
  }

  async health(): Promise<{ ok: boolean; detail?: string }> {
    return { ok: !this.closing, detail: this.closing ? 'shutting down' : undefined };
  }

  /** Refuse new jobs, cancel the queued ones, wait for the running ones, stop the threads. */
  async close(): Promise<void> {
    this.closing = true;
    for (const id of this.waiting.splice(0)) {
      const j = this.jobs.get(id);
      if (j && j.state === 'queued') {
        j.state = 'cancelled';
        j.error = 'the server shut down before the job started';
        j.finishedAt = Date.now();
        this.finished.cancelled++;
      }
    }
    await Promise.all([...this.running]);
    clearInterval(this.sweeper);
    await this.pool.close();
  }
}
