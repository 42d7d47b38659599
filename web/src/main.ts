/**
 * The page: loads the model of the chosen scale (4× or 8×, `#scale`, `?scale=8` preselects; each
 * model file is downloaded once, when first chosen), runs the inference worker (worker.ts) and
 * shows the samples, a before/after comparison, the mean and the uncertainty map. Cancel terminates
 * the worker and starts a fresh one with the model already in memory. `document.body.dataset.state` is
 * loading | ready | running | done | cancelled | error (tests wait on it).
 */
import { setupModelPicker } from './published.js';
import wasmUrl from '../../wasm/srflow-kernels.wasm?url';
import wasmThreadsUrl from '../../wasm/srflow-kernels-threads.wasm?url';
import { parsePref, type FromWorker, type ModelInfo, type Rgba, type ToWorker } from './protocol.js';
import { createBrush } from './brush.js';

/** Largest output side: inputs are accepted up to this / scale per side (512 at 4×, 256 at 8×). */
const MAX_OUTPUT_SIDE = 2048;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  badge: $('model-badge'),
  backend: $('backend'),
  drop: $('drop'),
  dropText: $('drop-text'),
  file: $<HTMLInputElement>('file'),
  scale: $<HTMLSelectElement>('scale'),
  temperature: $<HTMLInputElement>('temperature'),
  temperatureOut: $<HTMLOutputElement>('temperature-out'),
  samples: $<HTMLInputElement>('samples'),
  seed: $<HTMLInputElement>('seed'),
  run: $<HTMLButtonElement>('run'),
  cancel: $<HTMLButtonElement>('cancel'),
  progress: $<HTMLProgressElement>('progress'),
  status: $('status'),
  results: $('results'),
  before: $<HTMLCanvasElement>('before'),
  after: $<HTMLCanvasElement>('after'),
  afterTag: $('after-tag'),
  divider: $('divider'),
  split: $<HTMLInputElement>('split'),
  samplesRow: $('samples-row'),
  statsRow: $('stats-row'),
  stdWhite: $('std-white'),
  timing: $('timing'),
};

const brush = createBrush($('brush'));

type State = 'loading' | 'ready' | 'running' | 'done' | 'cancelled' | 'error';
let worker: Worker | null = null;
let workerReady = false;
let info: ModelInfo | null = null;
/** A shipped model the build emitted (model/model.json). */
interface ModelDesc {
  scale: number;
  file: string;
  name: string;
  untrained: boolean;
}
type ModelBytes = { bytes: ArrayBuffer; name: string; untrained: boolean };
let descs: ModelDesc[] = [];
/** Downloaded shipped models by scale (kept: switching back needs no second download). */
const downloaded = new Map<number, ModelBytes>();
let model: ModelBytes | null = null;
let image: { rgba: Rgba; bitmap: ImageBitmap; name: string; file: string } | null = null;
let runId = 0;
let running = false;
let lastResult: Extract<FromWorker, { type: 'result' }> | null = null;
let selected = 0;
const objectUrls: string[] = [];
/** Seconds per LR pixel and sample measured by the last run (for estimates), 0 before one. */
let rate = 0;

function setState(s: State): void {
  document.body.dataset.state = s;
  ui.run.disabled = !(workerReady && image && !running);
  ui.cancel.disabled = !running;
  ui.scale.disabled = running || s === 'loading';
}

/** The scale of the model that runs (once the worker is ready), else the one chosen. */
function scale(): number {
  return info?.scale ?? Number(ui.scale.value);
}

/** Why an image of this size cannot be upscaled at the current scale, or null. */
function sizeProblem(name: string, w: number, h: number): string | null {
  const s = scale();
  const max = Math.floor(MAX_OUTPUT_SIDE / s);
  if (w > max || h > max) {
    return `“${name}” is ${w}×${h}: too large for the browser at ${s}× (at most ${max}×${max}; the output would be ${w * s}×${h * s}). Crop or shrink it first.`;
  }
  if (w < 2 || h < 2) return `“${name}” is ${w}×${h}: too small (at least 2×2).`;
  return null;
}

