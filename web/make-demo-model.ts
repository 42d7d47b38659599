/**
 * Writes the untrained demo model (random weights, tiny) used by the web page when no trained
 * models/srflow-<scale>x.safetensors exists: node --import tsx web/make-demo-model.ts OUT.safetensors [4|8]
 */
import { createModel } from '../src/models/api.js';
import { makeOpt } from '../src/models/config.js';

const out = process.argv[2];
const scale = Number(process.argv[3] ?? 4);
if (!out || (scale !== 4 && scale !== 8)) {
  console.error('usage: make-demo-model.ts OUT.safetensors [4|8]');
  process.exit(2);
}
// L = 3 at 4× and L = 4 at 8× (as the shipped models): LR inputs padded to a multiple of 2
const model = createModel(makeOpt({ scale, nb: 1, K: 1, L: scale === 8 ? 4 : 3, blocks: [0], hidden: 8, nf: 8 }), 1);
await model.save(out, { srflow_web: 'untrained demo model' });
