/** The validation vocabulary (src/is.ts): predicates, the one wording, planar and file-read checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as is from '../src/is.js';

test('is: predicates accept what they name and nothing else', () => {
  assert.ok(is.positiveInt(1) && is.positiveInt(7));
  for (const v of [0, -1, 1.5, NaN, Infinity, '3', null, undefined]) assert.equal(is.positiveInt(v), false, String(v));
  assert.ok(is.nonNegativeInt(0) && !is.nonNegativeInt(-1));
  assert.ok(is.intAtLeast(5, 5) && !is.intAtLeast(4, 5));
  assert.ok(is.inRange(0.5, 0, 1) && is.inRange(0, 0, 1) && is.inRange(1, 0, 1));
  assert.ok(!is.inRange(1.01, 0, 1) && !is.inRange(NaN, 0, 1) && !is.inRange('0.5', 0, 1));
  assert.ok(is.number(0) && !is.number(Infinity) && !is.number('1'));
  assert.ok(is.inArray('b', ['a', 'b']) && !is.inArray('c', ['a', 'b']));
  assert.ok(is.defined(0) && is.defined('') && !is.defined(null) && !is.defined(undefined));
  assert.ok(is.bool(false) && !is.bool(0));
  assert.ok(is.float32Array(new Float32Array(1)) && !is.float32Array(new Float64Array(1)));
});

test('is: one wording, "Expected <what> for <name> but received <value>", values shown by type', () => {
  assert.equal(is.invalidParameterError('tile', 'a positive integer', 0).message, 'Expected a positive integer for tile but received 0');
  assert.equal(is.invalidParameterError('format', 'png or jpg', 'gif').message, 'Expected png or jpg for format but received "gif"');
  assert.equal(is.invalidParameterError('x', 'a number', undefined).message, 'Expected a number for x but received undefined');
  assert.equal(is.invalidParameterError('x', 'a number', [1, 2]).message, 'Expected a number for x but received [1,2]');
  assert.equal(is.invalidParameterError('x', 'a number', new Float32Array(3)).message, 'Expected a number for x but received Float32Array of length 3');
  assert.doesNotThrow(() => is.check(true, 'x', 'y', 1));
  assert.throws(() => is.check(false, 'scale', 'an integer ≥ 1', -2), /^Error: Expected an integer ≥ 1 for scale but received -2$/);
  assert.throws(() => is.checkPositiveInt(2.5, 'batch'), /^Error: Expected a positive integer for batch but received 2.5$/);
});

test('is: checkPlanar names the field that is wrong', () => {
  const img = { data: new Float32Array(12), channels: 3, height: 2, width: 2 };
  assert.doesNotThrow(() => is.checkPlanar(img, 'img'));
  assert.doesNotThrow(() => is.checkPlanar(img, 'rgb', 3));
  assert.throws(() => is.checkPlanar(img, 'alpha', 1), /Expected 1 for alpha\.channels but received 3/);
  assert.throws(() => is.checkPlanar({ ...img, width: 0 }, 'img'), /Expected a positive integer for img\.width but received 0/);
  assert.throws(() => is.checkPlanar({ ...img, data: new Float32Array(11) }, 'img'), /Expected 12 values \(3×2×2\) for img\.data but received 11/);
  assert.throws(() => is.checkPlanar({ ...img, data: new Float64Array(12) as unknown as Float32Array }, 'img'), /Float32Array data for img/);
});

test('is: one wording for files that cannot be read', () => {
  const err = (code: string, message = code) => Object.assign(new Error(message), { code });
  assert.equal(is.fileReadError('model', 'a.pth', err('ENOENT')).message, 'Cannot read model a.pth: file not found');
  assert.equal(is.fileReadError('configuration', 'c.yml', err('ENOTDIR')).message, 'Cannot read configuration c.yml: file not found');
  assert.equal(is.fileReadError('model', 'dir', err('EISDIR')).message, 'Cannot read model dir: it is a folder, not a file');
  assert.equal(is.fileReadError('model', 'm', err('EACCES', 'permission denied')).message, 'Cannot read model m: permission denied');
});
