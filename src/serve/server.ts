/**
 * The HTTP API (fastify) in front of a job queue (embedded.ts or redis.ts):
 *
 *   POST   /v1/jobs?temperature=0.8&samples=1&seed=0&scale=4[&model=NAME][&format=png]
 *          body: the image (any Content-Type; PNG, JPEG or WebP by content), or multipart/form-data
 *          with one file part (and the parameters as fields, if not in the query) → 202 {"id"}
 *   GET    /v1/jobs/:id             → {"id","state","progress","outputs":[…],"error"?}
 *   GET    /v1/jobs/:id/outputs/:n  → the image bytes
 *   DELETE /v1/jobs/:id             → cancels a queued or running job
 *   GET    /healthz, GET /metrics (Prometheus text)
 *
 * Every refusal is a JSON `{"error": "…"}` naming the problem with a 4xx status; nothing a client
 * sends can stop the server.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { CONTENT_TYPES, HttpError, parseJobParams, type JobParams, type Limits } from './jobs.js';
import { inspectImage } from './validate.js';
import { modelPath, modelScale, type ModelCatalog } from './models.js';
import { renderMetrics, REJECT_REASONS, type RejectReason } from './metrics.js';
import type { Backend } from './backend.js';

export interface ServerOptions {
  backend: Backend;
  limits: Limits;
  models: ModelCatalog;
  /** Log one line per request to stderr (fastify's logger). */
  logRequests?: boolean;
}

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function mb(bytes: number): string {
  return `${+(bytes / 1048576).toFixed(2)} MB`;
}

