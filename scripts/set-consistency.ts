/**
 * Write a default LR consistency into a model file (metadata `consistency`; SRFlowNet.defaultConsistency):
 *   npx tsx scripts/set-consistency.ts models/srflow-8x.safetensors /tmp/out.safetensors
 * Weights, guard calibration, trained_iterations and stage are kept.
 */
import { loadModel } from '../src/models/api.js';
import { openSafetensors } from '../src/io/safetensors.js';
const [src, dst] = process.argv.slice(2);
const f = openSafetensors(src);
const meta = { ...f.metadata };
f.close();
const m = await loadModel(src);
m.net.defaultConsistency = 'exact';
const extra: Record<string, string> = {};
for (const k of ['trained_iterations', 'stage']) if (meta[k] !== undefined) extra[k] = meta[k];
await m.save(dst, extra);
const back = await loadModel(dst);
console.log('consistency', back.net.defaultConsistency, 'guard', !!back.net.guard);
