import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { loadTrainOptions, type Stage } from '../train/options.js';
import { Trainer } from '../train/trainer.js';
import { UsageError, parseInteger } from './errors.js';
import { resolveModelArg } from './model-arg.js';

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train SRFlow by maximum likelihood (stage flow) or pre-train its RRDB with L1 (stage rrdb)')
    .requiredOption('--config <file>', 'training configuration (YAML or JSON, published option layout; see docs/TRAINING.md)')
    .option('--stage <stage>', 'rrdb or flow (default: train.stage in the config, else flow)')
    .option('--resume [checkpoint]', 'continue from a checkpoint (default: latest.safetensors in the run folder)')
    .option(
      '--rrdb <path>',
      'pre-trained RRDB for the flow stage: a checkpoint, model file, published RRDB_*.pth or registered name (overrides path.pretrain_rrdb)',
    )
    .option(
      '--init <model>',
      'start from every weight of this model (srflow model, checkpoint or .pth) with a fresh optimizer and schedule (overrides path.init_model)',
    )
    .option('--out <dir>', 'run folder (overrides path.out_dir)')
    .option('--max-steps <n>', 'stop after this many steps (the schedule still follows train.niter)')
    .option('--export <file>', 'write the final weights as a native model file')
    .option('--low-memory', 'recompute flow activations in the backward pass (same as memory: low)')
    .option('--quiet', 'no progress output')
    .action(
      async (o: {
        config: string;
        stage?: string;
        resume?: string | boolean;
        rrdb?: string;
        init?: string;
        out?: string;
        maxSteps?: string;
        export?: string;
        lowMemory?: boolean;
        quiet?: boolean;
      }) => {
        if (o.stage && o.stage !== 'rrdb' && o.stage !== 'flow')
          throw new UsageError(`Expected rrdb or flow for --stage but received ${JSON.stringify(o.stage)}`);
        const maxSteps = o.maxSteps ? parseInteger(o.maxSteps, '--max-steps', 1) : undefined;
        const opts = loadTrainOptions(o.config, { stage: o.stage as Stage | undefined });
        if (o.out) opts.outDir = o.out;
        // registered model names are accepted wherever a model file is
        if (o.rrdb) opts.pretrainRrdb = resolveModelArg(o.rrdb).model;
        if (o.init) opts.initModel = resolveModelArg(o.init).model;
        if (o.init && o.resume) throw new UsageError('Expected either --resume or --init, not both');
        if (opts.initModel && !o.resume && !existsSync(opts.initModel)) throw new UsageError(`Cannot start from ${opts.initModel}: the file does not exist`);
        if (o.lowMemory) opts.train.lowMemory = true;
        let resume: string | null = null;
        if (o.resume) {
          resume = typeof o.resume === 'string' ? o.resume : join(opts.outDir, 'latest.safetensors');
          if (!existsSync(resume)) throw new UsageError(`Cannot resume: ${resume} does not exist`);
        }
        const tty = process.stderr.isTTY && !o.quiet;
        let bar: cliProgress.SingleBar | null = null;
        const say = (m: string) => {
          if (o.quiet) return;
          if (bar) bar.stop();
          process.stderr.write(`${m}\n`);
          if (bar) bar.start(opts.train.niter, trainer?.iter ?? 0, { loss: '-' });
        };
        let trainer: Trainer | null = null;
        trainer = await Trainer.create(
          opts,
          {
            onInfo: say,
            onWarning: (m) => say(`warning: ${m}`),
            onStep: (s) => {
              const loss = Number.isFinite(s.loss) ? s.loss.toFixed(4) : 'n/a';
              if (bar) bar.update(s.iter, { loss, spi: s.secPerIter.toFixed(2) });
              else if (!o.quiet)
                process.stderr.write(
                  `iter ${s.iter}/${opts.train.niter} loss ${loss} lr ${s.lr.toExponential(2)} ${s.secPerIter.toFixed(2)} s/it${s.rrdbFrozen ? ' (RRDB frozen)' : ''}\n`,
                );
            },
            onVal: (v) =>
              say(
                `validation @${v.iter}: ${Object.entries(v)
                  .filter(([k]) => k !== 'type' && k !== 'iter')
                  .map(([k, x]) => `${k} ${typeof x === 'number' ? x.toFixed(3) : x}`)
                  .join(', ')}`,
              ),
          },
          resume,
        );
        const t = trainer;
        if (tty) {
          bar = new cliProgress.SingleBar(
            {
              format: 'train |{bar}| {value}/{total} | loss {loss} | {spi} s/it | ETA {eta_formatted}',
              stream: process.stderr,
              etaBuffer: 50,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(opts.train.niter, t.iter, { loss: '-', spi: '-' });
        }
        const onSig = () => {
          t.stopRequested = true;
          say('interrupt: finishing this step and saving a checkpoint (Ctrl-C again to abort without saving)');
          process.once('SIGINT', () => process.exit(130));
        };
        process.once('SIGINT', onSig);
        process.once('SIGTERM', onSig);
        let result;
        try {
          result = await t.run({ maxSteps });
        } finally {
          bar?.stop();
          process.off('SIGINT', onSig);
          process.off('SIGTERM', onSig);
        }
        if (o.export) t.saveModel(o.export);
        say(
          `${result.reason === 'done' ? 'finished' : result.reason === 'max-steps' ? 'reached --max-steps' : result.reason === 'stopped' ? 'stopped' : 'stopped on non-finite values'} at iteration ${t.iter}; run folder ${opts.outDir}`,
        );
        if (result.reason === 'nonfinite') process.exitCode = 1;
        if (result.reason === 'stopped') process.exitCode = 130;
      },
    );
}
