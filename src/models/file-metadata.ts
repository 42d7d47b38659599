/**
 * The sampling settings a native model file carries in its safetensors metadata, applied to a
 * loaded srflow net: the sampling guard's calibration (`flow_guard`, src/flow/guard.ts) and the
 * default LR consistency of its outputs (`consistency`: 'exact' or 'none'). Published checkpoints
 * carry neither. Used by the file loader (api.ts) and the in-memory one (from-bytes.ts, the web page).
 */
import { FlowGuard, parseGuardCalibration } from '../flow/guard.js';
import { GUARD_METADATA_KEY } from './calibrate-guard.js';
import type { SRFlowNet } from './srflow.js';

/** Model-file metadata: the default LR consistency of its outputs ('exact' or 'none'; SRFlowNet.defaultConsistency). */
export const CONSISTENCY_METADATA_KEY = 'consistency';

/** Apply a model file's guard calibration and default consistency to `net`; `what` names the file in errors ("model X"). */
export function applySamplingMetadata(net: SRFlowNet, metadata: Record<string, string>, what: string): void {
  const guardText = metadata[GUARD_METADATA_KEY];
  if (guardText !== undefined) {
    const guard = new FlowGuard(parseGuardCalibration(guardText, what), net.config.flow.eps);
    guard.check(net.layers.length, (i) => net.guardableLayer(i), what);
    net.guard = guard;
  }
  const c = metadata[CONSISTENCY_METADATA_KEY];
  if (c !== undefined) {
    if (c !== 'none' && c !== 'exact') {
      throw new Error(`Cannot read ${what}: expected none or exact for its ${CONSISTENCY_METADATA_KEY} metadata but received ${JSON.stringify(c)}`);
    }
    net.defaultConsistency = c;
  }
}

/** The metadata entries `applySamplingMetadata` reads, from a net (for saving). */
export function samplingMetadata(net: SRFlowNet): Record<string, string> {
  return {
    ...(net.guard ? { [GUARD_METADATA_KEY]: JSON.stringify(net.guard.calibration) } : {}),
    ...(net.defaultConsistency !== 'none' ? { [CONSISTENCY_METADATA_KEY]: net.defaultConsistency } : {}),
  };
}
