import type { Command } from 'commander';
import { resolveModelArg } from './model-arg.js';
import { loadNet } from '../models/api.js';
import { readSafetensors } from '../io/safetensors.js';
import { verifyModel } from '../models/verify.js';
import { parseNumber } from './errors.js';
import { addBackendOption, applyBackend } from './backend.js';
import { backendInfo } from '../kernels/index.js';

export function registerVerify(program: Command): void {
  const cmd = program
    .command('verify')
    .description('check a checkpoint against reference tensors made by the published implementation')
    .requiredOption('--model <path>', 'checkpoint (.pth), srflow model file or registered name')
    .option('--config <path>', 'configuration (YAML/JSON, published layout) for a .pth whose layout is not recognised')
    .requiredOption('--reference <path>', 'reference tensors (safetensors, parity-fixture layout)')
    .option('--tolerance <x>', 'relative error threshold', '1e-4')
    .option('--json', 'print JSON');
  addBackendOption(cmd).action(async (o: { model: string; config?: string; reference: string; tolerance: string; json?: boolean; backend?: string }) => {
    const tol = parseNumber(o.tolerance, '--tolerance', (x) => x > 0, 'a positive number');
    const backend = applyBackend(o.backend);
    const r = resolveModelArg(o.model, o.config);
    const net = loadNet(r.model, { config: r.config });
    const ref = readSafetensors(o.reference).tensors;
    const cpu = backendInfo().name;
    let rows;
    let adapter: string | undefined;
    if (backend === 'webgpu') {
      const { webGpuRunner } = await import('../models/webgpu.js');
      const { verifyModelWebGpu } = await import('../models/verify-webgpu.js');
      const { releaseWebGpuDevice } = await import('../kernels/webgpu.js');
      try {
        const gpu = await webGpuRunner(net);
        adapter = gpu.dev.adapterName;
        rows = await verifyModelWebGpu(net, gpu, ref, tol, cpu);
      } finally {
        await releaseWebGpuDevice();
      }
    } else {
      rows = verifyModel(net, ref, tol);
    }
    const pass = rows.every((r) => r.pass);
    const ran = backend === 'webgpu' ? 'webgpu' : cpu.split('-')[0];
    if (o.json) {
      const info = { backend: ran, kernels: cpu, ...(adapter ? { adapter } : {}) };
      process.stdout.write(
        `${JSON.stringify({ pass, tolerance: tol, ...info, results: rows.map((r) => ({ ...r, relErr: Number.isFinite(r.relErr) ? r.relErr : null })) }, null, 1)}\n`,
      );
    } else {
      process.stdout.write(`backend: ${ran === 'webgpu' ? `webgpu (${adapter}); gradients on ${cpu}` : cpu}\n`);
      const w = Math.max(...rows.map((r) => r.name.length));
      for (const r of rows)
        process.stdout.write(`${r.pass ? 'PASS' : 'FAIL'}  ${r.name.padEnd(w)}  ${r.relErr.toExponential(2)}${r.note ? `  (${r.note})` : ''}\n`);
      process.stdout.write(`${pass ? 'all' : rows.filter((r) => !r.pass).length + ' of'} ${rows.length} quantities ${pass ? 'within' : 'outside'} ${tol}\n`);
    }
    if (!pass) process.exitCode = 1;
  });
}
