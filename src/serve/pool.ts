/**
 * A fixed set of inference threads (infer-thread.ts), one job per thread at a time. Callers limit
 * how many jobs they run at once to the pool's size; extra calls wait for a free thread.
 *
 * The native kernels' thread pool is one per process: the first thread to start a convolution uses
 * all of it, a second thread running at the same time computes on its own (see native/pool.cc).
 */
import { Worker } from 'node:worker_threads';
import type { JobParams } from './jobs.js';
import type { ThreadOutput } from './infer-thread.js';

export interface InferTask {
  id: string;
  input: Uint8Array;
  params: JobParams;
  modelPath: string;
}

/** A job stopped by its signal (cancel or timeout): `message` is the abort reason. */
export class AbortedError extends Error {
  override name = 'AbortedError';
}

interface Slot {
  worker: Worker;
  busy: null | {
    id: string;
    resolve: (o: ThreadOutput[]) => void;
    reject: (e: Error) => void;
    onProgress?: (p: number) => void;
  };
}

function spawnThread(): Worker {
  const dev = import.meta.url.endsWith('.ts');
  const url = new URL(`./infer-thread.${dev ? 'ts' : 'js'}`, import.meta.url);
  if (!dev) return new Worker(url);
  // Running from the TypeScript sources (tsx): register tsx's loader inside the thread first.
  const api = import.meta.resolve('tsx/esm/api');
  return new Worker(`import(${JSON.stringify(api)}).then((t) => { t.register(); return import(${JSON.stringify(url.href)}); })`, { eval: true });
}

export class InferencePool {
  private slots: Slot[] = [];
  private waiting: (() => void)[] = [];
  private closed = false;

  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size >= 1)) throw new Error(`Expected an integer ≥ 1 for the number of inference threads but received ${size}`);
    for (let i = 0; i < size; i++) this.slots.push(this.makeSlot());
  }

  private makeSlot(): Slot {
    const slot: Slot = { worker: spawnThread(), busy: null };
    slot.worker.on('message', (m: { type: string; id: string; progress?: number; outputs?: ThreadOutput[]; aborted?: boolean; message?: string }) => {
      const b = slot.busy;
      if (!b || b.id !== m.id) return;
      if (m.type === 'progress') b.onProgress?.(m.progress!);
      else if (m.type === 'done') this.finish(slot, () => b.resolve(m.outputs!));
      else if (m.type === 'error') this.finish(slot, () => b.reject(m.aborted ? new AbortedError(m.message) : new Error(m.message)));
    });
    const died = (why: string) => {
      const b = slot.busy;
      slot.busy = null;
      const i = this.slots.indexOf(slot);
      if (i >= 0 && !this.closed) this.slots[i] = this.makeSlot();
      b?.reject(new Error(`The inference thread stopped (${why})`));
      this.wake();
    };
    slot.worker.on('error', (e) => died(e.message));
    slot.worker.on('exit', (code) => {
      if (this.slots.includes(slot)) died(`exit code ${code}`);
    });
    slot.worker.unref();
    return slot;
  }

  private finish(slot: Slot, settle: () => void): void {
    slot.busy = null;
    slot.worker.unref();
    settle();
    this.wake();
  }

  private wake(): void {
    const w = this.waiting.shift();
    if (w) w();
  }

  /** Run one job; rejects with AbortedError when `signal` aborts it. */
  async run(task: InferTask, opts: { onProgress?: (p: number) => void; signal?: AbortSignal } = {}): Promise<ThreadOutput[]> {
    let slot: Slot | undefined;
    while (!(slot = this.slots.find((s) => !s.busy))) {
      if (this.closed) throw new Error('The inference pool is closed');
      await new Promise<void>((r) => this.waiting.push(r));
    }
    if (this.closed) throw new Error('The inference pool is closed');
    const s = slot;
    const signal = opts.signal;
    if (signal?.aborted) throw new AbortedError(String((signal.reason as Error)?.message ?? signal.reason));
    return new Promise<ThreadOutput[]>((resolve, reject) => {
      const onAbort = () => s.worker.postMessage({ type: 'abort', id: task.id, reason: String((signal!.reason as Error)?.message ?? signal!.reason) });
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => signal?.removeEventListener('abort', onAbort);
      s.busy = {
        id: task.id,
        onProgress: opts.onProgress,
        resolve: (o) => {
          done();
          resolve(o);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      s.worker.ref(); // a running job keeps the process alive
      const input = task.input;
      s.worker.postMessage({ type: 'run', id: task.id, input, params: task.params, modelPath: task.modelPath });
    });
  }

  /** Stop every thread (jobs still running are rejected). */
  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots;
    this.slots = [];
    for (const w of this.waiting.splice(0)) w();
    await Promise.all(
      slots.map(async (s) => {
        const b = s.busy;
        s.busy = null;
        await s.worker.terminate();
        b?.reject(new Error('The inference pool was closed'));
      }),
    );
  }
}
