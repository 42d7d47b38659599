/** `srflow worker --redis URL`: runs queued jobs (see src/serve/worker.ts and docs/SERVING.md). */
import type { Command } from 'commander';
import { parseInteger } from './errors.js';
import { oneLineErrors } from './progress.js';
import { applyThreads, parseModels, parseQueueName, parseRedis, untilSignal } from './serve.js';
import { startWorker } from '../serve/worker.js';
import { threadsOption } from './options.js';

interface WorkerCliOptions {
  redis: string;
  queue: string;
  concurrency: string;
  threads?: string;
  model?: string;
  modelsDir?: string;
  lockDuration: string;
  stalledInterval: string;
  maxStalled: string;
  quiet?: boolean;
}

export function registerWorker(program: Command): void {
  const cmd = program
    .command('worker')
    .description('run upscaling jobs from a Redis queue (filled by `srflow serve --redis`); any number, on any machines')
    .requiredOption('--redis <url>', "the queue's Redis (redis://host:port[/db])")
    .option('--queue <name>', 'queue name (as given to srflow serve)', 'srflow')
    .option('--concurrency <n>', 'jobs run at once (one inference thread each)', '1')
    .addOption(threadsOption())
    .option('--model <path>', 'default model (default: the shipped models/srflow-4x.safetensors, and models/srflow-8x.safetensors for jobs with scale=8)')
    .option('--models-dir <dir>', 'folder of NAME.safetensors models that jobs select with model=NAME')
    .option('--lock-duration <ms>', "job lock time: a dead worker's job is taken over after this", '10000')
    .option('--stalled-interval <ms>', 'how often to look for jobs of dead workers', '5000')
    .option('--max-stalled <n>', 'times one job may be taken over from dead workers before it fails', '2')
    .option('--quiet', 'no log lines')
    .addHelpText(
      'after',
      `
One line per event on stdout (ready, job started/done/failed). SIGTERM/SIGINT drains: the worker takes
no new jobs, finishes the running ones and exits 0; a second signal exits at once (its running jobs
are then taken over by other workers after --lock-duration). See docs/SERVING.md.`,
    );
  oneLineErrors(cmd);
  cmd.action(async (o: WorkerCliOptions) => {
    const redisUrl = parseRedis(o.redis);
    const queue = parseQueueName(o.queue);
    const concurrency = parseInteger(o.concurrency, '--concurrency', 1);
    const lockDurationMs = parseInteger(o.lockDuration, '--lock-duration', 100);
    const stalledIntervalMs = parseInteger(o.stalledInterval, '--stalled-interval', 100);
    const maxStalledCount = parseInteger(o.maxStalled, '--max-stalled', 0);
    const models = parseModels(o, false);
    applyThreads(o.threads);
    const log = o.quiet ? () => {} : (line: string) => process.stdout.write(`srflow worker: ${line}\n`);
    const w = await startWorker({ redisUrl, queue, concurrency, models, lockDurationMs, stalledIntervalMs, maxStalledCount, log });
    const sig = await untilSignal(() => {
      log('second signal: leaving the running jobs to other workers');
      w.close(true).finally(() => process.exit(1));
    });
    log(`${sig}: draining (finishing running jobs, taking no new ones)`);
    await w.close();
    log('stopped');
  });
}
