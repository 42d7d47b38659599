import type { Command } from 'commander';
import { statSync } from 'node:fs';
import { loadNet } from '../models/api.js';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('print a model\'s configuration, parameter count and file size')
    .argument('<model>', 'model file (.safetensors srflow model, or .pth with --config)')
    .option('--config <path>', 'configuration for checkpoints that carry none')
    .option('--json', 'print JSON')
    .action((path: string, o: { config?: string; json?: boolean }) => {
      const net = loadNet(path, { config: o.config });
      let params = 0;
      for (const p of net.parameters().values()) params += p.size;
      const { flow } = net.config;
      const info = {
        file: path,
        bytes: statSync(path).size,
        parameters: params,
        scale: net.scale,
        nb: net.config.nb,
        K: flow.K,
        L: flow.L,
        blocks: flow.stackBlocks,
        hidden: flow.hidden,
        condChannels: net.condChannels,
        config: net.config.opt,
      };
      if (o.json) process.stdout.write(`${JSON.stringify(info, null, 1)}\n`);
      else {
        process.stdout.write(`${path}: ${(info.bytes / 1048576).toFixed(1)} MiB, ${(params / 1e6).toFixed(2)} M parameters\n`);
        process.stdout.write(`scale ${net.scale}x, RRDB nb ${info.nb}, flow K ${flow.K.join('/')} L ${flow.L}, stacked blocks [${flow.stackBlocks}], hidden ${flow.hidden}, conditioning ${net.condChannels} channels\n`);
        process.stdout.write(`configuration: ${JSON.stringify(net.config.opt)}\n`);
      }
    });
}
