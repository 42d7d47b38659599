/**
 * Every bad request the job API must refuse with a 4xx JSON error naming the problem, run against
 * a server (embedded or Redis) whose limits are SMALL_LIMITS; the server must keep serving.
 */
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { DEFAULT_LIMITS, type Limits } from '../../src/serve/jobs.js';
import { postImage, testPng } from './helpers.js';

export const SMALL_LIMITS: Limits = { ...DEFAULT_LIMITS, maxUploadBytes: 64 * 1024, maxPixels: 64 * 64, maxOutputs: 8, maxQueue: 100 };

async function expectError(r: Response | { status: number; json: Record<string, unknown> }, status: number, re: RegExp, what: string): Promise<void> {
  let body: Record<string, unknown>;
  let st: number;
  if (r instanceof Response) {
    st = r.status;
    assert.match(r.headers.get('content-type') ?? '', /application\/json/, `${what}: JSON error`);
    body = (await r.json()) as Record<string, unknown>;
  } else {
    st = r.status;
    body = r.json;
  }
  assert.equal(st, status, `${what}: status (body ${JSON.stringify(body)})`);
  assert.equal(typeof body.error, 'string', `${what}: {"error": "..."}`);
  assert.match(body.error as string, re, `${what}: message`);
}

export async function checkBadRequests(base: string): Promise<void> {
  const png = await testPng(12, 10);
  const text = 'This is a text file, not an image.\n';

  // Bodies that are not (acceptable) images: 400.
  await expectError(await postImage(base, text), 400, /not a readable image/, 'text posted as image/png');
  await expectError(await postImage(base, text, '', 'text/plain'), 400, /not a readable image/, 'text posted as text/plain');
  await expectError(await postImage(base, Buffer.alloc(0)), 400, /body is empty/, 'empty body');
  const noType = await fetch(`${base}/v1/jobs`, { method: 'POST', body: new Uint8Array(Buffer.from(text)) }); // no Content-Type at all
  await expectError(noType, 400, /not a readable image/, 'text without a Content-Type');
  await expectError(await fetch(`${base}/v1/jobs`, { method: 'POST' }), 400, /body is empty/, 'no body at all');
  await expectError(await postImage(base, png.subarray(0, Math.floor(png.length / 2))), 400, /cannot be decoded|not a readable image/, 'truncated PNG');
  const gif = await sharp(Buffer.alloc(8 * 8 * 3, 128), { raw: { width: 8, height: 8, channels: 3 } })
    .gif()
    .toBuffer();
  await expectError(await postImage(base, gif, '', 'image/gif'), 400, /Unsupported image format 'gif'/, 'GIF');
  await expectError(await postImage(base, '{"image": 1}', '', 'application/json'), 400, /not a readable image/, 'JSON body');

  // Limits: 413.
  await expectError(
    await postImage(base, Buffer.alloc(SMALL_LIMITS.maxUploadBytes + 1, 7)),
    413,
    /larger than this server's limit of 0\.06 MB/,
    'body over the upload limit',
  );
  const big = new FormData();
  big.append('image', new Blob([new Uint8Array(SMALL_LIMITS.maxUploadBytes + 1)], { type: 'image/png' }), 'big.png');
  await expectError(
    await fetch(`${base}/v1/jobs`, { method: 'POST', body: big }),
    413,
    /larger than this server's limit/,
    'multipart file over the upload limit',
  );
  await expectError(await postImage(base, await testPng(65, 64)), 413, /65×64 = 4160 pixels, above this server's limit of 4096 pixels/, 'too many pixels');

  // Parameters: 400 naming the parameter.
  const params: [string, RegExp][] = [
    ['temperature=-1', /temperature ≥ 0 .* for temperature but received "-1"/],
    ['temperature=hot', /for temperature but received "hot"/],
    ['temperature=0.5,', /for temperature but received ""/],
    ['samples=0', /integer ≥ 1 for samples but received "0"/],
    ['samples=1.5', /for samples/],
    ['seed=-3', /integer ≥ 0 for seed but received "-3"/],
    ['seed=x', /for seed/],
    ['scale=2', /Expected scale=4 .* but received 2/],
    ['scale=four', /for scale/],
    ['format=bmp', /png, jpg or webp for format but received "bmp"/],
    ['model=..%2Fetc%2Fpasswd', /model name .* for model but received "..\/etc\/passwd"/],
    ['model=nosuch', /Unknown model "nosuch"/],
    ['colour=red', /Unknown parameter "colour"/],
    ['seed=1&seed=2', /one value for seed but received 2/],
    ['samples=9', /Too many outputs: 1 temperature\(s\) × 9 sample\(s\) = 9, above the limit of 8/],
    ['temperature=0,0.5,1&samples=3', /Too many outputs: .* = 9/],
  ];
  for (const [q, re] of params) await expectError(await postImage(base, png, q), 400, re, q);

  // Multipart without a file, with two files, and a parameter given twice.
  const noFile = new FormData();
  noFile.set('temperature', '0.5');
  await expectError(await fetch(`${base}/v1/jobs`, { method: 'POST', body: noFile }), 400, /no file part/, 'multipart without a file');
  const two = new FormData();
  two.append('a', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'a.png');
  two.append('b', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'b.png');
  await expectError(await fetch(`${base}/v1/jobs`, { method: 'POST', body: two }), 400, /one file|Too many parts/, 'multipart with two files');
  const twice = new FormData();
  twice.set('seed', '1');
  twice.append('image', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'a.png');
  await expectError(await fetch(`${base}/v1/jobs?seed=2`, { method: 'POST', body: twice }), 400, /"seed" given twice/, 'parameter in query and form');
  const textFile = new FormData();
  textFile.append('image', new Blob([text], { type: 'image/png' }), 'a.png');
  await expectError(await fetch(`${base}/v1/jobs`, { method: 'POST', body: textFile }), 400, /not a readable image/, 'multipart text file');

  // Unknown jobs, outputs and endpoints.
  const unknown = '00000000-0000-4000-8000-000000000000';
  await expectError(await fetch(`${base}/v1/jobs/${unknown}`), 404, /No job/, 'unknown job');
  await expectError(await fetch(`${base}/v1/jobs/not-a-job`), 404, /job ids are UUIDs/, 'malformed job id');
  await expectError(await fetch(`${base}/v1/jobs/${unknown}`, { method: 'DELETE' }), 404, /No job/, 'cancel an unknown job');
  await expectError(await fetch(`${base}/v1/jobs/${unknown}/outputs/0`), 404, /No job/, 'output of an unknown job');
  await expectError(await fetch(`${base}/v1/jobs/${unknown}/outputs/first`), 400, /output number/, 'output number not a number');
  await expectError(await fetch(`${base}/v2/things`), 404, /No such endpoint: GET \/v2\/things/, 'unknown endpoint');
  await expectError(await fetch(`${base}/v1/jobs`, { method: 'PUT', body: new Uint8Array(png) }), 404, /No such endpoint: PUT/, 'wrong method');

  const h = await fetch(`${base}/healthz`);
  assert.equal(h.status, 200, 'still healthy after every bad request');
}

/** The rejected-requests counters of /metrics. */
export async function rejectedCounts(base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^srflow_requests_rejected_total\{reason="(\w+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}
