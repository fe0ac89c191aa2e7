import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { EntityId, Tracker, TrackerUpload, UploadedFile, UploadTarget } from '../trackers/tracker.ts';
import type { ByteBudget } from '../net/byte-budget.ts';
import { cutParts } from './part-cutter.ts';
import { MAX_PARTS, MiB, planSinglePut, type PartPlan } from './part-plan.ts';
import { countRetry } from '../net/metrics.ts';
import { withRetries, type RetryPolicy } from '../net/retry-policy.ts';
import { contentTypeFor } from './content-type.ts';
import { putPart, StoragePutError } from './storage-put.ts';

// An upload whose bytes the service reads itself (a plain form post, a bench): the stream is cut into parts,
// a bounded window of parts is held in memory and PUT in parallel to every target (one read, N writes), each
// part retried while it is still held; then every target's upload is completed. A target that fails for good is
// aborted at the site (no orphaned parts, no half-linked attachment) while the others go on.

export interface HeldUploadJob {
  tracker: Tracker;
  login: string;
  targets: readonly UploadTarget[];
  filename: string;
  /** The planned parts; `size: null` when the size is not known ahead (a form upload): then always multipart. */
  plan: PartPlan | { size: null; partSize: number };
  displayName?: string;
  tagIds?: readonly EntityId[];
}

export interface HeldUploadOptions {
  /** Parts in flight at once (each held in memory until every target has it). */
  parallelParts?: number;
  retry?: RetryPolicy;
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
  /** The process's budget for held bytes, shared by every held upload (and launch forms): past it, clients wait. */
  budget?: ByteBudget | undefined;
  /** Largest file of unknown size held whole for targets the site takes in one piece (default HELD_SINGLE_PUT_MAX). */
  singlePutMax?: number;
  /** Bytes acknowledged by storage so far, summed over targets. */
  onProgress?(sentBytes: number): void;
}

export type TargetOutcome =
  | { target: UploadTarget; ok: true; file: UploadedFile }
  | { target: UploadTarget; ok: false; error: Error };

interface TargetRun {
  target: UploadTarget;
  upload: TrackerUpload | null;
  etags: string[];
  failure: Error | null;
}

/**
 * Largest file of unknown size held whole for a target that takes it in one piece (ShotGrid's attachments,
 * thumbnails; anything on a site that must know the size first, ftrack): its size is known only once it has been
 * read, and the one PUT needs it first.
 */
export const HELD_SINGLE_PUT_MAX = 64 * MiB;

/** Whether a file of unknown size must be held whole for `target`: it goes in parts only where the site takes parts before it knows the size. */
export async function heldWhole(tracker: Tracker, login: string, target: UploadTarget): Promise<boolean> {
  return !(tracker.unsizedMultipart && (await tracker.multipartAllowed(login, target)));
}

