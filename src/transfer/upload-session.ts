import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { KeyValueStore, WriteOptions } from '../store/key-value-store.ts';
import type { EntityId, NewUpload, PartLocation, Tracker, TrackerUpload, UploadedFile, UploadTarget } from '../trackers/tracker.ts';
import { fanOut } from './fan-out.ts';
import { imageCheck, NotAnImageError } from './image-check.ts';
import { PartLinks } from './part-links.ts';
import { MAX_OBJECT_SIZE, MAX_PART_SIZE, partRange, planParts, planSinglePut, type PartPlan } from './part-plan.ts';
import { putPart, StoragePutError } from './storage-put.ts';
import { contentTypeFor } from './content-type.ts';
import { cleanUploadName } from './upload-name.ts';

// Uploads driven by the page: it announces a file, then sends numbered parts (several at once, in any order,
// again after a failure or a reload) and finally asks for completion. Each part streams straight through to
// every target's storage URL; the state — which target has which part — lives in the shared store, so any
// instance can take the next part and a dropped connection resumes from the parts already stored.

export interface UploadFileRequest {
  name: string;
  size: number;
  targets: readonly UploadTarget[];
  displayName?: string;
  tagIds?: readonly EntityId[];
  /** What the bytes must be: 'image' for thumbnails, checked by content as part 1 streams through. */
  expect?: 'image';
  /** This file's own limit, when lower than the service's (thumbnails). */
  maxBytes?: number;
}

export type UploadResult =
  | { target: UploadTarget; ok: true; file: UploadedFile }
  | { target: UploadTarget; ok: false; message: string };

export interface UploadRecord {
  id: string;
  contextId: string;
  login: string;
  name: string;
  size: number;
  partSize: number;
  partCount: number;
  uploads: TrackerUpload[];
  displayName: string | null;
  tagIds: EntityId[];
  /** 'image': part 1 must start with an image signature. Absent in records stored before it existed. */
  expect?: 'image' | null;
  status: 'uploading' | 'done' | 'aborted';
  results: UploadResult[] | null;
  createdAt: string;
}

/** How long one completion may take before another call may try (the site completes in seconds). */
const COMPLETION_LOCK_SECONDS = 120;
/** Every unfinished upload and its launch: what the sweeper looks through. */
const OPEN_UPLOADS = 'open-uploads';
/** Uploads one launch may begin (a page of files: far more than anyone drops at once). */
export const MAX_UPLOADS_PER_LAUNCH = 2000;

/** A refusal the page can act on: `status` and a stable `code` for the HTTP layer. */
export class UploadError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'UploadError';
    this.status = status;
    this.code = code;
  }
}

export interface UploadSessionsOptions {
  store: KeyValueStore;
  tracker: Tracker;
  /** How long an upload's state is kept after its last change. */
  ttlSeconds: number;
  /** Largest file accepted, or null. */
  maxBytes: number | null;
  /** Preferred part size; grows with the file so it fits in 10,000 parts. */
  partSize?: number;
  /** How many parts past the one arriving have their links asked for ahead (default 4, the page's parallelism). */
  partLinksAhead?: number;
  /** Uploads one launch may begin (default MAX_UPLOADS_PER_LAUNCH). */
  maxUploadsPerLaunch?: number;
  dispatcher?: Dispatcher;
}

/** A part link asked ahead is asked again after this long: the site does not say how long its links live. */
const PART_LINK_MAX_AGE_MS = 60_000;

export class UploadSessions {
  readonly #options: UploadSessionsOptions;
  readonly #partLinks = new PartLinks<PartLocation>({ maxAgeMs: PART_LINK_MAX_AGE_MS });
  /**
   * Whether storage's ETags are the MD5 of what it holds, learned from its answers (null: not known yet). Until
   * known true, parts are hashed on their way through: on an encrypting bucket that is the only proof.
   */
  #etagIsMd5: boolean | null = null;

  constructor(options: UploadSessionsOptions) {
    this.#options = options;
  }

