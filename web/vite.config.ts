/**
 * Builds the page (web/) into web/dist/: `vite build --config web/vite.config.ts`.
 * - Node built-ins imported by engine modules that the page uses only for their pure parts
 *   (node:fs in config.ts and safetensors.ts, node:module in kernels/native.ts, ...) resolve to
 *   a stub that throws if ever called.
 * - The models, one per scale the page offers (4× and 8×): models/srflow-4x.safetensors and
 *   models/srflow-8x.safetensors when they exist, else an untrained tiny demo model of that scale
 *   generated here (web/make-demo-model.ts); emitted as dist/model/ with model/model.json (the
 *   list: scale, file, name, untrained). SRFLOW_WEB_MODEL / SRFLOW_WEB_MODEL_8X=path/to/model.safetensors
 *   build the page with another native model file for 4× / 8×.
 */
import { defineConfig, type Plugin } from 'vite';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = fileURLToPath(new URL('.', import.meta.url));
const root = resolve(web, '..');
const STUB = '\0srflow-node-stub';

function nodeStub(): Plugin {
  return {
    name: 'srflow-node-stub',
    enforce: 'pre',
    resolveId(id) {
      if (id.startsWith('node:')) return STUB;
      return null;
    },
    load(id) {
      if (id !== STUB) return null;
      const names = [
        'readFileSync',
        'writeFileSync',
        'openSync',
        'readSync',
        'closeSync',
        'fstatSync',
        'renameSync',
        'writeSync',
        'unlinkSync',
        'existsSync',
        'statSync',
        'mkdirSync',
        'readdirSync',
        'createRequire',
        'basename',
        'dirname',
        'join',
        'resolve',
        'readFile',
        'writeFile',
        'Worker',
        'parentPort',
        'workerData',
        'availableParallelism',
        'cpus',
        'fileURLToPath',
        'pathToFileURL',
        'crc32',
        'inflateRawSync',
        'inflateSync',
        'gunzipSync',
        'deflateRawSync',
        'getBuiltinModule',
      ];
      const body = names.map((n) => `export function ${n}() { throw new Error('node:${n} is not available in the browser'); }`).join('\n');
      return `${body}\nexport default {};\n`;
    },
  };
}

/** The shipped scales the page offers (the 4× model first: the page starts with it). */
const SCALES = [4, 8] as const;

/** The model file of a scale: SRFLOW_WEB_MODEL (4×) / SRFLOW_WEB_MODEL_8X (8×), else models/srflow-<s>x.safetensors. */
function trainedModel(scale: number): string {
  const env = process.env[scale === 4 ? 'SRFLOW_WEB_MODEL' : `SRFLOW_WEB_MODEL_${scale}X`];
  return env ? resolve(env) : join(root, 'models', `srflow-${scale}x.safetensors`);
}

/** An untrained tiny model of a scale (web/make-demo-model.ts), for a build without the trained one. */
function demoModel(scale: number): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'srflow-web-'));
  try {
    const out = join(dir, 'demo.safetensors');
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(web, 'make-demo-model.ts'), out, String(scale)], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cannot generate the ${scale}x demo model: ${r.stderr}`);
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function srflowModel(): Plugin {
  return {
    name: 'srflow-model',
    apply: 'build',
    generateBundle() {
      const models: { scale: number; file: string; name: string; untrained: boolean }[] = [];
      for (const scale of SCALES) {
        const trained = trainedModel(scale);
        const untrained = !existsSync(trained);
        if (untrained) this.warn(`${trained} not found: the page's ${scale}× choice uses an untrained demo model`);
        const file = `srflow-${scale}x.safetensors`;
        this.emitFile({ type: 'asset', fileName: `model/${file}`, source: untrained ? demoModel(scale) : readFileSync(trained) });
        models.push({ scale, file, name: untrained ? 'untrained demo model' : basename(trained, '.safetensors'), untrained });
      }
      this.emitFile({ type: 'asset', fileName: 'model/model.json', source: JSON.stringify({ models }) });
    },
  };
}

const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root: web,
  base: './',
  logLevel: 'warn',
  plugins: [nodeStub(), srflowModel()],
  worker: { format: 'es', plugins: () => [nodeStub()] },
  build: {
    outDir: join(web, 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 2000,
    assetsInlineLimit: 0,
  },
  server: { headers: isolation, fs: { allow: [root] } },
  preview: { headers: isolation },
});
