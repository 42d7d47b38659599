/**
 * Writes the untrained demo model (random weights, tiny) used by the web page when no trained
 * models/srflow-4x.safetensors exists: node --import tsx web/make-demo-model.ts OUT.safetensors
 */
import { createModel } from '../src/models/api.js';
import { makeOpt } from '../src/models/config.js';

const out = process.argv[2];
if (!out) {
  console.error('usage: make-demo-model.ts OUT.safetensors');
  process.exit(2);
}
const model = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 }), 1);
await model.save(out, { srflow_web: 'untrained demo model' });
