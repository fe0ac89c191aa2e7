// The page's side of the upload protocol (docs/decisions/0004-upload-protocol.md): announce a file, send its
// parts with Content-MD5 through one pool shared by every file, complete, and show what the service answers.
// Transient trouble (the connection drops, the service restarts, storage says 503) is retried with backoff and
// jitter; a refusal (4xx) stops that file with the service's message. No DOM here: the page listens to changes.

import { abortableSleep } from './js/abortable-sleep.js';

/** Attempts for a part or call that keeps failing with an error that is not an outage (500, 422, 429). */
const MAX_ATTEMPTS = 8;
/** How long one part keeps trying through an outage (connection refused, 502/503/504): a restart fits in it. */
const OUTAGE_BUDGET_MS = 120_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 8_000;

/** A refusal: retrying the same request cannot help. `code` is the service's error code. */
export class UploadRefusal extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'UploadRefusal';
    this.status = status;
    this.code = code;
  }
}

/** A failure worth retrying; `outage` ones (the service unreachable) get the longer time budget. */
class TransientFailure extends Error {
  constructor(message, { outage = false, code = null, retryAfterMs = null } = {}) {
    super(message);
    this.name = 'TransientFailure';
    this.outage = outage;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Turns an HTTP answer into its JSON body, a TransientFailure, or an UploadRefusal. */
function answerOf(status, text, retryAfter) {
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (status >= 200 && status < 300) return body;
  const code = body?.error?.code ?? `http_${status}`;
  const message = body?.error?.message ?? `The service answered ${status}.`;
  const seconds = Number(retryAfter);
  const retryAfterMs = retryAfter !== null && Number.isFinite(seconds) ? Math.min(60, Math.max(0, seconds)) * 1000 : null;
  // 503 part_failed: storage did not take the part, send it again; 422 part_corrupted: the bytes changed on the way.
  if (status >= 500 || status === 408 || status === 429 || (status === 422 && code === 'part_corrupted')) {
    throw new TransientFailure(message, { outage: status === 502 || status === 503 || status === 504, code, retryAfterMs });
  }
  throw new UploadRefusal(status, code, message);
}

/** One JSON call to the upload API. */
export async function callUploadApi(url, { method = 'GET', token, body, signal } = {}) {
  let response;
  try {
    response = await fetch(url, {
      method,
      cache: 'no-store',
      headers: {
        Accept: 'application/json',
        ...(method === 'GET' ? {} : { 'X-CSRF-Token': token }),
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(signal ? { signal } : {}),
    });
  } catch (error) {
    if (signal?.aborted) throw signal.reason ?? error;
    throw new TransientFailure('The service cannot be reached.', { outage: true });
  }
  return answerOf(response.status, await response.text(), response.headers.get('retry-after'));
}

/** PUTs one part with XMLHttpRequest, for its upload progress events (fetch has none for request bodies). */
function putPart(url, blob, md5, token, signal, onProgress) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const xhr = new XMLHttpRequest();
    const onAbort = () => xhr.abort();
    const settle = (fn) => {
      signal.removeEventListener('abort', onAbort);
      fn();
    };
    xhr.open('PUT', url);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('Content-MD5', md5);
    xhr.setRequestHeader('X-CSRF-Token', token);
    xhr.upload.addEventListener('progress', (event) => onProgress(event.loaded));
    xhr.addEventListener('load', () =>
      settle(() => {
        try {
          resolve(answerOf(xhr.status, xhr.responseText, xhr.getResponseHeader('Retry-After')));
        } catch (error) {
          reject(error);
        }
      }),
    );
    xhr.addEventListener('error', () => settle(() => reject(new TransientFailure('The connection to the service was lost.', { outage: true }))));
    xhr.addEventListener('abort', () => settle(() => reject(signal.reason ?? new DOMException('Aborted', 'AbortError'))));
    signal.addEventListener('abort', onAbort, { once: true });
    xhr.send(blob);
  });
}


/** Exponential backoff with "equal jitter": half the step fixed, half random, so retries do not bunch up. */
function backoffMs(attempt) {
  const step = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
  return step / 2 + Math.random() * (step / 2);
}