function status(text: string, kind: '' | 'error' | 'warn' = ''): void {
  ui.status.textContent = text;
  ui.status.className = kind;
}

function fail(text: string): void {
  status(text, 'error');
  setState('error');
}

/** Threads: all cores (at most 8) when cross-origin isolated, else 1; `?threads=N` overrides. */
function threadsWanted(): number {
  if (!globalThis.crossOriginIsolated) return 1;
  const asked = Number(new URLSearchParams(location.search).get('threads'));
  if (Number.isInteger(asked) && asked >= 1) return Math.min(asked, 16);
  return Math.max(1, Math.min(8, navigator.hardwareConcurrency || 1));
}

// ------------------------------------------------------------------------------------------
// model and worker

/** The shipped models the build emitted; fills the scale choice (`?scale=8` preselects 8×). */
async function fetchModelList(): Promise<void> {
  const mres = await fetch('model/model.json');
  if (!mres.ok) throw new Error(`no model description (model/model.json: HTTP ${mres.status})`);
  descs = ((await mres.json()) as { models: ModelDesc[] }).models;
  if (!descs?.length) throw new Error('model/model.json lists no model');
  ui.scale.replaceChildren(
    ...descs.map((d) => {
      const o = document.createElement('option');
      o.value = String(d.scale);
      o.textContent = `${d.scale}×`;
      return o;
    }),
  );
  const asked = new URLSearchParams(location.search).get('scale');
  ui.scale.value = String((descs.find((d) => String(d.scale) === asked) ?? descs[0]).scale);
}

/** The shipped model of the chosen scale, downloaded once (with progress). */
async function fetchModel(): Promise<void> {
  const desc = descs.find((d) => String(d.scale) === ui.scale.value) ?? descs[0];
  const have = downloaded.get(desc.scale);
  if (have) {
    model = have;
    return;
  }
  status(`Downloading the ${desc.scale}× model…`);
  const res = await fetch(`model/${desc.file}`);
  if (!res.ok || !res.body) throw new Error(`cannot download the model (HTTP ${res.status})`);
  const total = Number(res.headers.get('content-length')) || 0;
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    got += value.byteLength;
    if (total) {
      ui.progress.value = got / total;
      status(`Downloading the ${desc.scale}× model… ${(got / 2 ** 20).toFixed(1)} of ${(total / 2 ** 20).toFixed(1)} MiB`);
    }
  }
  const bytes = new Uint8Array(got);
  let off = 0;
  for (const p of parts) {
    bytes.set(p, off);
    off += p.byteLength;
  }
  model = { bytes: bytes.buffer, name: desc.name, untrained: desc.untrained };
  downloaded.set(desc.scale, model);
}

/** The chosen scale's model (downloaded on first use) in a fresh worker; false when it cannot be loaded. */
async function startChosenModel(): Promise<boolean> {
  try {
    await fetchModel();
  } catch (e) {
    fail(`Cannot load the model: ${(e as Error).message}`);
    return false;
  }
  status('Starting the engine…');
  startWorker();
  return true;
}

/** Another scale chosen: its model in a fresh worker. */
async function changeScale(): Promise<void> {
  if (running) return;
  worker?.terminate();
  worker = null;
  workerReady = false;
  info = null;
  setState('loading');
  await startChosenModel();
}

