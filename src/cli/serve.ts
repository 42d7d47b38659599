/**
 * `srflow serve`: the HTTP job API. Without --redis it runs jobs itself (embedded queue, in memory);
 * with --redis it only queues them for `srflow worker`s. See docs/SERVING.md.
 */
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { UsageError, parseInteger, parseNumber } from './errors.js';
import { oneLineErrors } from './progress.js';
import { buildServer } from '../serve/server.js';
import { EmbeddedBackend } from '../serve/embedded.js';
import { RedisBackend, checkRedisUrl } from '../serve/redis.js';
import { catalog, modelScale, type ModelCatalog } from '../serve/models.js';
import { DEFAULT_LIMITS, type Limits } from '../serve/jobs.js';
import { configureKernels } from '../kernels/index.js';
import { defaultModelFromEnv, modelsDirFromEnv } from '../env.js';
import type { Backend } from '../serve/backend.js';
import { threadsOption } from './options.js';

interface ServeCliOptions {
  port: string;
  host: string;
  redis?: string;
  queue: string;
  model?: string;
  modelsDir?: string;
  concurrency: string;
  threads?: string;
  maxUploadMb: string;
  maxPixels: string;
  maxOutputs: string;
  maxQueue: string;
  jobTimeout: string;
  resultTtl: string;
  logRequests?: boolean;
}

const QUEUE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function parseQueueName(v: string): string {
  if (!QUEUE_NAME.test(v)) throw new UsageError(`Expected a queue name of letters, digits, '_' or '-' for --queue but received ${JSON.stringify(v)}`);
  return v;
}

export function parseRedis(v: string): string {
  const bad = checkRedisUrl(v);
  if (bad) throw new UsageError(bad);
  return v;
}

/** --model and --models-dir, checked: the models the process may run. */
export function parseModels(o: { model?: string; modelsDir?: string }, needDefault: boolean): ModelCatalog {
  if (o.modelsDir !== undefined && !(existsSync(o.modelsDir) && statSync(o.modelsDir).isDirectory())) {
    throw new UsageError(`Expected a folder for --models-dir but ${o.modelsDir} is not one`);
  }
  const cat = catalog({ ...o, shippedDir: modelsDirFromEnv(), defaultModel: defaultModelFromEnv() });
  if (o.model !== undefined || needDefault) {
    if (!existsSync(cat.defaultModel)) {
      throw new Error(
        o.model !== undefined
          ? `Cannot read model ${o.model}: file not found`
          : `The default model is not installed (${cat.defaultModel} is missing): pass --model PATH`,
      );
    }
    modelScale(cat.defaultModel); // an srflow model carrying its configuration, or a clear error now
  }
  return cat;
}

/** --threads: the kernels' threads (native pool, wasm workers), here and in the inference threads made from now on. */
export function applyThreads(v: string | undefined): void {
  if (v === undefined) return;
  configureKernels({ threads: parseInteger(v, '--threads', 1) });
}

export function parseLimits(o: ServeCliOptions): Limits {
  const pos = (v: string, name: string) => parseNumber(v, name, (x) => Number.isFinite(x) && x > 0, 'a number > 0');
  return {
    maxUploadBytes: Math.round(pos(o.maxUploadMb, '--max-upload-mb') * 1048576),
    maxPixels: parseInteger(o.maxPixels, '--max-pixels', 1),
    maxOutputs: parseInteger(o.maxOutputs, '--max-outputs', 1),
    maxQueue: parseInteger(o.maxQueue, '--max-queue', 1),
    jobTimeoutMs: Math.round(pos(o.jobTimeout, '--job-timeout') * 1000),
    resultTtlMs: Math.round(pos(o.resultTtl, '--result-ttl') * 1000),
  };
}

/** Resolve on the first SIGTERM/SIGINT; a second one exits at once. */
export function untilSignal(onSecond: () => void): Promise<string> {
  return new Promise((resolve) => {
    let seen = false;
    const h = (sig: string) => {
      if (seen) return onSecond();
      seen = true;
      resolve(sig);
    };
    process.on('SIGTERM', () => h('SIGTERM'));
    process.on('SIGINT', () => h('SIGINT'));
  });
}