/**
 * Runs `attempt` until it succeeds, a refusal, or the budget is spent: MAX_ATTEMPTS tries, and through an outage
 * at least OUTAGE_BUDGET_MS. `onRetry(failure, delayMs)` is told before each wait.
 */
async function withRetries(attempt, { signal, onRetry } = {}) {
  const started = Date.now();
  // Attempts spent: the service's "wait" (429 rate_limited, with Retry-After) is not a failure and spends none.
  let n = 1;
  for (let tries = 1; ; tries++) {
    try {
      return await attempt(tries);
    } catch (error) {
      if (!(error instanceof TransientFailure) || signal?.aborted) throw error;
      if (error.code === 'rate_limited') {
        const delay = error.retryAfterMs ?? backoffMs(1);
        onRetry?.(error, delay);
        await abortableSleep(delay, signal);
        continue;
      }
      const withinBudget = n < MAX_ATTEMPTS || (error.outage && Date.now() - started < OUTAGE_BUDGET_MS);
      if (!withinBudget) {
        const advice = error.outage ? ' The parts already stored are kept: reload the page later and choose the file again to continue.' : '';
        throw new UploadRefusal(0, error.outage ? 'unreachable' : (error.code ?? 'gave_up'), `${error.message} Gave up after ${n} attempts.${advice}`);
      }
      const delay = error.retryAfterMs ?? backoffMs(n);
      n += 1;
      onRetry?.(error, delay);
      await abortableSleep(delay, signal);
    }
  }
}

let nextJobNumber = 1;

/** One file on its way to its targets: the unit the page shows, pauses, cancels and retries. */
export class UploadJob {
  /**
   * @param {{ file: File, targets: { id: number, name: string, siteUrl: string }[], displayName?: string, resume?: object | null, recordKey?: string | null }} spec
   */
  constructor({ file, targets, displayName = '', resume = null, recordKey = null }) {
    this.key = nextJobNumber++;
    /** Where the service's record of the user's uploads lists this file while it waits its turn. */
    this.recordKey = recordKey;
    this.file = file;
    this.targets = targets;
    this.displayName = displayName;
    this.resume = resume;
    /** queued → starting → uploading → completing → done; or failed, cancelled. */
    this.state = 'queued';
    /** The service's view of the upload once announced: id, partSize, partCount, … */
    this.upload = null;
    this.partsDone = new Set();
    /** Part numbers still to send (a paused part goes back to the front). */
    this.queue = [];
    /** Part number → bytes of it sent so far. */
    this.inFlight = new Map();
    this.doneBytes = 0;
    /** Bytes already stored when this page took the upload over (not part of this page's speed). */
    this.resumedBytes = 0;
    this.results = null;
    this.message = null;
    this.controller = new AbortController();
  }

  get finished() {
    return this.state === 'done' || this.state === 'failed' || this.state === 'cancelled';
  }

  /** Bytes stored, plus what is on its way. */
  get sentBytes() {
    if (this.state === 'done') return this.file.size;
    let sent = this.doneBytes;
    for (const progress of this.inFlight.values()) sent += progress.loaded;
    return Math.min(sent, this.file.size);
  }

  partRange(n) {
    const start = (n - 1) * this.upload.partSize;
    return { start, end: Math.min(this.file.size, start + this.upload.partSize) };
  }
}

/** Where a browser remembers the modification time of the file behind an upload it began, to resume safely. */
const lastModifiedKey = (uploadId) => `ami-transfer.upload.${uploadId}.lastModified`;

export function rememberedLastModified(uploadId) {
  try {
    const value = localStorage.getItem(lastModifiedKey(uploadId));
    return value === null ? null : Number(value);
  } catch {
    // Storage can be off in a cross-site frame: then name and size decide alone.
    return null;
  }
}

function remember(uploadId, lastModified) {
  try {
    localStorage.setItem(lastModifiedKey(uploadId), String(lastModified));
  } catch {
    // See rememberedLastModified.
  }
}

function forget(uploadId) {
  try {
    localStorage.removeItem(lastModifiedKey(uploadId));
  } catch {
    // See rememberedLastModified.
  }
}

/**
 * Runs jobs: one announce at a time, `parallelParts` parts in flight across all files, completion as soon as a
 * file's parts are in. `onChange(job)` after any change to a job; `onStatus(text)` for the page's live region.
 */
