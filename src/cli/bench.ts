import type { Command } from 'commander';
import { UsageError, parseInteger } from './errors.js';
import { addBackendOption, applyBackend } from './backend.js';
import { configureKernels } from '../kernels/index.js';
import { threadsOption } from './options.js';

export function registerBench(program: Command): void {
  const cmd = program
    .command('bench')
    .description('benchmarks: conv3x3 | conv1x1 (kernels), infer | train (whole model), load FILE (loading a model file)')
    .argument('<what>', 'conv3x3, conv1x1, infer, train or load')
    .argument('[file]', 'model file for load (e.g. a published-size SRFlow_DF2K_4X.pth)')
    .option('--rounds <n>', 'load: alternating rounds of the stream and whole readers (each load in a fresh process)', '3')
    .option('--channels <n>', 'conv channels (in = out)', '64')
    .option('--size <n>', 'conv spatial size', '64')
    .option('--batch <n>', 'batch size', '1')
    .addOption(threadsOption('threads'))
    .option('--repeat <n>', 'timed repetitions')
    .option('--preset <name>', 'model preset for infer/train: paper4x, paper8x, small4x', 'small4x')
    .option('--lr-size <n>', 'LR size for infer/train', '32')
    .option('--samples <n>', 'samples per LR image (infer)', '1')
    .option('--low-memory', 'recompute flow activations in backward (train)')
    .option('--json', 'print one JSON object');
  addBackendOption(cmd).action(async (what: string, file: string | undefined, o: Record<string, string | boolean | undefined>) => {
    const backend = applyBackend(o.backend as string | undefined);
    if (backend === 'webgpu' && what !== 'infer')
      throw new UsageError(
        `Expected bench infer with --backend webgpu (the WebGPU backend samples and encodes; ${what} runs on the CPU) but received ${JSON.stringify(what)}`,
      );
    const threads = o.threads ? parseInteger(String(o.threads), '--threads', 1) : undefined;
    if (threads) configureKernels({ threads });
    let result: Record<string, unknown>;
    if (what === 'conv3x3' || what === 'conv1x1') {
      const { benchConv } = await import('../bench/conv.js');
      result = {
        ...(await benchConv({
          op: what,
          channels: parseInteger(String(o.channels), '--channels', 1),
          size: parseInteger(String(o.size), '--size', 1),
          batch: parseInteger(String(o.batch), '--batch', 1),
          threads: threads ?? 0,
          repeat: o.repeat ? parseInteger(String(o.repeat), '--repeat', 1) : undefined,
        })),
      };
    } else if (what === 'infer' || what === 'train') {
      const { benchModel } = await import('../bench/model.js');
      result = await benchModel({
        mode: what,
        preset: String(o.preset),
        lrSize: parseInteger(String(o.lrSize), '--lr-size', 1),
        batch: parseInteger(String(o.batch), '--batch', 1),
        samples: parseInteger(String(o.samples), '--samples', 1),
        repeat: o.repeat ? parseInteger(String(o.repeat), '--repeat', 1) : undefined,
        lowMemory: !!o.lowMemory,
        quiet: !!o.json,
        webgpu: backend === 'webgpu',
      });
    } else if (what === 'load') {
      if (!file) throw new UsageError('Expected a model file for bench load (e.g. srflow bench load SRFlow_DF2K_4X.pth)');
      const { benchLoad } = await import('../bench/load.js');
      const r = benchLoad({
        file,
        rounds: parseInteger(String(o.rounds), '--rounds', 1),
        onRun: o.json ? undefined : (x) => process.stderr.write(`${x.reader}: ${x.ms.toFixed(0)} ms, peak extra ${x.peakExtraMB.toFixed(1)} MiB\n`),
      });
      if (o.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      process.stdout.write(`${r.file}: ${r.fileMB.toFixed(1)} MiB, median of ${r.rounds} round(s), each load in a fresh process\n`);
      for (const [k, v] of Object.entries(r.readers)) {
        process.stdout.write(
          `${k.padEnd(6)}  ${(v.ms / 1000).toFixed(2)} s  peak extra ${v.peakExtraMB.toFixed(1)} MiB = ${v.peakExtraX.toFixed(2)}x the file\n`,
        );
      }
      return;
    } else {
      throw new UsageError(`Expected conv3x3, conv1x1, infer, train or load for bench but received ${JSON.stringify(what)}`);
    }
    if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else for (const [k, v] of Object.entries(result)) process.stdout.write(`${k}: ${typeof v === 'number' ? +v.toFixed(4) : JSON.stringify(v)}\n`);
  });
}
