/**
 * An inference thread (worker_threads): runs one job at a time with the library's `upscale`, off
 * the main thread, so that the main thread keeps answering HTTP requests and renewing queue locks
 * while the (synchronous) kernels run. Models are loaded once and kept (the last few used).
 *
 * Messages in:  { type: 'run', id, input: Uint8Array, params: JobParams, modelPath }
 *               { type: 'abort', id, reason }
 * Messages out: { type: 'progress', id, progress }   (0..1)
 *               { type: 'done', id, outputs: [{ bytes, temperature, seed, width, height }] }
 *               { type: 'error', id, aborted: boolean, message }
 */
import { parentPort } from 'node:worker_threads';
import { statSync } from 'node:fs';
import { upscale } from '../upscale/index.js';
import { loadModel, type SRFlowModel } from '../models/api.js';
import type { JobParams } from './jobs.js';

export interface RunMessage {
  type: 'run';
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

const KEEP_MODELS = 2;
const models = new Map<string, { mtimeMs: number; model: SRFlowModel }>();
const running = new Map<string, AbortController>();

async function getModel(path: string): Promise<SRFlowModel> {
  const mtimeMs = statSync(path).mtimeMs;
  const hit = models.get(path);
  if (hit && hit.mtimeMs === mtimeMs) {
    models.delete(path);
    models.set(path, hit); // most recently used last
    return hit.model;
  }
  const model = await loadModel(path);
  models.set(path, { mtimeMs, model });
  while (models.size > KEEP_MODELS) models.delete(models.keys().next().value as string);
  return model;
}

async function run(m: RunMessage): Promise<void> {
  const port = parentPort!;
  const ac = new AbortController();
  running.set(m.id, ac);
  try {
    const model = await getModel(m.modelPath);
    if (model.scale !== m.params.scale) throw new Error(`This model upscales ${model.scale}×, not ${m.params.scale}× (scale=${m.params.scale})`);
    let last = -1;
    const r = await upscale(Buffer.from(m.input.buffer, m.input.byteOffset, m.input.byteLength), {
      model,
      temperature: m.params.temperatures,
      samples: m.params.samples,
      seed: m.params.seed,
      output: m.params.format,
      signal: ac.signal,
      onProgress: (p) => {
        const q = p.total > 0 ? p.done / p.total : 0;
        if (q - last >= 0.01) {
          last = q;
          port.postMessage({ type: 'progress', id: m.id, progress: Math.min(q, 1) });
        }
      },
    });
    const outputs: ThreadOutput[] = r.images.map((img, k) => ({
      bytes: new Uint8Array(img as Buffer), // a copy that owns its memory, to transfer
      temperature: r.draws[k].temperature,
      seed: r.draws[k].seed,
      width: r.width,
      height: r.height,
    }));
    port.postMessage({ type: 'done', id: m.id, outputs }, outputs.map((o) => o.bytes.buffer as ArrayBuffer));
  } catch (e) {
    const aborted = ac.signal.aborted;
    const message = aborted ? String((ac.signal.reason as Error)?.message ?? ac.signal.reason) : (e as Error).message;
    port.postMessage({ type: 'error', id: m.id, aborted, message });
  } finally {
    running.delete(m.id);
  }
}

parentPort?.on('message', (m: RunMessage | { type: 'abort'; id: string; reason: string }) => {
  if (m.type === 'abort') running.get(m.id)?.abort(new Error(m.reason));
  else if (m.type === 'run') void run(m);
});