function startWorker(): void {
  if (!model) return;
  workerReady = false;
  const w = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  worker = w;
  w.onmessage = (ev: MessageEvent<FromWorker>) => {
    if (w !== worker) return;
    onWorkerMessage(ev.data);
  };
  w.onerror = (ev) => {
    if (w !== worker) return;
    running = false;
    fail(`The worker failed: ${ev.message || 'unknown error'}`);
  };
  const init: ToWorker = {
    type: 'init',
    model: model.bytes, // copied: the page keeps its copy for a restart after cancel
    name: model.name,
    untrained: model.untrained,
    wasm: new URL(wasmUrl, location.href).href,
    wasmThreads: new URL(wasmThreadsUrl, location.href).href,
    threads: threadsWanted(),
    backend: parsePref(new URLSearchParams(location.search).get('backend')),
  };
  w.postMessage(init);
}

function onWorkerMessage(m: FromWorker): void {
  if (m.type === 'ready') {
    workerReady = true;
    info = m.info;
    ui.badge.textContent = m.info.untrained
      ? 'untrained demo model (random weights: results are not meaningful)'
      : `model: ${m.info.name} (${(m.info.parameters / 1e6).toFixed(1)} M parameters)`;
    ui.badge.classList.toggle('untrained', m.info.untrained);
    ui.run.textContent = m.info.kind === 'rrdb' ? `Upscale ${m.info.scale}× (RRDB: deterministic)` : `Upscale ${m.info.scale}×`;
    ui.backend.textContent = m.backend;
    ui.backend.title = m.why ?? '';
    document.body.dataset.backend = m.gpu ? 'webgpu' : 'wasm';
    if (image) {
      // another scale: the chosen image's output size changed, and it may now be too large
      const bad = sizeProblem(image.file, image.bitmap.width, image.bitmap.height);
      if (bad) {
        image = null;
        fail(bad);
        return;
      }
      describeImage();
    }
    if (document.body.dataset.state === 'loading') {
      ui.progress.value = 0;
      status(image ? 'Ready.' : 'Ready: choose an image.');
      setState('ready');
    } else setState((document.body.dataset.state as State) ?? 'ready');
    return;
  }
  if (m.type === 'error') {
    if (m.id !== -1 && m.id !== runId) return;
    running = false;
    fail(m.id === -1 ? `Cannot start: ${m.message}` : `Upscaling failed: ${m.message}`);
    return;
  }
  if (m.id !== runId) return;
  if (m.type === 'progress') {
    ui.progress.value = m.done / m.total;
    status(`Working: ${m.stage}…`);
    return;
  }
  running = false;
  ui.progress.value = 1;
  lastResult = m;
  if (image) rate = m.seconds / (image.rgba.width * image.rgba.height * m.samples.length);
  const tiles = m.tiles > 1 ? ` (${m.tiles} tiles)` : '';
  const overflow = m.nonFinite > 0 ? ` ${m.nonFinite} values overflowed (shown black): try a lower temperature.` : '';
  status(
    `Done: ${m.samples.length} sample${m.samples.length > 1 ? 's' : ''} of ${m.samples[0].width}×${m.samples[0].height} in ${m.seconds.toFixed(1)} s${tiles}.${overflow}`,
  );
  showResult(m);
  setState('done');
}

// ------------------------------------------------------------------------------------------
// input image

async function takeFile(file: File): Promise<void> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    image = null;
    fail(`Cannot read “${file.name}”: not an image this browser can decode (use PNG, JPEG, WebP, GIF or BMP).`);
    return;
  }
  const bad = sizeProblem(file.name, bitmap.width, bitmap.height);
  if (bad) {
    image = null;
    fail(bad);
    return;
  }
  const c = new OffscreenCanvas(bitmap.width, bitmap.height);
  const g = c.getContext('2d')!;
  g.drawImage(bitmap, 0, 0);
  const d = g.getImageData(0, 0, bitmap.width, bitmap.height);
  image = { rgba: { width: d.width, height: d.height, data: d.data }, bitmap, name: file.name.replace(/\.[^.]*$/, '') || 'image', file: file.name };
  brush.setImage(bitmap);
  describeImage();
  if (workerReady) {
    const px = bitmap.width * bitmap.height;
    if (rate > 0 && rate * px > 20) status(`Ready. Estimated ${Math.round(rate * px)} s per sample on this device (Cancel stops it).`, 'warn');
    else if (rate === 0 && px > 128 * 128) status('Ready. A large image: expect a minute or more per sample (Cancel stops it).', 'warn');
    else status('Ready.');
    setState('ready');
  } else setState((document.body.dataset.state as State) ?? 'loading');
}

