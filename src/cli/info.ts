/** `srflow info FILE`: what a model file is (recognised layout, scale, parameters, matched tensors, SHA-256). */
import type { Command } from 'commander';
import { statSync } from 'node:fs';
import { loadNetDetailed } from '../models/api.js';
import { backendInfo } from '../kernels/index.js';
import { addBackendOption, applyBackend } from './backend.js';
import { sha256File } from '../registry/index.js';
import { oneLineErrors, toJson } from './progress.js';
import { resolveModelArg } from './model-arg.js';

export function registerInfo(program: Command): void {
  const cmd = program
    .command('info')
    .description('what a model file is: recognised layout, scale, parameter count, matched tensors, SHA-256, and the compute backend')
    .argument('<model>', 'model file (.pth checkpoint, .safetensors srflow model) or a registered model name')
    .option('--config <path>', 'configuration (YAML/JSON) for a checkpoint whose layout cannot be recognised')
    .option('--tensors', 'list every matched tensor')
    .option('--json', 'print JSON');
  addBackendOption(cmd).action(async (arg: string, o: { config?: string; tensors?: boolean; json?: boolean; backend?: string }) => {
    applyBackend(o.backend);
    const r = resolveModelArg(arg, o.config);
    const path = r.model;
    const d = loadNetDetailed(path, { config: r.config });
    const net = d.net;
    const be = await describeBackend();
    let params = 0;
    for (const p of net.parameters().values()) params += p.size;
    const { flow } = net.config;
    const info = {
      file: path,
      bytes: statSync(path).size,
      sha256: sha256File(path),
      format: d.format,
      kind: d.kind,
      layout: d.layout?.published ?? null,
      description: d.layout?.description ?? null,
      configSource: d.configSource,
      assumed: d.configSource === 'inferred' ? (d.layout?.assumed ?? []) : [],
      parameters: params,
      scale: net.scale,
      nb: net.config.nb,
      nf: net.config.nf,
      ...(d.kind === 'srflow'
        ? {
            K: flow.K,
            L: flow.L,
            additionalFlowNoAffine: flow.additionalFlowNoAffine,
            blocks: flow.stackBlocks,
            hidden: flow.hidden,
            condChannels: net.condChannels,
          }
        : {}),
      tensors: { matched: d.report.matched.length, unused: d.report.unused, ignored: d.report.ignored, ...(o.tensors ? { list: d.report.matched } : {}) },
      config: net.config.opt,
      ...be,
    };
    if (o.json) {
      process.stdout.write(`${toJson(info, 1)}\n`);
      return;
    }
    const out: string[] = [];
    out.push(
      `${path}: ${d.format === 'pth' ? 'PyTorch checkpoint' : 'safetensors model file'}, ${(info.bytes / 1048576).toFixed(1)} MiB, sha256 ${info.sha256}`,
    );
    if (d.kind === 'rrdb') out.push(`RRDB network (deterministic SR): scale ${net.scale}x, ${net.config.nb} RRDB blocks, nf ${net.config.nf}`);
    else
      out.push(
        `SRFlow: scale ${net.scale}x, RRDB nb ${info.nb}, flow K ${flow.K.join('/')} L ${flow.L}, stacked blocks [${flow.stackBlocks}], hidden ${flow.hidden}, conditioning ${net.condChannels} channels`,
      );
    const layoutText = info.layout
      ? `the published ${info.layout} layout`
      : d.layout
        ? 'recognised (not a published layout)'
        : 'not determined by the tensors alone';
    out.push(
      `layout: ${layoutText}; configuration ${d.configSource === 'inferred' ? 'inferred from the tensors' : d.configSource === 'option' ? 'given with --config' : 'carried by the file'}`,
    );
    for (const a of info.assumed) out.push(`  assumed: ${a}`);
    out.push(
      `${(params / 1e6).toFixed(2)} M parameters; ${d.report.matched.length} tensors matched${d.report.unused.length ? `, ${d.report.unused.length} present but unused (${d.report.unused.join(', ')})` : ''}${d.report.ignored.length ? `, ${d.report.ignored.length} ignored` : ''}`,
    );
    if (o.tensors) for (const n of d.report.matched) out.push(`  ${n}`);
    out.push(`configuration: ${JSON.stringify(net.config.opt)}`);
    out.push(`backend: ${be.backend} (${be.backend === 'webgpu' ? `${be.adapter ?? be.adapterError}; CPU kernels ${be.kernels}` : be.kernels})`);
    process.stdout.write(`${out.join('\n')}\n`);
  });
  oneLineErrors(cmd);
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
