export { psnr, lrPsnr, mse255 } from './psnr.js';
export type { PsnrOptions } from './psnr.js';
export { ssim, ssimPlane } from './ssim.js';
export type { SsimOptions } from './ssim.js';
export { diversity, bitsPerDim } from './diversity.js';
export { periodicEnergy } from './periodic.js';
export type { PeriodicEnergy } from './periodic.js';