/** The chosen image's preview and its output size at the current scale. */
function describeImage(): void {
  if (!image) return;
  const { bitmap } = image;
  const preview = document.createElement('canvas');
  preview.width = bitmap.width;
  preview.height = bitmap.height;
  preview.getContext('2d')!.drawImage(bitmap, 0, 0);
  const zoom = Math.max(1, Math.floor(128 / Math.max(bitmap.width, bitmap.height)));
  preview.style.width = `${bitmap.width * zoom}px`;
  const s = scale();
  ui.dropText.replaceChildren(
    preview,
    document.createElement('br'),
    `${image.file}: ${bitmap.width}×${bitmap.height} → ${bitmap.width * s}×${bitmap.height * s} (click or drop to change)`,
  );
}

function run(): void {
  if (!worker || !workerReady || !image || running) return;
  const samples = Math.max(1, Math.min(8, Math.floor(Number(ui.samples.value) || 1)));
  ui.samples.value = String(samples);
  const temperature = Number(ui.temperature.value);
  const seed = Math.max(0, Math.floor(Number(ui.seed.value) || 0));
  running = true;
  runId++;
  ui.progress.value = 0;
  status('Working…');
  setState('running');
  const data = new Uint8ClampedArray(image.rgba.data);
  const temperatureMap = brush.map() ?? undefined;
  const msg: ToWorker = {
    type: 'run',
    id: runId,
    image: { width: image.rgba.width, height: image.rgba.height, data },
    temperature,
    samples,
    seed,
    temperatureMap,
    ...(new URLSearchParams(location.search).get('guard') === '0' ? { guard: false } : {}),
  };
  worker.postMessage(msg, temperatureMap ? [data.buffer, temperatureMap.data.buffer] : [data.buffer]);
}

function cancel(): void {
  if (!running) return;
  running = false;
  runId++;
  worker?.terminate();
  worker = null;
  ui.progress.value = 0;
  status('Cancelled.', 'warn');
  setState('cancelled');
  startWorker(); // the model stays in memory: a fresh worker is ready in a moment
}

// ------------------------------------------------------------------------------------------
// output

function toCanvas(img: Rgba): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = img.width;
  c.height = img.height;
  c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
  return c;
}

function downloadLink(c: HTMLCanvasElement, file: string): HTMLAnchorElement {
  const a = document.createElement('a');
  a.className = 'dl';
  a.textContent = 'download PNG';
  a.download = file;
  a.href = '#';
  c.toBlob((b) => {
    if (!b) return;
    const url = URL.createObjectURL(b);
    objectUrls.push(url);
    a.href = url;
  }, 'image/png');
  return a;
}

function tile(c: HTMLCanvasElement, caption: string, file: string): HTMLElement {
  const f = document.createElement('figure');
  f.className = 'tile';
  const cap = document.createElement('figcaption');
  const label = document.createElement('span');
  label.textContent = caption;
  cap.append(label, downloadLink(c, file));
  f.append(c, cap);
  return f;
}

function drawCompare(): void {
  if (!lastResult || !image) return;
  const s = lastResult.samples[selected];
  for (const c of [ui.before, ui.after]) {
    c.width = s.width;
    c.height = s.height;
  }
  const b = ui.before.getContext('2d')!;
  b.imageSmoothingEnabled = true;
  b.imageSmoothingQuality = 'high';
  b.drawImage(image.bitmap, 0, 0, s.width, s.height);
  ui.after.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(s.data), s.width, s.height), 0, 0);
  ui.afterTag.textContent = `sample ${selected + 1}`;
  applySplit();
  ui.samplesRow.querySelectorAll('.tile').forEach((t, i) => t.classList.toggle('selected', i === selected));
}

