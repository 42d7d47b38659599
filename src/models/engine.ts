/**
 * configureEngine(EngineOptions): the one setter of how the engine computes, for the process (the
 * kernels are one per process): kernel backend, threads, SIMD level and Winograd (src/kernels),
 * the element-wise path (src/tensor/ew.ts), the conditioning's grouping and phases for models made
 * from now on (SRFlowNet.engineDefaults) and whether conditioning groups keep their stacked weights
 * (CondAffineGroup.keepWeights). The library's entry points take the same options as `engine`
 * (loadModel, upscale, train); the CLI builds them from the environment (src/cli/env.ts).
 */
import { configureKernels, kernelOptions } from '../kernels/index.js';
import { checkEngineOptions, type EngineOptions } from '../engine-options.js';
import { setElementwiseJs } from '../tensor/ew.js';
import { CondAffineGroup } from '../flow/affine.js';
import { SRFlowNet } from './srflow.js';

export type { EngineOptions } from '../engine-options.js';

let elementwise: EngineOptions['elementwise'];

/** Apply `o` (fields left out keep their setting). */
export function configureEngine(o: EngineOptions | undefined): void {
  if (o === undefined) return;
  checkEngineOptions(o);
  configureKernels({ backend: o.backend, threads: o.threads, simd: o.simd, winograd: o.winograd });
  if (o.elementwise !== undefined) {
    elementwise = o.elementwise;
    setElementwiseJs(o.elementwise === 'js');
  }
  const d = SRFlowNet.engineDefaults;
  if (o.condGroup !== undefined) d.condGroup = o.condGroup;
  if (o.condPhases !== undefined) d.condPhases = o.condPhases;
  if (o.keepCondWeights !== undefined) CondAffineGroup.keepWeights = o.keepCondWeights;
}

/** The options in force (what configureEngine set, with the defaults): to hand to another thread. */
export function engineOptions(): EngineOptions {
  const d = SRFlowNet.engineDefaults;
  const o: EngineOptions = { ...kernelOptions(), condGroup: d.condGroup, condPhases: d.condPhases, keepCondWeights: CondAffineGroup.keepWeights };
  if (elementwise !== undefined) o.elementwise = elementwise;
  return o;
}
