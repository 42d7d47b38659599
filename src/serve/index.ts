/** The job service: an HTTP API (server.ts) over an embedded or a Redis (BullMQ) queue, and the worker. */
export { buildServer, type ServerOptions } from './server.js';
export { EmbeddedBackend } from './embedded.js';
export { RedisBackend, checkRedisUrl, dataKeys, BULL_PREFIX } from './redis.js';
export { startWorker, type WorkerOptions, type RunningWorker } from './worker.js';
export { catalog, modelPath, modelScale, type ModelCatalog } from './models.js';
export { DEFAULT_LIMITS, HttpError, parseJobParams, type JobParams, type JobState, type JobView, type Limits, type OutputInfo } from './jobs.js';
export { renderMetrics, DURATION_BUCKETS } from './metrics.js';
export type { Backend } from './backend.js';