export async function uploadHeld(job: HeldUploadJob, source: Readable, options: HeldUploadOptions = {}): Promise<TargetOutcome[]> {
  const parallel = Math.max(1, options.parallelParts ?? 4);
  const wholes = job.plan.size === null ? await Promise.all(job.targets.map((target) => heldWhole(job.tracker, job.login, target))) : [];
  if (wholes.includes(true)) {
    const max = options.singlePutMax ?? HELD_SINGLE_PUT_MAX;
    await options.budget?.acquire(max);
    try {
      let whole: Buffer;
      try {
        whole = await readWhole(source, max);
      } catch (error) {
        return job.targets.map((target) => ({ target, ok: false, error: asError(error) }));
      }
      // The held whole is counted once: the single part below does not take from the budget again.
      return await uploadHeld({ ...job, plan: planSinglePut(whole.length) }, Readable.from([whole]), { ...options, budget: undefined });
    } finally {
      options.budget?.release(max);
    }
  }
  const { budget } = options;
  const runs: TargetRun[] = await Promise.all(
    job.targets.map(async (target): Promise<TargetRun> => {
      try {
        const { plan } = job;
        const upload = await job.tracker.beginUpload(job.login, target, {
          name: job.filename,
          size: plan.size,
          contentType: contentTypeFor(job.filename),
          // Not known before it is read: in parts, as many as the bytes make.
          multipart: plan.size === null || plan.multipart,
          partCount: plan.size === null ? null : plan.partCount,
        });
        return { target, upload, etags: [], failure: null };
      } catch (error) {
        return { target, upload: null, etags: [], failure: asError(error) };
      }
    }),
  );

  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  let partNumber = 0;
  let received = 0;
  let readFailure: Error | null = null;
  try {
    const parts = cutParts(source, job.plan.partSize);
    for (;;) {
      // Room for the next part in the process's budget first: past it, this upload's client waits.
      await budget?.acquire(job.plan.partSize);
      const next = await parts.next().catch((error: unknown) => {
        budget?.release(job.plan.partSize);
        throw error;
      });
      if (next.done) {
        budget?.release(job.plan.partSize);
        break;
      }
      const part = next.value;
      partNumber += 1;
      received += part.length;
      if (job.plan.size !== null && received > job.plan.size) throw new Error(`the file is larger than announced (${job.plan.size} bytes)`);
      if (partNumber > MAX_PARTS) throw new Error(`the file is too large for ${MAX_PARTS} parts of ${job.plan.partSize} bytes`);
      const n = partNumber;
      const task = sendPartToAll(job, runs, n, part, options).then((acknowledged) => {
        sent += acknowledged;
        options.onProgress?.(sent);
      });
      inFlight.add(task);
      void task.finally(() => {
        inFlight.delete(task);
        budget?.release(job.plan.partSize);
      });
      if (inFlight.size >= parallel) await Promise.race(inFlight);
      if (runs.every((run) => run.failure !== null)) break;
    }
    await Promise.all(inFlight);
    const stoppedEarly = runs.every((run) => run.failure !== null);
    if (!stoppedEarly && job.plan.size === null && received === 0) throw new Error('the file is empty: there is nothing to upload');
    if (!stoppedEarly && job.plan.size !== null && received !== job.plan.size) throw new Error(`the file ended after ${received} of ${job.plan.size} bytes`);
  } catch (error) {
    readFailure = asError(error);
    await Promise.allSettled(inFlight);
  }

  return Promise.all(
    runs.map(async (run): Promise<TargetOutcome> => {
      const failure = run.failure ?? readFailure;
      if (failure || !run.upload) {
        if (run.upload) await job.tracker.abortUpload(job.login, run.upload).catch(() => undefined);
        return { target: run.target, ok: false, error: failure ?? new Error('the upload did not begin') };
      }
      try {
        const file = await job.tracker.completeUpload(job.login, run.upload, run.etags, {
          ...(job.displayName ? { displayName: job.displayName } : {}),
          ...(job.tagIds ? { tagIds: job.tagIds } : {}),
        });
        return { target: run.target, ok: true, file };
      } catch (error) {
        await job.tracker.abortUpload(job.login, run.upload).catch(() => undefined);
        return { target: run.target, ok: false, error: asError(error) };
      }
    }),
  );
}

/** Sends one held part to every target still going; a target whose part fails for good is marked failed. */
async function sendPartToAll(job: HeldUploadJob, runs: TargetRun[], n: number, bytes: Buffer, options: HeldUploadOptions): Promise<number> {
  let acknowledged = 0;
  await Promise.all(
    runs.map(async (run) => {
      if (run.failure || !run.upload) return;
      const upload = run.upload;
      try {
        const { etag } = await withRetries(
          async () => putPart(await job.tracker.partUrl(job.login, upload, n, { md5: createHash('md5').update(bytes).digest('base64') }), { bytes }, {
            contentType: contentTypeFor(job.filename),
            ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
            ...(options.signal ? { signal: options.signal } : {}),
          }),
          {
            ...(options.retry ? { policy: options.retry } : {}),
            ...(options.signal ? { signal: options.signal } : {}),
            // An expired URL is fetched afresh on the next attempt (partUrl asks the site again).
            classify: (error) => ({ retryable: error instanceof StoragePutError && error.retryable }),
            onRetry: (error) => countRetry('storage_put', error instanceof StoragePutError ? error.code : 'other'),
          },
        );
        run.etags[n - 1] = etag;
        acknowledged += bytes.length;
      } catch (error) {
        run.failure = asError(error);
      }
    }),
  );
  return acknowledged;
}

/** The whole stream in one buffer, refused once it passes `max` bytes (the rest is left unread for the caller). */
async function readWhole(source: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of source.iterator({ destroyOnReturn: false })) {
    size += (chunk as Buffer).length;
    if (size > max) throw new Error(`files over ${max / MiB} MiB go to this site in one piece, which this form cannot do: send it from the page with JavaScript on`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) throw new Error('the file is empty: there is nothing to upload');
  return Buffer.concat(chunks, size);
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
