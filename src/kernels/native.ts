import type { Kernels } from './types.js';
// Placeholder until the native addon lands.
export function loadNative(): { kernels: Kernels | null; error: string } {
  return { kernels: null, error: 'native addon not built' };
}
