import type { Command } from 'commander';
import { statSync } from 'node:fs';
import { loadNet } from '../models/api.js';
import { backendInfo } from '../kernels/index.js';
import { addBackendOption, applyBackend } from './backend.js';

export function registerInfo(program: Command): void {
  const cmd = program
    .command('info')
    .description('print a model\'s configuration, parameter count and file size')
    .argument('<model>', 'model file (.safetensors srflow model, or .pth with --config)')
    .option('--config <path>', 'configuration for checkpoints that carry none')
    .option('--json', 'print JSON');
  addBackendOption(cmd).action(async (path: string, o: { config?: string; json?: boolean; backend?: string }) => {
      applyBackend(o.backend);
      const net = loadNet(path, { config: o.config });
      const be = await describeBackend();
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
        ...be,
      };
      if (o.json) process.stdout.write(`${JSON.stringify(info, null, 1)}\n`);
      else {
        process.stdout.write(`${path}: ${(info.bytes / 1048576).toFixed(1)} MiB, ${(params / 1e6).toFixed(2)} M parameters\n`);
        process.stdout.write(`scale ${net.scale}x, RRDB nb ${info.nb}, flow K ${flow.K.join('/')} L ${flow.L}, stacked blocks [${flow.stackBlocks}], hidden ${flow.hidden}, conditioning ${net.condChannels} channels\n`);
        process.stdout.write(`configuration: ${JSON.stringify(net.config.opt)}\n`);
        process.stdout.write(`backend: ${be.backend} (${be.backend === 'webgpu' ? `${be.adapter ?? be.adapterError}; CPU kernels ${be.kernels}` : be.kernels})\n`);
      }
    });
}

/** The backend sampling and encoding run on (with the WebGPU adapter, or why none could be made), and the CPU kernels. */
async function describeBackend(): Promise<{ backend: string; kernels: string; adapter?: string; adapterError?: string }> {
  const b = backendInfo();
  if (b.backend !== 'webgpu') return { backend: b.backend, kernels: b.name };
  const w = await import('../kernels/webgpu.js');
  try {
    return { backend: 'webgpu', kernels: b.name, adapter: (await w.webGpuDevice()).adapterName };
  } catch (e) {
    return { backend: 'webgpu', kernels: b.name, adapterError: (e as Error).message };
  } finally {
    await w.releaseWebGpuDevice();
  }
}