function applySplit(): void {
  const p = Number(ui.split.value);
  ui.after.style.clipPath = `inset(0 0 0 ${p}%)`;
  ui.divider.style.left = `${p}%`;
}

function showResult(m: Extract<FromWorker, { type: 'result' }>): void {
  for (const u of objectUrls.splice(0)) URL.revokeObjectURL(u);
  const base = image?.name ?? 'image';
  const tau = Number(ui.temperature.value).toFixed(2);
  const x = `x${scale()}`;
  ui.samplesRow.replaceChildren(
    ...m.samples.map((s, i) => {
      const c = toCanvas(s);
      c.className = 'sample';
      c.title = 'compare this sample';
      const t = tile(c, `sample ${i + 1} (τ = ${tau})`, `${base}_${x}_t${tau}_s${i + 1}.png`);
      c.addEventListener('click', () => {
        selected = i;
        drawCompare();
      });
      return t;
    }),
  );
  const mean = toCanvas(m.mean);
  mean.id = 'mean';
  const std = toCanvas(m.std);
  std.id = 'uncertainty';
  ui.statsRow.replaceChildren(
    tile(mean, `mean of ${m.samples.length}`, `${base}_${x}_mean.png`),
    tile(std, m.samples.length > 1 ? 'uncertainty (std across samples)' : 'uncertainty (needs ≥ 2 samples)', `${base}_${x}_uncertainty.png`),
  );
  ui.stdWhite.textContent = m.stdMax > 0 ? `${(m.stdMax * 255).toFixed(1)} / 255` : '–';
  ui.timing.textContent = `${m.samples[0].width}×${m.samples[0].height}, ${m.seconds.toFixed(1)} s on ${m.backend.startsWith('webgpu') ? 'WebGPU' : 'WebAssembly'}`;
  selected = 0;
  ui.results.hidden = false;
  drawCompare();
}

// ------------------------------------------------------------------------------------------
// wiring

ui.temperature.addEventListener('input', () => (ui.temperatureOut.value = Number(ui.temperature.value).toFixed(2)));
ui.split.addEventListener('input', applySplit);
ui.scale.addEventListener('change', () => void changeScale());
ui.run.addEventListener('click', run);
ui.cancel.addEventListener('click', cancel);
ui.drop.addEventListener('click', () => ui.file.click());
ui.drop.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') ui.file.click();
});
ui.file.addEventListener('change', () => {
  const f = ui.file.files?.[0];
  if (f) void takeFile(f);
});
ui.drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  ui.drop.classList.add('over');
});
ui.drop.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
ui.drop.addEventListener('drop', (e) => {
  e.preventDefault();
  ui.drop.classList.remove('over');
  const f = e.dataTransfer?.files?.[0];
  if (f) void takeFile(f);
});

async function main(): Promise<void> {
  setState('loading');
  if (typeof Worker === 'undefined' || typeof WebAssembly === 'undefined' || typeof OffscreenCanvas === 'undefined') {
    fail('This browser lacks Web Workers, WebAssembly or OffscreenCanvas: use a current Chrome, Edge, Firefox or Safari.');
    return;
  }
  try {
    status('Downloading the model…');
    await fetchModelList();
  } catch (e) {
    fail(`Cannot load the model: ${(e as Error).message}`);
    return;
  }
  if (!(await startChosenModel())) return;
  setupModelPicker(
    ui.badge,
    (picked) => {
      // a model file the user picked (read in this browser): restart the worker with it
      model = { bytes: picked.bytes, name: picked.name, untrained: false };
      worker?.terminate();
      running = false;
      ui.badge.textContent = `loading ${picked.name}…`;
      setState('loading');
      status(`Loading ${picked.name}…`);
      startWorker();
    },
    fail,
  );
}

void main();
void info;
