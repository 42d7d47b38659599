/**
 * A fixed set of inference threads (infer-thread.ts), one job per thread at a time. Callers limit
 * how many jobs they run at once to the pool's size; extra calls wait for a free thread.
 *
 * A job's image is decoded here, on the main thread (the library's loadImage), the thread runs the
 * engine on its planes, and the outputs are encoded here (encodeImage): sharp/libvips runs on the
 * main thread only. The outputs are the bytes `upscale()` returns for the same image and options.
 *
 * The native kernels' thread pool is one per process: the first thread to start a convolution uses
 * all of it, a second thread running at the same time computes on its own (see native/pool.cc).
 *
 * A job whose signal aborts (cancel, time limit) stops at the engine's next check; a thread that
 * has not answered ABORT_GRACE_MS (30 s) later is terminated and replaced, so no job outlives its limit
 * by more than that.
 */
import { Worker } from 'node:worker_threads';
import type { JobParams, OutputFormat } from './jobs.js';
import type { Planar } from '../io/image.js';
import { encodeImage, loadImage } from '../io/image.js';
import { checkOutputSize, makeDraws } from '../upscale/index.js';
import { engineOptions } from '../models/engine.js';

export interface InferTask {
  id: string;
  input: Uint8Array;
  params: JobParams;
  modelPath: string;
}

export interface ThreadOutput {
  bytes: Uint8Array;
  temperature: number;
  seed: number;
  width: number;
  height: number;
}

/** A job stopped by its signal (cancel or timeout): `message` is the abort reason. */
export class AbortedError extends Error {
  override name = 'AbortedError';
}

export const ABORT_GRACE_MS = 30_000;

interface ThreadResult {
  samples: Planar[];
  alpha: Planar | null;
}

interface Slot {
  worker: Worker;
  busy: null | {
    id: string;
    resolve: (o: ThreadResult) => void;
    reject: (e: Error) => void;
    onProgress?: (p: number) => void;
  };
}

/** A thread computing as this one does: it gets the engine options in force here (configureEngine). */
function spawnThread(): Worker {
  const dev = import.meta.url.endsWith('.ts');
  const url = new URL(`./infer-thread.${dev ? 'ts' : 'js'}`, import.meta.url);
  const workerData = { engine: engineOptions() };
  if (!dev) return new Worker(url, { workerData });
  // Running from the TypeScript sources (tsx): register tsx's loader inside the thread first.
  const api = import.meta.resolve('tsx/esm/api');
  return new Worker(`import(${JSON.stringify(api)}).then((t) => { t.register(); return import(${JSON.stringify(url.href)}); })`, { eval: true, workerData });
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
    slot.worker.on(
      'message',
      (m: { type: string; id: string; progress?: number; samples?: Planar[]; alpha?: Planar | null; aborted?: boolean; message?: string }) => {
        const b = slot.busy;
        if (!b || b.id !== m.id) return;
        if (m.type === 'progress') b.onProgress?.(m.progress!);
        else if (m.type === 'done') this.finish(slot, () => b.resolve({ samples: m.samples!, alpha: m.alpha ?? null }));
        else if (m.type === 'error') this.finish(slot, () => b.reject(m.aborted ? new AbortedError(m.message) : new Error(m.message)));
      },
    );
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

  /** Run one job: decode, infer on a thread, encode; rejects with AbortedError when `signal` aborts it. */
  async run(task: InferTask, opts: { onProgress?: (p: number) => void; signal?: AbortSignal } = {}): Promise<ThreadOutput[]> {
    const { params } = task;
    const format: OutputFormat = params.format;
    const img = await loadImage(Buffer.from(task.input.buffer, task.input.byteOffset, task.input.byteLength), { name: 'the upload' });
    checkOutputSize('the upload', img.width, img.height, params.scale, format);
    const draws = makeDraws(params.temperatures, params.samples, params.seed);
    const r = await this.infer(task.id, { rgb: img.rgb, alpha: img.alpha, draws, scale: params.scale, modelPath: task.modelPath }, opts);
    const out: ThreadOutput[] = [];
    for (let k = 0; k < r.samples.length; k++) {
      if (opts.signal?.aborted) throw new AbortedError(reasonOf(opts.signal));
      const bytes = await encodeImage({ rgb: r.samples[k], alpha: r.alpha, grayscale: img.grayscale, bitDepth: img.bitDepth }, { format });
      out.push({ bytes, temperature: draws[k].temperature, seed: draws[k].seed, width: r.samples[k].width, height: r.samples[k].height });
    }
    return out;
  }

  private async infer(
    id: string,
    job: { rgb: Planar; alpha: Planar | null; draws: { temperature: number; seed: number }[]; scale: number; modelPath: string },
    opts: { onProgress?: (p: number) => void; signal?: AbortSignal },
  ): Promise<ThreadResult> {
    let slot: Slot | undefined;
    while (!(slot = this.slots.find((s) => !s.busy))) {
      if (this.closed) throw new Error('The inference pool is closed');
      await new Promise<void>((r) => this.waiting.push(r));
    }
    if (this.closed) throw new Error('The inference pool is closed');
    const s = slot;
    const signal = opts.signal;
    if (signal?.aborted) throw new AbortedError(reasonOf(signal));
    return new Promise<ThreadResult>((resolve, reject) => {
      let grace: NodeJS.Timeout | undefined;
      const onAbort = () => {
        s.worker.postMessage({ type: 'abort', id, reason: reasonOf(signal!) });
        grace = setTimeout(() => {
          // The thread did not stop in time: replace it, and fail the job with the abort reason.
          if (s.busy?.id !== id) return;
          const b = s.busy;
          s.busy = null;
          const i = this.slots.indexOf(s);
          if (i >= 0) this.slots[i] = this.makeSlot();
          void s.worker.terminate();
          b.reject(new AbortedError(reasonOf(signal!)));
          this.wake();
        }, ABORT_GRACE_MS);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(grace);
      };
      s.busy = {
        id,
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
      s.worker.postMessage({ type: 'run', id, ...job });
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

function reasonOf(signal: AbortSignal): string {
  return String((signal.reason as Error)?.message ?? signal.reason);
}
