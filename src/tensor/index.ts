export { Tensor, noGrad, isGradEnabled, numel, type DType, type Buf } from './tensor.js';
export * from './ops.js';
export * from './nn.js';
export * from './linalg.js';
