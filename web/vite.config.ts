/**
 * Builds the page (web/) into web/dist/: `vite build --config web/vite.config.ts`.
 * - Node built-ins imported by engine modules that the page uses only for their pure parts
 *   (node:fs in config.ts and safetensors.ts, node:module in kernels/native.ts, ...) resolve to
 *   a stub that throws if ever called.
 * - The model: models/srflow-4x.safetensors when it exists, else an untrained tiny demo model
 *   generated here (web/make-demo-model.ts); emitted as dist/model/ with model/model.json.
 *   SRFLOW_WEB_MODEL=path/to/model.safetensors builds the page with another native model file.
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
      const names = ['readFileSync', 'writeFileSync', 'openSync', 'readSync', 'closeSync', 'fstatSync', 'renameSync', 'writeSync', 'unlinkSync', 'existsSync', 'statSync', 'mkdirSync', 'readdirSync', 'createRequire', 'basename', 'dirname', 'join', 'resolve', 'readFile', 'writeFile', 'Worker', 'parentPort', 'workerData', 'availableParallelism', 'cpus', 'fileURLToPath', 'pathToFileURL', 'crc32', 'inflateRawSync', 'inflateSync', 'gunzipSync', 'deflateRawSync', 'getBuiltinModule'];
      const body = names.map((n) => `export function ${n}() { throw new Error('node:${n} is not available in the browser'); }`).join('\n');
      return `${body}\nexport default {};\n`;
    },
  };
}

function srflowModel(): Plugin {
  return {
    name: 'srflow-model',
    apply: 'build',
    generateBundle() {
      const trained = process.env.SRFLOW_WEB_MODEL ? resolve(process.env.SRFLOW_WEB_MODEL) : join(root, 'models', 'srflow-4x.safetensors');
      let bytes: Buffer;
      let untrained = false;
      if (existsSync(trained)) {
        bytes = readFileSync(trained);
      } else {
        const dir = mkdtempSync(join(tmpdir(), 'srflow-web-'));
        try {
          const out = join(dir, 'demo.safetensors');
          const r = spawnSync(process.execPath, ['--import', 'tsx', join(web, 'make-demo-model.ts'), out], { cwd: root, encoding: 'utf8' });
          if (r.status !== 0) throw new Error(`cannot generate the demo model: ${r.stderr}`);
          bytes = readFileSync(out);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
        untrained = true;
        this.warn('models/srflow-4x.safetensors not found: the page uses an untrained demo model');
      }
      this.emitFile({ type: 'asset', fileName: 'model/srflow-4x.safetensors', source: bytes });
      this.emitFile({
        type: 'asset',
        fileName: 'model/model.json',
        source: JSON.stringify({ file: 'srflow-4x.safetensors', name: untrained ? 'untrained demo model' : basename(trained, '.safetensors'), untrained }),
      });
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
