/**
 * An inference thread (worker_threads): runs one job at a time with the library's engine
 * (`upscaleLoaded`), off the main thread, so that the main thread keeps answering HTTP requests and
 * renewing queue locks while the (synchronous) kernels run. Images arrive decoded and leave as
 * float planes: decoding and encoding (sharp) stay on the main thread (pool.ts). Models are loaded
 * once and kept (the last few used).
 *
 * Messages in:  { type: 'run', id, rgb, alpha, draws, scale, modelPath }   (planes: Planar)
 *               { type: 'abort', id, reason }
 * Messages out: { type: 'progress', id, progress }   (0..1)
 *               { type: 'done', id, samples: Planar[], alpha: Planar | null }
 *               { type: 'error', id, aborted: boolean, message }
 */
import { parentPort, workerData } from 'node:worker_threads';
import { statSync } from 'node:fs';
import { upscaleLoaded, type Draw } from '../upscale/index.js';
import { loadModel, type SRFlowModel } from '../models/api.js';
import type { LoadedImage, Planar } from '../io/image.js';
import { configureEngine, type EngineOptions } from '../models/engine.js';

configureEngine((workerData as { engine?: EngineOptions } | null)?.engine); // as the spawning thread (pool.ts)

export interface RunMessage {
  type: 'run';
  id: string;
  rgb: Planar;
  alpha: Planar | null;
  draws: Draw[];
  scale: number;
  modelPath: string;
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
    if (model.scale !== m.scale) throw new Error(`This model upscales ${model.scale}×, not ${m.scale}× (scale=${m.scale})`);
    let last = -1;
    const img = { rgb: m.rgb, alpha: m.alpha } as LoadedImage; // upscaleLoaded reads only the planes
    const up = await upscaleLoaded(model, img, {
      draws: m.draws,
      signal: ac.signal,
      onProgress: (p) => {
        const q = p.total > 0 ? p.done / p.total : 0;
        if (q - last >= 0.01) {
          last = q;
          port.postMessage({ type: 'progress', id: m.id, progress: Math.min(q, 1) });
        }
      },
    });
    const planes = [...up.samples, ...(up.alpha ? [up.alpha] : [])];
    const buffers = [...new Set(planes.map((p) => p.data.buffer as ArrayBuffer))];
    port.postMessage({ type: 'done', id: m.id, samples: up.samples, alpha: up.alpha }, buffers);
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
