/**
 * `srflow bench load FILE`: time and peak memory of loading a model file, each measurement in a
 * fresh process (peak RSS is per process), readers alternating round after round:
 *
 * - `stream` (what srflow does): the zip directory and the pickle are read, the architecture is
 *   built without random initialisation, and every tensor is read from the file straight into its
 *   parameter's array.
 * - `whole` (the loader before, kept here for the comparison): the file read into one buffer,
 *   tensors as views into it, the model built with its random initialisation, parameters pointed at
 *   the views.
 *
 * Reported per reader: median load time, and the peak extra memory (peak RSS of the process during
 * the load minus its RSS before) in MB and as a multiple of the file's size.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UsageError } from '../errors.js';

export type LoadReader = 'stream' | 'whole';

export interface LoadRun {
  reader: LoadReader;
  ms: number;
  rssBeforeMB: number;
  peakExtraMB: number;
  parameters: number;
}

export interface LoadBenchResult {
  file: string;
  fileMB: number;
  rounds: number;
  readers: Record<string, { ms: number; peakExtraMB: number; peakExtraX: number; runs: LoadRun[] }>;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function readWhole(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const buf = new Uint8Array(size);
    for (let off = 0; off < size;) {
      const got = readSync(fd, buf, off, Math.min(size - off, 1 << 30), off);
      if (got <= 0) throw new Error(`${path}: unexpected end of file`);
      off += got;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** One load in this process (the child side). */
async function loadOnce(file: string, reader: LoadReader): Promise<LoadRun> {
  const { loadNetDetailed } = await import('../models/api.js');
  const { parsePth } = await import('../io/pth.js');
  const { parseSafetensors } = await import('../io/safetensors.js');
  const { inferLayout } = await import('../models/infer-layout.js');
  const { SRFlowNet } = await import('../models/srflow.js');
  const { RRDBOnlyNet } = await import('../models/rrdb-model.js');
  const { bumpParameterVersion } = await import('../tensor/tensor.js');
  (globalThis as { gc?: () => void }).gc?.();
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  let parameters = 0;
  if (reader === 'stream') {
    const d = loadNetDetailed(file);
    for (const p of d.net.parameters().values()) parameters += p.size;
  } else {
    const buf = readWhole(file);
    const state = buf[0] === 0x50 ? parsePth(buf, file) : parseSafetensors(buf, file).tensors;
    const lay = inferLayout(new Map([...state].map(([k, t]) => [k, t.shape])), file);
    const net = lay.kind === 'rrdb' ? new RRDBOnlyNet(lay.config) : new SRFlowNet(lay.config);
    const params = net.parameters();
    for (const [k, t] of state) {
      const p = params.get(lay.rename.get(k) ?? k);
      if (p && p.size === t.data.length) p.data = t.data;
    }
    bumpParameterVersion();
    net.markLoaded();
    for (const p of params.values()) parameters += p.size;
  }
  const ms = performance.now() - t0;
  const peak = process.resourceUsage().maxRSS * 1024;
  return { reader, ms, rssBeforeMB: rssBefore / 1048576, peakExtraMB: (peak - rssBefore) / 1048576, parameters };
}

/** The child process's arguments: this flag, then { file, reader } as JSON. */
const CHILD_FLAG = '--bench-load-child';

export function benchLoad(opts: { file: string; rounds?: number; readers?: LoadReader[]; onRun?: (r: LoadRun) => void }): LoadBenchResult {
  const { file } = opts;
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    throw new UsageError(`Cannot benchmark loading ${file}: file not found`);
  }
  const rounds = opts.rounds ?? 3;
  const readers = opts.readers ?? ['stream', 'whole'];
  const runs: LoadRun[] = [];
  const self = fileURLToPath(import.meta.url);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? readers.slice().reverse() : readers;
    for (const reader of order) {
      const child = spawnSync(process.execPath, [...process.execArgv, '--expose-gc', self, CHILD_FLAG, JSON.stringify({ file, reader })], {
        encoding: 'utf8',
        maxBuffer: 1 << 24,
      });
      const line = child.stdout.split('\n').find((l) => l.startsWith('LOAD_RUN '));
      if (!line) throw new Error(`the ${reader} load of ${file} failed: ${child.stderr.trim().split('\n').slice(-3).join(' ')}`);
      const run = JSON.parse(line.slice('LOAD_RUN '.length)) as LoadRun;
      runs.push(run);
      opts.onRun?.(run);
    }
  }
  const fileMB = size / 1048576;
  const out: LoadBenchResult['readers'] = {};
  for (const reader of readers) {
    const mine = runs.filter((x) => x.reader === reader);
    const peak = median(mine.map((x) => x.peakExtraMB));
    out[reader] = { ms: median(mine.map((x) => x.ms)), peakExtraMB: peak, peakExtraX: peak / fileMB, runs: mine };
  }
  return { file, fileMB, rounds, readers: out };
}

// child process: one load, one line of JSON
if (process.argv[2] === CHILD_FLAG && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { file, reader } = JSON.parse(process.argv[3]) as { file: string; reader: LoadReader };
  const run = await loadOnce(file, reader);
  process.stdout.write(`LOAD_RUN ${JSON.stringify(run)}\n`);
}
