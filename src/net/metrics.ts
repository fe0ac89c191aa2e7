import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

// What operators watch in Prometheus, counted where it happens: bytes by the transfer core, retries by whoever
// retries, transfer requests at the HTTP edge, dependencies by the readiness checks. One registry per process
// (like the process itself: a second app in the same process counts into the same series), beneath every layer so
// that the core and the trackers can count without knowing who reads. Labels take only values from short fixed
// sets: a label fed from outside (an S3 error code) is cut to a safe word first, so no input grows the series.

export const metricsRegistry = new Registry();

export const transferBytes = new Counter({
  name: 'ami_transfer_bytes_total',
  help: 'Bytes moved: up = stored at storage by uploads (each target counted), down = fetched from storage and web links for zips.',
  labelNames: ['direction'] as const,
  registers: [metricsRegistry],
});

export const transferRequests = new Counter({
  name: 'ami_transfer_requests_total',
  help: 'Transfer requests finished, by action, kind (part, form, complete, zip) and outcome (ok, refused = 4xx, failed = 5xx, aborted = the connection went first).',
  labelNames: ['action', 'kind', 'outcome'] as const,
  registers: [metricsRegistry],
});

export const transferDuration = new Histogram({
  name: 'ami_transfer_request_duration_seconds',
  help: 'How long transfer requests took, by action, kind and outcome.',
  labelNames: ['action', 'kind', 'outcome'] as const,
  // From a small part on a fast link to a zip of a whole sequence.
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200],
  registers: [metricsRegistry],
});

export const transfersInFlight = new Gauge({
  name: 'ami_transfer_requests_in_flight',
  help: 'Transfer requests running on this instance now, by action and kind.',
  labelNames: ['action', 'kind'] as const,
  registers: [metricsRegistry],
});

export const retries = new Counter({
  name: 'ami_transfer_retries_total',
  help: 'Requests sent again by the service, by operation (site_api, storage_put, storage_get) and cause.',
  labelNames: ['operation', 'cause'] as const,
  registers: [metricsRegistry],
});

export const storageRefusals = new Counter({
  name: 'ami_transfer_storage_refusals_total',
  help: "Storage requests that failed, by operation (put, get) and cause (storage's error code, HTTP status, Network, ChecksumMismatch).",
  labelNames: ['operation', 'cause'] as const,
  registers: [metricsRegistry],
});

export const dependencyUp = new Gauge({
  name: 'ami_transfer_dependency_up',
  help: "1 when this instance's last readiness check of the dependency (site, store) succeeded, 0 when it failed.",
  labelNames: ['dependency'] as const,
  registers: [metricsRegistry],
});

export type RetriedOperation = 'site_api' | 'storage_put' | 'storage_get';

export function countRetry(operation: RetriedOperation, cause: string): void {
  retries.inc({ operation, cause: labelWord(cause) });
}

export function countStorageRefusal(operation: 'put' | 'get', cause: string): void {
  storageRefusals.inc({ operation, cause: labelWord(cause) });
}

/** A label value from outside, as a short word: anything else is "other". */
export function labelWord(value: string): string {
  const word = value.trim().replace(/[\s-]+/g, '_');
  return /^[A-Za-z0-9_]{1,40}$/.test(word) ? word : 'other';
}

let processMetrics = false;

/** Node's own figures (CPU, memory, event-loop delay, GC) beside ours; once per process. */
export function collectProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  collectDefaultMetrics({ register: metricsRegistry });
}
