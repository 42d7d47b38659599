/**
 * srflow: SRFlow super-resolution in TypeScript. The package's root exports.
 *
 * @example
 *   import { upscale, loadModel } from 'srflow';
 *   const model = await loadModel('models/srflow-4x.safetensors');
 *   const { images } = await upscale('photo.jpg', { model, temperature: 0.8, samples: 3, output: 'png' });
 */
export { loadModel, loadNet, createModel, SRFlowModel, MODEL_FORMAT, MODEL_FORMAT_VERSION } from './models/api.js';
export type { TensorLike, SampleOptions, LoadOptions } from './models/api.js';
export { loadNetDetailed } from './models/api.js';
export type { LoadedNet } from './models/api.js';
export { inferLayout, LayoutError } from './models/infer-layout.js';
export type { Layout, LayoutKind } from './models/infer-layout.js';
export { ModelRegistry, registryHome } from './registry/index.js';
export type { RegistryEntry } from './registry/index.js';
export { parseConfig, loadConfigFile, makeOpt } from './models/config.js';
export type { ModelConfig, FlowConfig } from './models/config.js';

export {
  upscale,
  superResolve,
  upscaleLoaded,
  makeDraws,
  projectConsistent,
  uncertaintyMap,
  defaultModelPath,
  shippedModelPath,
  checkScale,
  SHIPPED_SCALES,
  DefaultModelMissingError,
  ScaleMismatchError,
  bytesPerLrPixel,
  sizeMultiple,
  DEFAULT_MAX_MEMORY_MB,
  DEFAULT_OVERLAP,
} from './upscale/index.js';
export type {
  ShippedScale,
  UpscaleOptions,
  UpscaleResult,
  OutputForm,
  Draw,
  Progress,
  Stage,
  SuperResolveOptions,
  SuperResolveResult,
  ConsistencyOptions,
  ConsistencyResult,
  UncertaintyMap,
} from './upscale/index.js';

export { Tensor, noGrad } from './tensor/tensor.js';
export { Rng } from './tensor/random.js';

export { imresize, downscale, upscaleBicubic } from './data/bicubic.js';
export type { ImresizeOptions } from './data/bicubic.js';

export { psnr, lrPsnr, ssim, diversity, bitsPerDim } from './metrics/index.js';
export type { PsnrOptions, SsimOptions } from './metrics/index.js';

export { loadImage, saveImage, encodeImage, toRawPixels, formatFromPath } from './io/image.js';
export type { Planar, RawPixels, LoadedImage, SaveableImage, ImageFormat, EncodeOptions } from './io/image.js';

export { readSafetensors, writeSafetensors } from './io/safetensors.js';
export type { RawTensor, SafetensorsFile } from './io/safetensors.js';

export {
  scaleLatents,
  mixLatents,
  maskLatents,
  mixLatentsByLevel,
  normaliseLatents,
  latentRms,
  restoreImage,
  transferContent,
  filterChroma,
} from './edit/index.js';
export type { LatentWeight, NormaliseOptions, RestoreOptions, RestoreReport, TransferOptions, TransferResult } from './edit/index.js';
export { levelMaps, resizeMap, loadMap } from './upscale/index.js';
export type { Map1, MapInput } from './upscale/index.js';
// how the engine computes: EngineOptions (the `engine` option of loadModel, upscale and train, or
// configureEngine for the process); backends, and sampling/encoding on the GPU through WebGPU (docs/WEBGPU.md)
export { configureEngine, engineOptions } from './models/engine.js';
export type { EngineOptions } from './models/engine.js';
export { engineOptionsFromEnv } from './env.js';
export { BACKENDS, parseBackend, setBackend, requestedBackend, backendInfo } from './kernels/index.js';
export type { BackendName } from './kernels/index.js';
export { WebGpuSRFlow, webGpuRunner } from './models/webgpu.js';
export type { GpuConditioning } from './models/webgpu.js';
export { webGpuDevice, releaseWebGpuDevice, WebGpuDevice } from './kernels/webgpu.js';