export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .description('HTTP API for upscaling jobs: runs them itself, or queues them in Redis for `srflow worker`s')
    .option('--port <n>', 'TCP port (0: any free port)', '8080')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--redis <url>', 'queue jobs in Redis (redis://host:port[/db]) for workers instead of running them here')
    .option('--queue <name>', 'queue name in Redis (servers and workers of one service use the same)', 'srflow')
    .option('--model <path>', 'default model (default: the shipped models/srflow-4x.safetensors, and models/srflow-8x.safetensors for jobs with scale=8)')
    .option('--models-dir <dir>', 'folder of NAME.safetensors models that requests select with model=NAME')
    .option('--concurrency <n>', 'embedded mode: jobs run at once (one inference thread each)', '1')
    .addOption(threadsOption('embedded mode: kernel threads'))
    .option('--max-upload-mb <mb>', 'largest upload (413 above)', String(DEFAULT_LIMITS.maxUploadBytes / 1048576))
    .option('--max-pixels <n>', 'most input pixels, width × height (413 above)', String(DEFAULT_LIMITS.maxPixels))
    .option('--max-outputs <n>', 'most outputs per job, temperatures × samples (400 above)', String(DEFAULT_LIMITS.maxOutputs))
    .option('--max-queue <n>', 'most jobs waiting to start (429 above)', String(DEFAULT_LIMITS.maxQueue))
    .option('--job-timeout <s>', 'seconds a job may run before it fails as timed out', String(DEFAULT_LIMITS.jobTimeoutMs / 1000))
    .option('--result-ttl <s>', 'seconds finished jobs and their outputs are kept', String(DEFAULT_LIMITS.resultTtlMs / 1000))
    .option('--log-requests', 'log every request (JSON lines on stdout)')
    .addHelpText(
      'after',
      `
Endpoints: POST /v1/jobs?temperature=0.8&samples=1&seed=0&scale=4[&model=NAME][&format=png] with the
image as the body (or multipart/form-data) → 202 {"id"}; GET /v1/jobs/:id; GET /v1/jobs/:id/outputs/:n;
DELETE /v1/jobs/:id; GET /healthz; GET /metrics (Prometheus). SIGTERM/SIGINT: stop listening and
(embedded) finish the running jobs; a second signal exits at once. See docs/SERVING.md.`,
    );
  oneLineErrors(cmd);
  cmd.action(async (o: ServeCliOptions) => {
    const port = parseInteger(o.port, '--port', 0);
    if (port > 65535) throw new UsageError(`Expected a port from 0 to 65535 for --port but received ${o.port}`);
    const limits = parseLimits(o);
    const concurrency = parseInteger(o.concurrency, '--concurrency', 1);
    const queue = parseQueueName(o.queue);
    const redisUrl = o.redis !== undefined ? parseRedis(o.redis) : undefined;
    if (redisUrl && (o.threads !== undefined || o.concurrency !== '1')) {
      throw new UsageError('--concurrency and --threads are for the embedded mode; with --redis give them to `srflow worker`');
    }
    const models = parseModels(o, !redisUrl);
    applyThreads(o.threads);

    const backend: Backend = redisUrl ? await RedisBackend.connect(redisUrl, queue, limits) : new EmbeddedBackend(limits, models, concurrency);
    const app = await buildServer({ backend, limits, models, logRequests: o.logRequests });
    try {
      await app.listen({ port, host: o.host });
    } catch (e) {
      await backend.close();
      throw new Error(`Cannot listen on ${o.host}:${port}: ${(e as Error).message}`);
    }
    const addr = app.server.address();
    const where = typeof addr === 'object' && addr ? `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}` : String(addr);
    process.stdout.write(
      `srflow serve: listening on ${where} (${redisUrl ? `Redis ${redisUrl}, queue ${queue}` : `embedded, ${concurrency} job(s) at once`})\n`,
    );

    const sig = await untilSignal(() => {
      process.stderr.write('srflow serve: second signal, exiting now\n');
      process.exit(1);
    });
    const running = backend instanceof EmbeddedBackend ? backend.active : 0;
    process.stdout.write(`srflow serve: ${sig}: ${backend.mode === 'embedded' ? `finishing ${running} running job(s)` : 'closing'}\n`);
    await app.close(); // stops listening; requests in flight are answered
    await backend.close();
    process.stdout.write('srflow serve: stopped\n');
  });
}