export class UploadEngine {
  #pause = new AbortController();
  #active = 0;
  #starting = false;
  #troubled = false;

  constructor({ api, token, parallelParts, hasher, onChange, onStatus }) {
    this.api = api;
    this.token = token;
    this.parallelParts = Math.max(1, parallelParts);
    this.hasher = hasher;
    this.onChange = onChange;
    this.onStatus = onStatus;
    /** @type {UploadJob[]} */
    this.jobs = [];
    this.paused = false;
  }

  add(job) {
    this.jobs.push(job);
    this.onChange(job);
    this.#pump();
  }

  get busy() {
    return this.jobs.some((job) => !job.finished);
  }

  /** Sizes over the jobs still counted (not cancelled or refused): for the total bar, speed and time left. */
  totals() {
    let size = 0;
    let sent = 0;
    let resumed = 0;
    for (const job of this.jobs) {
      if (job.state === 'cancelled' || job.state === 'failed') continue;
      size += job.file.size;
      sent += job.sentBytes;
      resumed += job.resumedBytes;
    }
    return { size, sent, resumed };
  }

  /** Stops sending: parts in flight are abandoned and go back to their queue. */
  pause() {
    if (this.paused) return;
    this.paused = true;
    this.#pause.abort(new DOMException('Paused', 'AbortError'));
    this.onStatus('Paused. Parts already stored are kept.');
    for (const job of this.jobs) this.onChange(job);
  }

  resume() {
    if (!this.paused) return;
    this.paused = false;
    this.#pause = new AbortController();
    this.onStatus('Resumed.');
    // Every line that said "Paused" says so no more, also before its next part moves.
    for (const job of this.jobs) this.onChange(job);
    this.#pump();
  }

  /** Cancels a file: its requests stop and the upload is given up at the site (DELETE). */
  async cancel(job) {
    if (job.finished) return;
    const wasStarting = job.state === 'starting';
    // Never announced: only the record of it waiting changes.
    if (job.state === 'queued' && job.recordKey) void callUploadApi(`${this.api}/queued`, { method: 'POST', token: this.token, body: { cancelled: [job.recordKey] } }).catch(() => undefined);
    job.controller.abort(new DOMException('Cancelled', 'AbortError'));
    job.state = 'cancelled';
    job.message = 'Cancelled: nothing was created for this file.';
    job.queue = [];
    this.onChange(job);
    this.onStatus(`${job.file.name}: cancelled.`);
    this.#pump();
    // An announce in flight finishes on its own and is given up there (see #start).
    if (job.upload && !wasStarting) await this.#giveUp(job);
  }

  cancelAll() {
    for (const job of this.jobs) void this.cancel(job);
  }

