/** The --backend option of the commands that compute (upscale, encode, decode, eval, verify, bench). */
import type { Command } from 'commander';
import { BACKENDS, parseBackend, requestedBackend, setBackend, type BackendName } from '../kernels/index.js';
import { UsageError } from './errors.js';

export function addBackendOption(cmd: Command): Command {
  return cmd.option('--backend <name>', `compute backend: ${BACKENDS.join(', ')} (webgpu: sampling and encoding on the GPU; default: $SRFLOW_BACKEND, else auto)`);
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
