/**
 * The WebGPU device for tests: null (with the reason) only when no adapter can be created. On a
 * machine without a GPU, nodeAdapter() falls back to Chromium's SwiftShader (docs/WEBGPU.md).
 */
import { webGpuDevice, type WebGpuDevice } from '../../src/kernels/webgpu.js';

let got: Promise<{ dev: WebGpuDevice | null; why: string }> | null = null;

export function testDevice(): Promise<{ dev: WebGpuDevice | null; why: string }> {
  if (!got) {
    got = webGpuDevice().then(
      (dev) => ({ dev, why: '' }),
      (e: Error) => ({ dev: null, why: `no WebGPU adapter could be created: ${e.message}` }),
    );
  }
  return got;
}
