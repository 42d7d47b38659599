/** What the HTTP server needs from a job queue: the embedded one (embedded.ts) or Redis (redis.ts). */
import type { JobParams, JobView } from './jobs.js';
import type { QueueSnapshot } from './metrics.js';

export interface Backend {
  readonly mode: 'embedded' | 'redis';
  /** Queue a checked job; throws HttpError 429 when the queue is full, 503 while shutting down. */
  submit(id: string, input: Buffer, params: JobParams): Promise<void>;
  /** The job, or null when unknown (or expired). */
  get(id: string): Promise<JobView | null>;
  /** Output n's bytes, or null when there is no such output (or it expired). */
  output(id: string, n: number): Promise<Buffer | null>;
  /** Cancel a queued or running job; null when unknown; HttpError 409 when it already finished. */
  cancel(id: string): Promise<JobView | null>;
  snapshot(): Promise<QueueSnapshot>;
  health(): Promise<{ ok: boolean; detail?: string }>;
  /** Stop taking jobs; the embedded queue finishes its running jobs first. */
  close(): Promise<void>;
}

export function outputUrl(id: string, n: number): string {
  return `/v1/jobs/${id}/outputs/${n}`;
}
