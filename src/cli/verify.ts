import type { Command } from 'commander';
import { resolveModelArg } from './model-arg.js';
import { loadNet } from '../models/api.js';
import { readSafetensors } from '../io/safetensors.js';
import { verifyModel } from '../models/verify.js';
import { parseNumber } from './errors.js';

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('check a checkpoint against reference tensors made by the published implementation')
    .requiredOption('--model <path>', 'checkpoint (.pth), srflow model file or registered name')
    .option('--config <path>', 'configuration (YAML/JSON, published layout) for a .pth whose layout is not recognised')
    .requiredOption('--reference <path>', 'reference tensors (safetensors, parity-fixture layout)')
    .option('--tolerance <x>', 'relative error threshold', '1e-4')
    .option('--json', 'print JSON')
    .action((o: { model: string; config?: string; reference: string; tolerance: string; json?: boolean }) => {
      const tol = parseNumber(o.tolerance, '--tolerance', (x) => x > 0, 'a positive number');
      const r = resolveModelArg(o.model, o.config);
      const net = loadNet(r.model, { config: r.config });
      const ref = readSafetensors(o.reference).tensors;
      const rows = verifyModel(net, ref, tol);
      const pass = rows.every((r) => r.pass);
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ pass, tolerance: tol, results: rows.map((r) => ({ ...r, relErr: Number.isFinite(r.relErr) ? r.relErr : null })) }, null, 1)}\n`);
      } else {
        const w = Math.max(...rows.map((r) => r.name.length));
        for (const r of rows) process.stdout.write(`${r.pass ? 'PASS' : 'FAIL'}  ${r.name.padEnd(w)}  ${r.relErr.toExponential(2)}${r.note ? `  (${r.note})` : ''}\n`);
        process.stdout.write(`${pass ? 'all' : rows.filter((r) => !r.pass).length + ' of'} ${rows.length} quantities ${pass ? 'within' : 'outside'} ${tol}\n`);
      }
      if (!pass) process.exitCode = 1;
    });
}
