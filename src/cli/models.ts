/** `srflow models list|add|remove`: the model registry (see src/registry). */
import type { Command } from 'commander';
import { oneLineErrors, toJson } from './progress.js';
import { userRegistry } from './model-arg.js';

function mb(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

export function registerModels(program: Command): void {
  const models = program
    .command('models')
    .description('the model registry: list, add and remove model files (e.g. the published SRFlow_*.pth / RRDB_*.pth) usable by name with --model')
    .addHelpText(
      'after',
      `
The registry lives in $SRFLOW_HOME/models, or the platform's cache folder (Linux:
$XDG_CACHE_HOME/srflow or ~/.cache/srflow; macOS: ~/Library/Caches/srflow; Windows:
%LOCALAPPDATA%\\srflow\\Cache). Adding copies the file there after checking that it loads.`,
    );
  oneLineErrors(models);

  const list = models
    .command('list')
    .description('list the registered models')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => {
      const reg = userRegistry();
      const entries = reg.list();
      if (o.json) {
        process.stdout.write(`${toJson({ home: reg.home, models: entries.map((e) => ({ ...e, path: reg.pathOf(e) })) })}\n`);
        return;
      }
      if (!entries.length) {
        process.stdout.write(`no models registered (in ${reg.dir}); add one with: srflow models add FILE\n`);
        return;
      }
      const w = Math.max(...entries.map((e) => e.name.length));
      for (const e of entries) {
        process.stdout.write(
          `${e.name.padEnd(w)}  ${e.kind === 'rrdb' ? 'RRDB  ' : 'SRFlow'} ${e.scale}x  ${(e.parameters / 1e6).toFixed(2)} M params  ${mb(e.bytes)}  ${e.layout ?? 'custom layout'}  sha256 ${e.sha256.slice(0, 12)}…\n`,
        );
      }
    });
  oneLineErrors(list);

  const add = models
    .command('add')
    .description('check that a model file loads, then copy it into the registry')
    .argument('<file>', 'model file (.pth checkpoint or .safetensors srflow model)')
    .option('--name <name>', 'name to register it under (default: the file name without extension)')
    .option('--config <path>', 'configuration (YAML/JSON) for a checkpoint whose layout cannot be recognised; stored with it')
    .option('--json', 'print JSON')
    .action((file: string, o: { name?: string; config?: string; json?: boolean }) => {
      const reg = userRegistry();
      const e = reg.add(file, { name: o.name, config: o.config });
      if (o.json) process.stdout.write(`${toJson({ ...e, path: reg.pathOf(e) })}\n`);
      else process.stdout.write(`added ${e.name}: ${e.description}; ${(e.parameters / 1e6).toFixed(2)} M parameters, sha256 ${e.sha256}\n`);
    });
  oneLineErrors(add);

  const remove = models
    .command('remove')
    .description('remove a registered model (and its stored copy)')
    .argument('<name>', 'registered name')
    .action((name: string) => {
      const e = userRegistry().remove(name);
      process.stdout.write(`removed ${e.name}\n`);
    });
  oneLineErrors(remove);
  for (const c of models.commands) c.exitOverride();
}
