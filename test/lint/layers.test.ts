import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

// The layer rule of eslint.config.js (scripts/eslint-layers.mjs), on code put at a path under src/.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const eslint = new ESLint({ cwd: ROOT });

async function layerErrors(path: string, code: string): Promise<string[]> {
  const [r] = await eslint.lintText(code, { filePath: join(ROOT, path) });
  return r.messages.filter((m) => m.ruleId === 'srflow/layers').map((m) => m.message);
}

test('layers: imports from a higher layer or a peer are errors, in every import form', async () => {
  // the two that issue 18 found: training reached into upscaling, the benchmarks into the CLI
  assert.match(
    (await layerErrors('src/train/probe.ts', "import { clip01 } from '../upscale/pad.js';\n"))[0],
    /src\/train must not import src\/upscale: upscale is a peer layer/,
  );
  assert.match(
    (await layerErrors('src/bench/probe.ts', "import { UsageError } from '../cli/errors.js';\n"))[0],
    /src\/bench must not import src\/cli: cli is a higher layer/,
  );
  assert.equal((await layerErrors('src/tensor/probe.ts', "export const m = () => import('../models/api.js');\n")).length, 1);
  assert.equal((await layerErrors('src/flow/probe.ts', "export { SRFlowNet } from '../models/srflow.js';\n")).length, 1);
  assert.equal((await layerErrors('src/kernels/probe.ts', "export * from '../tensor/tensor.js';\n")).length, 1);
  assert.equal(
    (
      await layerErrors(
        'src/models/probe.ts',
        "import type { Planar } from '../data/bicubic.js';\nimport type { Kernels } from '../kernels/types.js';\nexport type X = [Planar, Kernels];\n",
      )
    ).length,
    0,
  );
  assert.equal((await layerErrors('src/io/probe.ts', "import type { Tensor } from '../tensor/tensor.js';\nexport type X = Tensor;\n")).length, 1);
});

test('layers: imports from lower layers, the own folder and src/errors.ts pass; a folder in no layer is named', async () => {
  const ok =
    "import { Tensor } from '../tensor/tensor.js';\nimport { UsageError } from '../errors.js';\nimport { parseNumber } from './errors.js';\nexport { Tensor, UsageError, parseNumber };\n";
  assert.deepEqual(await layerErrors('src/cli/probe.ts', ok), []);
  assert.deepEqual(await layerErrors('src/index.ts', "export { upscale } from './upscale/index.js';\n"), []);
  assert.match((await layerErrors('src/newdir/probe.ts', 'export const x = 1;\n'))[0], /src\/newdir is in no layer/);
  assert.match((await layerErrors('src/cli/probe.ts', "import { x } from '../newdir/x.js';\nexport { x };\n"))[0], /src\/newdir is in no layer/);
});
