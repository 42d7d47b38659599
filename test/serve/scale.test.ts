/**
 * The server's model catalog and a job's scale: without --model, a job with scale=8 and no model
 * name runs the shipped 8x model (here from a folder of tiny models made in the test); with
 * --model, the default model is that file whatever the scale (the server then refuses a scale it
 * does not have); a missing shipped 8x model is an error naming the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { catalog, modelPath, modelScale } from '../../src/serve/models.js';

test('catalog: scale=8 picks the shipped 8x model when no --model is given', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'srflow-serve-scale-'));
  try {
    const shipped = join(dir, 'shipped');
    const empty = join(dir, 'empty');
    mkdirSync(shipped);
    mkdirSync(empty);
    for (const scale of [4, 8] as const) {
      await createModel(makeOpt({ scale, nb: 1, K: 1, L: scale === 8 ? 4 : 3, blocks: [0], hidden: 8, nf: 8 }), 1).save(
        join(shipped, `srflow-${scale}x.safetensors`),
      );
    }
    const prev = process.env.SRFLOW_DEFAULT_MODEL;
    delete process.env.SRFLOW_DEFAULT_MODEL;
    try {
      const cat = catalog({ shippedDir: shipped });
      assert.equal(modelPath(cat, null), join(shipped, 'srflow-4x.safetensors'));
      assert.equal(modelPath(cat, null, 4), join(shipped, 'srflow-4x.safetensors'));
      assert.equal(modelPath(cat, null, 8), join(shipped, 'srflow-8x.safetensors'));
      assert.equal(modelScale(modelPath(cat, null, 8)), 8);
      assert.throws(
        () => modelPath(catalog({ shippedDir: empty }), null, 8),
        new RegExp(`The shipped 8x model ${join(empty, 'srflow-8x.safetensors').replace(/[.\\/]/g, '\\$&')} is missing`),
      );
    } finally {
      if (prev !== undefined) process.env.SRFLOW_DEFAULT_MODEL = prev;
    }
    // --model: that file is the default for every scale (the server checks the scale against it)
    const given = catalog({ model: join(shipped, 'srflow-4x.safetensors'), shippedDir: shipped });
    assert.equal(modelPath(given, null, 8), join(shipped, 'srflow-4x.safetensors'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