  /** Checks the file, begins an upload at the site for every target, and remembers it. */
  async begin(contextId: string, login: string, request: UploadFileRequest): Promise<UploadRecord> {
    let name: string;
    try {
      name = cleanUploadName(request.name);
    } catch (error) {
      throw new UploadError(400, 'invalid_name', error instanceof Error ? error.message : String(error));
    }
    if (!Number.isSafeInteger(request.size) || request.size < 0) throw new UploadError(400, 'invalid_size', 'The file size is not a number of bytes.');
    if (request.size === 0) throw new UploadError(400, 'empty_file', `"${name}" is empty: there is nothing to upload.`);
    const maxBytes = smallest(this.#options.maxBytes, request.maxBytes ?? null);
    if (maxBytes !== null && request.size > maxBytes) {
      const what = request.expect === 'image' ? 'images for thumbnails' : 'files';
      throw new UploadError(413, 'file_too_large', `"${name}" is ${request.size} bytes; ${what} may be at most ${maxBytes} bytes.`);
    }
    if (request.targets.length === 0) throw new UploadError(400, 'no_targets', `"${name}" has nowhere to go: choose at least one target.`);
    if (request.size > MAX_OBJECT_SIZE) {
      throw new UploadError(413, 'file_too_large', `"${name}" is ${request.size} bytes; storage takes at most 5 TiB (${MAX_OBJECT_SIZE} bytes) in one file.`);
    }
    const { tracker } = this.#options;
    const inParts = await Promise.all(request.targets.map((target) => tracker.multipartAllowed(login, target)));
    const inOnePiece = inParts.includes(false);
    if (inOnePiece && request.size > MAX_PART_SIZE) {
      throw new UploadError(413, 'file_too_large', `"${name}" is ${request.size} bytes; the site takes this file in one piece, at most 5 GiB (${MAX_PART_SIZE} bytes).`);
    }
    const plan: PartPlan = inOnePiece ? planSinglePut(request.size) : planParts(request.size, this.#options.partSize);
    const file = { name, size: request.size, contentType: contentTypeFor(name), multipart: plan.multipart, partCount: plan.partCount };
    const giveBack = await this.#reserveUpload(contextId, login);
    try {
      return await this.#beginAtSite(contextId, login, request, name, plan, file);
    } catch (error) {
      // Not begun: its place under the cap is given back (the page may try again after a site's 5xx).
      await giveBack().catch(() => undefined);
      throw error;
    }
  }

  /**
   * A place under the launch's cap, taken atomically (requests at once, to one instance or many, cannot all slip
   * under it), or 429. Each upload's state is kept for days: one launch cannot pile up more than a page of files
   * could need. The count is a window of `ttlSeconds` from the launch's first upload. Resolves to what gives it back.
   */
  async #reserveUpload(contextId: string, login: string): Promise<() => Promise<void>> {
    const most = this.#options.maxUploadsPerLaunch ?? MAX_UPLOADS_PER_LAUNCH;
    const key = `launch-upload-count:${contextId}`;
    const add = (by: number) => this.#options.store.increment(key, this.#options.ttlSeconds, { owner: login }, by);
    const giveBack = async () => void (await add(-1));
    if ((await add(1)) > most) {
      await giveBack();
      throw new UploadError(429, 'too_many_uploads', `This launch has begun ${most} uploads, the most one launch may; run the action again from {site} for more.`);
    }
    return giveBack;
  }

  async #beginAtSite(contextId: string, login: string, request: UploadFileRequest, name: string, plan: PartPlan, file: NewUpload): Promise<UploadRecord> {
    const { tracker } = this.#options;
    const begun = await Promise.allSettled(request.targets.map((target) => tracker.beginUpload(login, target, file)));
    const uploads = begun.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const refused = begun.find((result) => result.status === 'rejected');
    if (refused) {
      // All or nothing: the page shows the refusal and nothing stays half-begun at the site.
      await Promise.allSettled(uploads.map((upload) => tracker.abortUpload(login, upload)));
      throw refused.reason;
    }
    const record: UploadRecord = {
      id: randomBytes(18).toString('base64url'),
      contextId,
      login,
      name,
      size: request.size,
      partSize: plan.partSize,
      partCount: plan.partCount,
      uploads,
      displayName: request.displayName?.trim() || null,
      tagIds: [...(request.tagIds ?? [])],
      expect: request.expect ?? null,
      status: 'uploading',
      results: null,
      createdAt: new Date().toISOString(),
    };
    await this.#save(record);
    await this.#options.store.hashSet(`launch-uploads:${contextId}`, record.id, record.createdAt, this.#options.ttlSeconds, ownedBy(record));
    // Shared by every user: the sweeper's list of what may need aborting.
    await this.#options.store.hashSet(OPEN_UPLOADS, record.id, contextId, this.#options.ttlSeconds);
    return record;
  }