export async function buildServer(o: ServerOptions): Promise<FastifyInstance> {
  const { backend, limits, models } = o;
  const app = Fastify({
    logger: o.logRequests ? { level: 'info' } : false,
    bodyLimit: limits.maxUploadBytes,
    requestTimeout: 120_000,
    connectionTimeout: 120_000,
    return503OnClosing: true,
  });
  let submitted = 0;
  const rejected = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;

  // Every body is read as bytes (the image is sniffed, not trusted to its Content-Type) ...
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  // ... except multipart/form-data, streamed by @fastify/multipart.
  await app.register(multipart, { limits: { fileSize: limits.maxUploadBytes, files: 1, fields: 10, parts: 12, fieldSize: 1024 } });

  app.setErrorHandler((err: FastifyError | HttpError, req, reply) => {
    let status = err instanceof HttpError ? err.status : (err.statusCode ?? 500);
    let message = err.message;
    const code = (err as FastifyError).code;
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE' || code === 'FST_REQ_FILE_TOO_LARGE') {
      status = 413;
      message = `The upload is larger than this server's limit of ${mb(limits.maxUploadBytes)}`;
    } else if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT' || code === 'FST_FIELDS_LIMIT') {
      status = 400;
      message = `Too many parts in the multipart upload: send one file (the image) and at most 10 parameter fields`;
    } else if (code === 'FST_ERR_CTP_EMPTY_TYPE' || code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') {
      status = 400;
    }
    if (status >= 500) {
      req.log.error(err);
      process.stderr.write(`srflow serve: ${req.method} ${req.url}: ${err.message}\n`);
      if (!(err instanceof HttpError)) message = `Internal error: ${err.message}`;
    }
    if (req.method === 'POST' && req.routeOptions.url === '/v1/jobs' && status >= 400 && status < 600) {
      const reason: RejectReason =
        status === 413
          ? 'too_large'
          : status === 429
            ? 'queue_full'
            : status === 503
              ? 'unavailable'
              : ((err as { reason?: RejectReason }).reason ?? 'bad_request');
      if (rejected[reason] !== undefined) rejected[reason]++;
    }
    if (err instanceof HttpError) for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
    reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: `No such endpoint: ${req.method} ${req.url.split('?')[0]}` });
  });

  let defaultScale = 4;
  try {
    defaultScale = modelScale(models.defaultModel);
  } catch {
    /* a Redis front end without the model file: workers check the scale */
  }

  /** Model and scale checks that this process can make (in Redis mode, workers may know more models). */
  function checkModel(p: JobParams): void {
    let path: string | null = null;
    try {
      path = modelPath(models, p.model, p.scale);
    } catch (e) {
      // Embedded: this process runs the job, so it must have the model. Redis: only a models
      // folder given to this server makes it an authority on names; workers check the rest.
      if (backend.mode === 'embedded' || (models.modelsDir !== undefined && p.model !== null)) throw new HttpError(400, (e as Error).message);
    }
    if (path) {
      const s = modelScale(path);
      if (s !== p.scale)
        throw new HttpError(
          400,
          `Expected scale=${s} for ${p.model === null ? 'the default model' : `model ${p.model}`} (it upscales ${s}×) but received ${p.scale}`,
        );
    }
  }

  async function readUpload(req: FastifyRequest): Promise<{ bytes: Buffer; fields: Record<string, string> }> {
    if (!req.isMultipart()) {
      const body = req.body;
      return { bytes: Buffer.isBuffer(body) ? body : Buffer.alloc(0), fields: {} };
    }
    const fields: Record<string, string> = {};
    let bytes: Buffer | null = null;
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (bytes !== null) throw new HttpError(400, 'Expected one file in the multipart upload but received several');
        bytes = await part.toBuffer();
      } else fields[part.fieldname] = String(part.value);
    }
    if (bytes === null) throw new HttpError(400, 'The multipart upload has no file part: add the image as a file field');
    return { bytes, fields };
  }

  const tag = (e: unknown, reason: RejectReason) => {
    if (e instanceof HttpError && e.status === 400) (e as { reason?: RejectReason }).reason = reason;
    return e;
  };

  app.post('/v1/jobs', async (req, reply) => {
    const query = req.query as Record<string, unknown>;
    let params: JobParams;
    let bytes: Buffer;
    let fields: Record<string, string>;
    try {
      ({ bytes, fields } = await readUpload(req));
      for (const k of Object.keys(fields)) if (k in query) throw new HttpError(400, `Parameter ${JSON.stringify(k)} given twice (query and form field)`);
      params = parseJobParams({ ...query, ...fields }, limits, defaultScale);
      checkModel(params);
    } catch (e) {
      throw tag(e, 'bad_request');
    }
    try {
      await inspectImage(bytes, { maxPixels: limits.maxPixels, scale: params.scale, format: params.format });
    } catch (e) {
      throw tag(e, 'bad_image');
    }
    const id = randomUUID();
    try {
      await backend.submit(id, bytes, params);
    } catch (e) {
      throw tag(e, 'bad_request');
    }
    submitted++;
    reply.code(202).header('location', `/v1/jobs/${id}`);
    return { id };
  });

  const jobId = (req: FastifyRequest): string => {
    const id = (req.params as { id: string }).id;
    if (!ID.test(id)) throw new HttpError(404, `No job ${JSON.stringify(id)} (job ids are UUIDs)`);
    return id;
  };
  /** A job's view, or 404 for an unknown (or expired) job. */
  const known = <V>(id: string, v: V | null | undefined): V => {
    if (!v) throw new HttpError(404, `No job ${id} (unknown, or its results expired)`);
    return v;
  };

  app.get('/v1/jobs/:id', async (req) => {
    const id = jobId(req);
    return known(id, await backend.get(id));
  });

  app.get('/v1/jobs/:id/outputs/:n', async (req, reply) => {
    const id = jobId(req);
    const nText = (req.params as { n: string }).n;
    if (!/^\d{1,4}$/.test(nText)) throw new HttpError(400, `Expected an output number (0, 1, …) but received ${JSON.stringify(nText)}`);
    const n = Number(nText);
    const v = known(id, await backend.get(id));
    if (v.state !== 'done') throw new HttpError(409, `Job ${id} is ${v.state}: outputs exist once it is done`);
    if (n >= v.outputs.length) throw new HttpError(404, `Job ${id} has ${v.outputs.length} output(s): no output ${n}`);
    const bytes = await backend.output(id, n);
    if (!bytes) throw new HttpError(404, `Output ${n} of job ${id} expired`);
    const format = sniffFormat(bytes) ?? 'png';
    reply.header('content-type', CONTENT_TYPES[format]).header('content-disposition', `inline; filename="${id}_${n}.${format}"`);
    return reply.send(bytes);
  });

  app.delete('/v1/jobs/:id', async (req) => {
    const id = jobId(req);
    return known(id, await backend.cancel(id));
  });

  app.get('/healthz', async (_req, reply) => {
    const h = await backend.health();
    reply.code(h.ok ? 200 : 503);
    return h.ok ? { status: 'ok', mode: backend.mode } : { status: 'error', mode: backend.mode, error: h.detail };
  });

  app.get('/metrics', async (_req, reply) => {
    const snap = await backend.snapshot();
    reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8');
    return renderMetrics(snap, submitted, rejected, backend.mode);
  });

  return app;
}

function sniffFormat(b: Buffer): 'png' | 'jpg' | 'webp' | null {
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpg';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return null;
}
