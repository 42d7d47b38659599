/**
 * Prometheus text exposition (version 0.0.4) of the job service: jobs by state, queue depth,
 * finished jobs by outcome, job run durations (a histogram), rejected requests by reason.
 * Jobs and durations are the queue's (all workers'); rejections are this server process's.
 */
import { JOB_STATES, type JobState } from './jobs.js';

/** Upper bounds (seconds) of the duration histogram's buckets; +Inf follows. */
export const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export type Outcome = 'done' | 'failed' | 'cancelled' | 'timeout';
export const OUTCOMES: Outcome[] = ['done', 'failed', 'cancelled', 'timeout'];

export type RejectReason = 'bad_request' | 'bad_image' | 'too_large' | 'queue_full' | 'unavailable';
export const REJECT_REASONS: RejectReason[] = ['bad_request', 'bad_image', 'too_large', 'queue_full', 'unavailable'];

/** Per-bucket (not cumulative) counts; index DURATION_BUCKETS.length is +Inf. */
export interface DurationStats {
  buckets: number[];
  sum: number;
  count: number;
}

export function emptyDurations(): DurationStats {
  return { buckets: new Array<number>(DURATION_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
}

/** The bucket index a duration falls in. */
export function bucketOf(seconds: number): number {
  const i = DURATION_BUCKETS.findIndex((b) => seconds <= b);
  return i < 0 ? DURATION_BUCKETS.length : i;
}

export function observe(d: DurationStats, seconds: number): void {
  d.buckets[bucketOf(seconds)]++;
  d.sum += seconds;
  d.count++;
}

export interface QueueSnapshot {
  jobs: Record<JobState, number>;
  /** Jobs waiting to start. */
  queueDepth: number;
  finished: Record<Outcome, number>;
  durations: DurationStats;
  /** Workers connected to the queue (Redis mode), or inference threads (embedded). */
  workers: number;
}

function fmt(x: number): string {
  return Number.isFinite(x) ? String(x) : x > 0 ? '+Inf' : x < 0 ? '-Inf' : 'NaN';
}

export function renderMetrics(q: QueueSnapshot, submitted: number, rejected: Record<RejectReason, number>, mode: 'embedded' | 'redis'): string {
  const L: string[] = [];
  const head = (name: string, type: string, help: string) => L.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  head('srflow_jobs', 'gauge', 'Jobs held by the queue, by state (finished ones until their results expire).');
  for (const s of JOB_STATES) L.push(`srflow_jobs{state="${s}"} ${q.jobs[s]}`);
  head('srflow_queue_depth', 'gauge', 'Jobs waiting to start.');
  L.push(`srflow_queue_depth ${q.queueDepth}`);
  head('srflow_workers', 'gauge', mode === 'redis' ? 'Workers connected to the queue.' : 'Inference threads of this embedded server.');
  L.push(`srflow_workers ${q.workers}`);
  head('srflow_jobs_finished_total', 'counter', 'Jobs finished, by outcome.');
  for (const o of OUTCOMES) L.push(`srflow_jobs_finished_total{outcome="${o}"} ${q.finished[o]}`);
  head('srflow_job_duration_seconds', 'histogram', 'Time jobs ran (start to finish), finished jobs of every outcome.');
  let cum = 0;
  DURATION_BUCKETS.forEach((b, i) => {
    cum += q.durations.buckets[i];
    L.push(`srflow_job_duration_seconds_bucket{le="${b}"} ${cum}`);
  });
  cum += q.durations.buckets[DURATION_BUCKETS.length];
  L.push(`srflow_job_duration_seconds_bucket{le="+Inf"} ${cum}`);
  L.push(`srflow_job_duration_seconds_sum ${fmt(q.durations.sum)}`);
  L.push(`srflow_job_duration_seconds_count ${q.durations.count}`);
  head('srflow_jobs_submitted_total', 'counter', 'Jobs accepted by this server process.');
  L.push(`srflow_jobs_submitted_total ${submitted}`);
  head('srflow_requests_rejected_total', 'counter', 'Job submissions this server process refused, by reason.');
  for (const r of REJECT_REASONS) L.push(`srflow_requests_rejected_total{reason="${r}"} ${rejected[r]}`);
  return `${L.join('\n')}\n`;
}
