/**
 * EngineOptions: the environment becomes options in one place (src/env.ts), configureEngine applies
 * them, the library validates them, and the CLI still honours every documented variable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { engineOptionsFromEnv, defaultModelFromEnv } from '../src/env.js';
import { checkEngineOptions } from '../src/engine-options.js';
import { configureEngine, engineOptions } from '../src/models/engine.js';
import { SRFlowNet, DEFAULT_COND_GROUP } from '../src/models/srflow.js';
import { CondAffineGroup } from '../src/flow/affine.js';
import { makeOpt, parseConfig } from '../src/models/config.js';
import { ew } from '../src/tensor/ew.js';
import { runCli } from './helpers/cli.js';

test('engineOptionsFromEnv: every SRFLOW_* variable, unset ones left out', () => {
  assert.deepEqual(engineOptionsFromEnv({}), {});
  assert.deepEqual(
    engineOptionsFromEnv({
      SRFLOW_BACKEND: 'wasm',
      SRFLOW_THREADS: '3',
      SRFLOW_SIMD: 'scalar',
      SRFLOW_WINOGRAD: '0',
      SRFLOW_ELEMENTWISE: 'js',
      SRFLOW_COND_GROUP: '0',
      SRFLOW_COND_PHASES: '0',
      SRFLOW_COND_KEEP_WEIGHTS: '1',
    }),
    { backend: 'wasm', threads: 3, simd: 'scalar', winograd: false, elementwise: 'js', condGroup: 0, condPhases: false, keepCondWeights: true },
  );
  assert.deepEqual(engineOptionsFromEnv({ SRFLOW_WINOGRAD: 'always', SRFLOW_COND_PHASES: '1', SRFLOW_BACKEND: '' }), { winograd: 'always', condPhases: true });
  // as the native addon reads them: values it ignores are ignored
  assert.deepEqual(engineOptionsFromEnv({ SRFLOW_THREADS: 'many', SRFLOW_SIMD: 'sse9', SRFLOW_WINOGRAD: 'yes' }), {});
  assert.throws(
    () => engineOptionsFromEnv({ SRFLOW_BACKEND: 'cuda' }),
    /^Error: Expected one of auto, native, wasm, reference, webgpu for SRFLOW_BACKEND but received "cuda"$/,
  );
  assert.throws(() => engineOptionsFromEnv({ SRFLOW_COND_GROUP: '-1' }), /Expected a non-negative integer for SRFLOW_COND_GROUP but received "-1"/);
  assert.throws(() => engineOptionsFromEnv({ SRFLOW_COND_PHASES: 'no' }), /Expected 0 or 1 for SRFLOW_COND_PHASES but received "no"/);
  assert.equal(defaultModelFromEnv({ SRFLOW_DEFAULT_MODEL: '/m.safetensors' }), '/m.safetensors');
  assert.equal(defaultModelFromEnv({ SRFLOW_DEFAULT_MODEL: '' }), undefined);
});

test('checkEngineOptions: a bad option is named with the one wording', () => {
  assert.deepEqual(checkEngineOptions({ threads: 2, winograd: 'always' }), { threads: 2, winograd: 'always' });
  assert.throws(() => checkEngineOptions({ threads: 0 }), /^Error: Expected a positive integer for engine\.threads but received 0$/);
  assert.throws(() => checkEngineOptions({ backend: 'gpu' as never }), /for engine\.backend but received "gpu"/);
  assert.throws(() => checkEngineOptions({ winograd: 'auto' as never }), /Expected true, false or 'always' for engine\.winograd/);
  assert.throws(() => checkEngineOptions({ condGroup: 1.5 }), /engine\.condGroup/);
  assert.throws(() => checkEngineOptions({ condPhases: 0 as never }), /Expected true or false for engine\.condPhases but received 0/);
  assert.throws(() => configureEngine({ simd: 'sse' as never }), /engine\.simd/);
});

test('configureEngine: conditioning defaults for new models, kept weights, the element-wise path; engineOptions() reports them', () => {
  const cfg = parseConfig(makeOpt({ scale: 4, nb: 1, nf: 8, K: 1, L: 2, hidden: 8, blocks: [0] }));
  const before = new SRFlowNet(cfg);
  assert.equal(before.condGroup, DEFAULT_COND_GROUP);
  assert.equal(before.condPhases, true);
  const kernelsEw = ew(new Float32Array(1));
  try {
    configureEngine({ condGroup: 2, condPhases: false, keepCondWeights: true, elementwise: 'js' });
    const after = new SRFlowNet(cfg);
    assert.equal(after.condGroup, 2);
    assert.equal(after.condPhases, false);
    assert.equal(before.condGroup, DEFAULT_COND_GROUP, 'models made before keep theirs');
    assert.equal(CondAffineGroup.keepWeights, true);
    assert.equal(ew(new Float32Array(1)), null, 'the TypeScript loops');
    const o = engineOptions();
    assert.equal(o.condGroup, 2);
    assert.equal(o.condPhases, false);
    assert.equal(o.keepCondWeights, true);
    assert.equal(o.elementwise, 'js');
    assert.equal(o.backend, 'auto');
  } finally {
    configureEngine({ condGroup: DEFAULT_COND_GROUP, condPhases: true, keepCondWeights: false, elementwise: 'kernels' });
  }
  assert.equal(ew(new Float32Array(1)), kernelsEw);
});

test('CLI: the environment still selects the backend, its threads and SIMD path; a bad value is one clear line', async () => {
  const model = 'models/srflow-4x.safetensors';
  const ref = await runCli(['info', model, '--json'], { SRFLOW_BACKEND: 'reference' });
  assert.equal(ref.code, 0, ref.stderr);
  assert.equal(JSON.parse(ref.stdout).kernels, 'reference');
  const wasm = await runCli(['info', model, '--json'], { SRFLOW_BACKEND: 'wasm', SRFLOW_THREADS: '1', SRFLOW_SIMD: 'scalar' });
  assert.equal(wasm.code, 0, wasm.stderr);
  assert.equal(JSON.parse(wasm.stdout).kernels, 'wasm-scalar');
  const flag = await runCli(['info', model, '--json', '--backend', 'reference'], { SRFLOW_BACKEND: 'wasm' });
  assert.equal(JSON.parse(flag.stdout).kernels, 'reference', '--backend wins over SRFLOW_BACKEND');
  const bad = await runCli(['info', model], { SRFLOW_BACKEND: 'cuda' });
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'srflow: Expected one of auto, native, wasm, reference, webgpu for SRFLOW_BACKEND but received "cuda"\n');
});
