/** The --backend option of the commands that compute (upscale, encode, decode, eval, verify, bench). */
import type { Command } from 'commander';
import { BACKENDS, parseBackend, requestedBackend, setBackend, type BackendName } from '../kernels/index.js';
import { UsageError } from './errors.js';

export function addBackendOption(cmd: Command): Command {
  return cmd.option(
    '--backend <name>',
    `compute backend: ${BACKENDS.join(', ')} (webgpu: sampling and encoding on the GPU; default: $SRFLOW_BACKEND, else auto)`,
  );
}

/** Apply --backend (when given) and return the backend in use; a bad name is a usage error. */
export function applyBackend(v: string | undefined): BackendName {
  if (v !== undefined) {
    let b: BackendName;
    try {
      b = parseBackend(v, '--backend');
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    setBackend(b);
  }
  return requestedBackend();
}

/** Run `fn` with the WebGPU runner of `net` on the shared device, released afterwards. */
export async function withWebGpu<T>(
  net: import('../models/srflow.js').SRFlowNet,
  fn: (g: import('../models/webgpu.js').WebGpuSRFlow) => Promise<T>,
): Promise<T> {
  const { webGpuRunner } = await import('../models/webgpu.js');
  const { releaseWebGpuDevice } = await import('../kernels/webgpu.js');
  try {
    return await fn(await webGpuRunner(net));
  } finally {
    await releaseWebGpuDevice();
  }
}
