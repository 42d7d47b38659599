#!/usr/bin/env -S node --single-threaded-gc
/** The srflow command line. */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';
import { engineOptionsFromEnv } from '../env.js';
import { configureEngine } from '../models/engine.js';
import { registerBench } from './bench.js';
import { registerVerify } from './verify.js';
import { registerInfo } from './info.js';
import { registerUpscale } from './upscale.js';
import { registerEval } from './eval.js';
import { registerLatent } from './latent.js';
import { registerTrain } from './train.js';
import { registerRestore } from './restore.js';
import { registerTransfer } from './transfer.js';
import { registerModels } from './models.js';
import { registerServe } from './serve.js';
import { registerWorker } from './worker.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('srflow')
    .description('SRFlow super-resolution: sample, train and evaluate SRFlow models on a plain CPU')
    .version(pkg.version)
    .option('--verbose', 'print stack traces on errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    // the environment's engine options (src/env.ts), before any command; its own options (--backend, --threads) win
    .hook('preAction', () => configureEngine(engineOptionsFromEnv()));
  registerBench(program);
  registerVerify(program);
  registerInfo(program);
  registerUpscale(program);
  registerEval(program);
  registerLatent(program);
  registerTrain(program);
  registerRestore(program);
  registerTransfer(program);
  registerModels(program);
  registerServe(program);
  registerWorker(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const verbose = argv.includes('--verbose');
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its message; help and version exit 0
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    const err = e as Error;
    if (err instanceof UsageError) {
      process.stderr.write(`srflow: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`srflow: ${err.message}\n`);
    if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

// `srflow --help | head` closes stdout early: exit quietly instead of crashing on EPIPE
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const isMain = process.argv[1] && import.meta.url === new URL(`file://${(await import('node:fs')).realpathSync(process.argv[1])}`).href;
if (isMain) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