  /** The uploads begun from one launch, oldest first: what a reloaded page shows and resumes. */
  async list(contextId: string): Promise<UploadRecord[]> {
    const ids = Object.entries(await this.#options.store.hashGetAll(`launch-uploads:${contextId}`)).sort((a, b) => a[1].localeCompare(b[1]));
    const records = await Promise.all(ids.map(([id]) => this.get(contextId, id)));
    return records.filter((record): record is UploadRecord => record !== null);
  }

  /** The upload, if it exists and belongs to this launch. */
  async get(contextId: string, id: string): Promise<UploadRecord | null> {
    if (!/^[A-Za-z0-9_-]{24}$/.test(id)) return null;
    const json = await this.#options.store.get(`upload:${id}`);
    if (json === null) return null;
    const record = JSON.parse(json) as UploadRecord;
    return record.contextId === contextId ? record : null;
  }

  /** Part numbers every target has (sorted): what a resuming page need not send again. */
  async partsDone(record: UploadRecord): Promise<number[]> {
    const have = await this.#etags(record);
    const done: number[] = [];
    for (let n = 1; n <= record.partCount; n++) {
      if (record.uploads.every((_, target) => have.has(`${target}:${n}`))) done.push(n);
    }
    return done;
  }

  /**
   * Streams part `n` to every target that lacks it. The body is not held: after a failure the page sends the
   * part again (UploadError 503 `part_failed`), and only the targets still lacking it get it.
   */
  async receivePart(record: UploadRecord, n: number, body: Readable, length: number, contentMd5: string | undefined, signal?: AbortSignal): Promise<{ sent: number }> {
    if (record.status !== 'uploading') throw new UploadError(409, 'upload_finished', 'This upload is already finished.');
    if (!Number.isInteger(n) || n < 1 || n > record.partCount) throw new UploadError(400, 'invalid_part', `Part ${n} is outside 1–${record.partCount}.`);
    const { start, end } = partRange(planOf(record), n);
    if (length !== end - start) throw new UploadError(400, 'part_size_mismatch', `Part ${n} must be ${end - start} bytes, not ${length}.`);
    if (contentMd5 !== undefined && !/^[A-Za-z0-9+/]{22}==$/.test(contentMd5)) throw new UploadError(400, 'invalid_md5', 'Content-MD5 must be a base64 MD5 digest.');

    const have = await this.#etags(record);
    const lacking = record.uploads.map((upload, index) => ({ upload, index })).filter(({ index }) => !have.has(`${index}:${n}`));
    if (lacking.length === 0) {
      body.resume();
      return { sent: 0 };
    }
    // Links first: bytes start to flow only when every destination is ready for them. The next parts' links are
    // asked for now, so that they are at hand when those parts arrive.
    const { tracker, dispatcher } = this.#options;
    const linkKey = (index: number, part: number) => `${record.id}:${index}:${part}`;
    const urls = await Promise.all(
      lacking.map(({ upload, index }) => this.#partLinks.take(linkKey(index, n), () => tracker.partUrl(record.login, upload, n, contentMd5 ? { md5: contentMd5 } : {}))),
    );
    const next = Array.from({ length: Math.min(this.#options.partLinksAhead ?? 4, record.partCount - n) }, (_, i) => n + 1 + i);
    this.#partLinks.askAhead(
      lacking.flatMap(({ upload, index }) =>
        next.filter((part) => !have.has(`${index}:${part}`)).map((part) => [linkKey(index, part), () => tracker.partUrl(record.login, upload, part)] as const),
      ),
    );
    const refused: { error: NotAnImageError | null } = { error: null };
    let source: Readable = body;
    if (n === 1 && record.expect === 'image') {
      // Before the fan-out: no branch gets a byte until the start of the file is known to be an image.
      const check = imageCheck(record.name);
      check.once('error', (error) => {
        if (error instanceof NotAnImageError) refused.error = error;
      });
      body.once('error', (error) => check.destroy(error));
      source = body.pipe(check);
    }
    const branches = fanOut(source, lacking.length);
    const outcomes = await Promise.allSettled(
      lacking.map(async ({ index }, i) => {
        const { etag, etagIsMd5 } = await putPart(urls[i]!, { stream: branches[i]!, size: length, hash: this.#etagIsMd5 !== true, ...(contentMd5 ? { md5: contentMd5 } : {}) }, {
          contentType: contentTypeFor(record.name),
          ...(dispatcher ? { dispatcher } : {}),
          ...(signal ? { signal } : {}),
        });
        if (urls[i]!.receipt === 'etag') this.#etagIsMd5 = etagIsMd5;
        await this.#options.store.hashSet(`upload:${record.id}:etags`, `${index}:${n}`, etag, this.#options.ttlSeconds, ownedBy(record));
      }),
    );
    if (refused.error) {
      // Not worth a retry: the same bytes would be refused again. Nothing reached storage; the site lets go too.
      await this.abort(record);
      throw new UploadError(415, 'not_an_image', refused.error.message);
    }
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failed) {
      const error = failed.reason;
      if (error instanceof StoragePutError && error.corrupted) {
        // The bytes changed between the page and storage; sending them again is the cure.
        throw new UploadError(422, 'part_corrupted', `Part ${n} arrived damaged; send it again.`);
      }
      if (error instanceof StoragePutError && !error.retryable) {
        // Storage refused the request itself: sending the same again would not help.
        throw new UploadError(502, 'storage_refused', `Storage refused part ${n} (${error.code}): ${error.message}`);
      }
      throw new UploadError(503, 'part_failed', `Part ${n} could not be stored; send it again.`);
    }
    return { sent: length * lacking.length };
  }

  /** Completes every target's upload at the site with its parts' ETags; results per target. */
  async complete(record: UploadRecord): Promise<UploadRecord> {
    if (record.status === 'done') return record;
    if (record.status !== 'uploading') throw new UploadError(409, 'upload_finished', 'This upload was cancelled.');
    const have = await this.#etags(record);
    const arrived = (await this.partsDone(record)).length;
    if (arrived !== record.partCount) {
      throw new UploadError(409, 'parts_missing', `${record.partCount - arrived} of ${record.partCount} parts have not arrived yet.`);
    }
    // One completion at a time, across instances: a page that retries while the first call still runs waits
    // for its outcome instead of completing twice (the second would fail at the site and overwrite success).
    const lock = `upload:${record.id}:completing`;
    if (!(await this.#options.store.setIfAbsent(lock, '1', COMPLETION_LOCK_SECONDS, ownedBy(record)))) return this.#awaitCompletion(record);
    const { tracker } = this.#options;
    const results = await Promise.all(
      record.uploads.map(async (upload, index): Promise<UploadResult> => {
        const etags = Array.from({ length: record.partCount }, (_, i) => have.get(`${index}:${i + 1}`)!);
        try {
          const file = await tracker.completeUpload(record.login, upload, etags, {
            ...(record.displayName ? { displayName: record.displayName } : {}),
            ...(record.tagIds.length ? { tagIds: record.tagIds } : {}),
          });
          return { target: upload.target, ok: true, file };
        } catch (error) {
          await tracker.abortUpload(record.login, upload).catch(() => undefined);
          return { target: upload.target, ok: false, message: error instanceof Error ? error.message : String(error) };
        }
      }),
    );
    const done: UploadRecord = { ...record, status: 'done', results };
    this.#partLinks.forget(`${record.id}:`);
    await this.#save(done);
    await this.#options.store.hashDelete(OPEN_UPLOADS, record.id);
    return done;
  }

  async #awaitCompletion(record: UploadRecord): Promise<UploadRecord> {
    const deadline = Date.now() + COMPLETION_LOCK_SECONDS * 1000;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const current = await this.get(record.contextId, record.id);
      if (current && current.status !== 'uploading') return current;
    }
    throw new UploadError(503, 'completion_pending', 'The upload is still being completed at the site; check again in a moment.');
  }

  /** Gives the upload up at the site for every target: no orphaned parts, nothing created. */
  async abort(record: UploadRecord): Promise<UploadRecord> {
    if (record.status !== 'uploading') return record;
    await Promise.allSettled(record.uploads.map((upload) => this.#options.tracker.abortUpload(record.login, upload)));
    const aborted: UploadRecord = { ...record, status: 'aborted' };
    this.#partLinks.forget(`${record.id}:`);
    await this.#save(aborted);
    await this.#options.store.hashDelete(OPEN_UPLOADS, record.id);
    return aborted;
  }

  /** Gives up every unfinished upload of a launch (discarded: nobody can finish them). */
  async abortLaunch(contextId: string): Promise<number> {
    const open = (await this.list(contextId)).filter((record) => record.status === 'uploading');
    await Promise.all(open.map((record) => this.abort(record)));
    return open.length;
  }

  /**
   * Gives up the unfinished uploads whose launch has gone (expired, or discarded on another instance): their
   * parts would otherwise stay at storage as incomplete multipart uploads. Run now and then by every instance;
   * aborting twice is harmless. Answers how many were given up.
   */
  async sweepAbandoned(launchIsLive: (contextId: string) => Promise<boolean>): Promise<number> {
    let swept = 0;
    for (const [id, contextId] of Object.entries(await this.#options.store.hashGetAll(OPEN_UPLOADS))) {
      if (await launchIsLive(contextId)) continue;
      const record = await this.get(contextId, id);
      if (record?.status === 'uploading') {
        await this.abort(record);
        swept += 1;
      }
      await this.#options.store.hashDelete(OPEN_UPLOADS, id);
    }
    return swept;
  }

  async #etags(record: UploadRecord): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.#options.store.hashGetAll(`upload:${record.id}:etags`)));
  }

  async #save(record: UploadRecord): Promise<void> {
    await this.#options.store.set(`upload:${record.id}`, JSON.stringify(record), this.#options.ttlSeconds, ownedBy(record));
  }
}

/** An upload's state is kept for the user who began it: a full memory store evicts the heaviest user's first. */
function ownedBy(record: UploadRecord): WriteOptions {
  return { owner: record.login };
}

/** The lower of two limits, where null is none. */
function smallest(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

function planOf(record: UploadRecord): PartPlan {
  return { size: record.size, partSize: record.partSize, partCount: record.partCount, multipart: record.partCount > 1 };
}