  async #giveUp(job) {
    const { id } = job.upload;
    forget(id);
    try {
      await callUploadApi(`${this.api}/${encodeURIComponent(id)}`, { method: 'DELETE', token: this.token });
    } catch {
      // Unreachable now: the service's own expiry and the site's lifecycle rules clean up what is left.
    }
  }

  #pump() {
    if (this.paused) return;
    while (this.#active < this.parallelParts) {
      const job = this.jobs.find((candidate) => candidate.state === 'uploading' && candidate.queue.length > 0);
      if (job) {
        const n = job.queue.shift();
        this.#active += 1;
        void this.#sendPart(job, n).finally(() => {
          this.#active -= 1;
          this.#pump();
        });
        continue;
      }
      // A free slot and nothing queued: announce the next file, one at a time, so the site is not asked to begin
      // a hundred uploads at once.
      const next = this.jobs.find((candidate) => candidate.state === 'queued');
      if (next && !this.#starting) {
        this.#starting = true;
        void this.#start(next).finally(() => {
          this.#starting = false;
          this.#pump();
        });
      }
      return;
    }
  }

  /** Announces the file (or takes over an unfinished upload of it) and queues the parts the service lacks. */
  async #start(job) {
    job.state = 'starting';
    this.onChange(job);
    const retries = { signal: job.controller.signal, onRetry: (failure, delay) => this.#trouble(failure, delay) };
    try {
      let upload = null;
      if (job.resume) {
        // The list the page loaded may be stale: ask for the parts stored now.
        try {
          ({ upload } = await withRetries(() => callUploadApi(`${this.api}/${encodeURIComponent(job.resume.id)}`, { signal: job.controller.signal }), retries));
        } catch (error) {
          // Expired meanwhile: start over rather than fail.
          if (!(error instanceof UploadRefusal && error.status === 404)) throw error;
        }
        // Completed meanwhile (its last parts and the completion left the page before a reload): nothing to send.
        if (upload?.status === 'done') {
          job.upload = upload;
          job.results = upload.results ?? [];
          job.state = 'done';
          forget(upload.id);
          this.onStatus(`${job.file.name}: it had finished before the page was reloaded.`);
          this.onChange(job);
          this.#finishedAll();
          return;
        }
        if (upload?.status !== 'uploading') upload = null;
      }
      if (upload === null) {
        const body = { name: job.file.name, size: job.file.size, targets: job.targets.map((target) => target.id) };
        if (job.displayName) body.displayName = job.displayName;
        if (job.recordKey) body.recordKey = job.recordKey;
        // Not aborted by a cancel: once sent, the service may have begun the upload, which must then be given up.
        ({ upload } = await withRetries(() => callUploadApi(this.api, { method: 'POST', token: this.token, body }), retries));
      }
      job.upload = upload;
      if (job.controller.signal.aborted) {
        await this.#giveUp(job);
        return;
      }
      this.#reachable();
      remember(upload.id, job.file.lastModified);
      this.#takeStoredParts(job, upload.partsDone);
      job.resumedBytes = job.doneBytes;
      job.state = 'uploading';
      this.onChange(job);
      if (job.resumedBytes > 0) this.onStatus(`${job.file.name}: continuing, ${job.partsDone.size} of ${upload.partCount} parts were already stored.`);
      if (job.queue.length === 0) void this.#complete(job);
    } catch (error) {
      if (job.controller.signal.aborted) return;
      this.#fail(job, error);
    }
  }

  /** Marks the parts the service has as done and queues the rest. */
  #takeStoredParts(job, partsDone) {
    job.partsDone = new Set(partsDone);
    job.doneBytes = 0;
    for (const n of job.partsDone) {
      const { start, end } = job.partRange(n);
      job.doneBytes += end - start;
    }
    job.queue = [];
    for (let n = 1; n <= job.upload.partCount; n++) if (!job.partsDone.has(n) && !job.inFlight.has(n)) job.queue.push(n);
  }

  async #sendPart(job, n) {
    const signal = AbortSignal.any([job.controller.signal, this.#pause.signal]);
    const { start, end } = job.partRange(n);
    const blob = job.file.slice(start, end);
    const progress = { loaded: 0 };
    job.inFlight.set(n, progress);
    let md5 = null;
    try {
      await withRetries(
        async () => {
          progress.loaded = 0;
          md5 ??= await this.hasher.hash(blob);
          try {
            await putPart(`${this.api}/${encodeURIComponent(job.upload.id)}/parts/${n}`, blob, md5, this.token, signal, (loaded) => {
              progress.loaded = loaded;
              this.onChange(job);
            });
          } catch (error) {
            // Damaged on the way: read and hash the part again, in case the read was what went wrong.
            if (error instanceof TransientFailure && error.code === 'part_corrupted') md5 = null;
            throw error;
          }
        },
        { signal, onRetry: (failure, delay) => this.#trouble(failure, delay) },
      );
      job.partsDone.add(n);
      job.doneBytes += end - start;
      this.#reachable();
    } catch (error) {
      if (signal.aborted) {
        // Paused: the part goes back to the front of its file's queue; cancelled: the job is already over.
        if (!job.controller.signal.aborted) job.queue.unshift(n);
        return;
      }
      this.#fail(job, error);
      return;
    } finally {
      job.inFlight.delete(n);
      this.onChange(job);
    }
    // Not awaited: completing at the site must not hold one of the part slots other files could use.
    if (job.state === 'uploading' && job.queue.length === 0 && job.inFlight.size === 0) void this.#complete(job);
  }

  async #complete(job) {
    job.state = 'completing';
    this.onChange(job);
    const url = `${this.api}/${encodeURIComponent(job.upload.id)}/complete`;
    try {
      const { upload } = await withRetries(() => callUploadApi(url, { method: 'POST', token: this.token, signal: job.controller.signal }), {
        signal: job.controller.signal,
        onRetry: (failure, delay) => this.#trouble(failure, delay),
      });
      this.#reachable();
      job.results = upload.results ?? [];
      job.state = 'done';
      forget(upload.id);
      const failed = job.results.filter((result) => !result.ok).length;
      this.onStatus(failed === 0 ? `${job.file.name}: done.` : `${job.file.name}: ${failed} of ${job.results.length} targets failed.`);
    } catch (error) {
      if (job.controller.signal.aborted) return;
      if (error instanceof UploadRefusal && error.code === 'parts_missing') {
        // The service lacks parts this page thought stored (its state expired, or a target lost one): send them.
        try {
          const { upload } = await callUploadApi(`${this.api}/${encodeURIComponent(job.upload.id)}`);
          this.#takeStoredParts(job, upload.partsDone);
          job.state = 'uploading';
          this.onChange(job);
          this.#pump();
          return;
        } catch (refreshError) {
          this.#fail(job, refreshError);
          return;
        }
      }
      this.#fail(job, error);
      return;
    } finally {
      this.onChange(job);
      this.#finishedAll();
    }
  }

  /** A refusal stops the file (and gives the upload up at the site); a lost launch or token stops every file. */
  #fail(job, error, { spread = true } = {}) {
    if (job.finished) return;
    const refusal = error instanceof UploadRefusal ? error : null;
    job.message = refusal ? refusal.message : readable(error);
    job.state = 'failed';
    job.queue = [];
    job.controller.abort(new DOMException('Failed', 'AbortError'));
    this.onChange(job);
    this.onStatus(`${job.file.name}: ${job.message}`);
    // After an outage the upload stays resumable (reload, choose the file again); a refusal leaves nothing behind.
    if (job.upload && refusal && refusal.code !== 'unreachable' && refusal.status !== 404 && refusal.status !== 410) void this.#giveUp(job);
    if (spread && refusal && (refusal.status === 410 || refusal.code === 'csrf_invalid')) {
      for (const other of this.jobs) if (other !== job) this.#fail(other, error, { spread: false });
    }
    this.#finishedAll();
  }

  #trouble(failure, delayMs) {
    if (!failure.outage) return;
    const seconds = Math.max(1, Math.round(delayMs / 1000));
    if (!this.#troubled) this.onStatus(`The service cannot be reached: retrying in ${seconds} s. Uploads continue where they stopped.`);
    this.#troubled = true;
  }

  #reachable() {
    if (!this.#troubled) return;
    this.#troubled = false;
    this.onStatus('The service is reachable again: uploads continue.');
  }

  #finishedAll() {
    if (this.busy || this.jobs.length === 0) return;
    this.onStatus(`All uploads finished: ${outcomeText(this.outcomes())}.`);
  }

  /** How the files ended so far: done (at every target), failed (at one or more), cancelled. */
  outcomes() {
    const count = (test) => this.jobs.filter(test).length;
    return {
      done: count((job) => job.state === 'done' && job.results.every((result) => result.ok)),
      failed: count((job) => job.state === 'failed' || (job.state === 'done' && job.results.some((result) => !result.ok))),
      cancelled: count((job) => job.state === 'cancelled'),
    };
  }
}

/** "2 files done, 1 failed": what finished, in words; only the counts that are not zero. */
export function outcomeText({ done, failed, cancelled }) {
  const said = [done > 0 ? `${done} ${done === 1 ? 'file' : 'files'} done` : null, failed > 0 ? `${failed} failed` : null, cancelled > 0 ? `${cancelled} cancelled` : null].filter(Boolean);
  if (said.length === 0) return 'nothing was sent';
  // The noun once, on the first count: "1 file failed", "2 files done, 1 failed".
  if (done === 0) said[0] = said[0].replace(/^(\d+) /, (_, n) => `${n} ${Number(n) === 1 ? 'file' : 'files'} `);
  return said.join(', ');
}

function readable(error) {
  if (error instanceof Error && /NotReadable|NotFound/.test(error.message)) {
    return 'The file can no longer be read: it was moved, changed or deleted since it was chosen. Choose it again.';
  }
  return error instanceof Error ? error.message : String(error);
}
