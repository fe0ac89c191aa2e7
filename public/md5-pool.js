// MD5 of file parts off the main thread: a few workers (public/md5-worker.js), each handed a Blob slice, so the
// page stays responsive while parts are hashed. Where workers cannot start, parts are hashed on the main thread.

import { md5OfBlob } from './md5.js';

export class Md5Pool {
  /** @param {number} size workers to run (parts hash in parallel up to this many) */
  constructor(size) {
    this.workers = [];
    this.pending = new Map();
    this.nextId = 1;
    try {
      for (let i = 0; i < size; i++) {
        const worker = new Worker(new URL('./md5-worker.js', import.meta.url), { type: 'module' });
        worker.busy = 0;
        worker.addEventListener('message', (event) => this.#settle(worker, event.data));
        worker.addEventListener('error', () => this.#fail(worker));
        this.workers.push(worker);
      }
    } catch {
      this.workers = [];
    }
  }

  /**
   * The part's MD5 in base64 (Content-MD5). Rejects when the part cannot be read (the file was moved or changed).
   * @param {Blob} blob
   * @returns {Promise<string>}
   */
  hash(blob) {
    if (this.workers.length === 0) return md5OfBlob(blob);
    const worker = this.workers.reduce((least, candidate) => (candidate.busy < least.busy ? candidate : least));
    const id = this.nextId++;
    worker.busy += 1;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { worker, blob, resolve, reject });
      worker.postMessage({ id, blob });
    });
  }

  #settle(worker, { id, md5, error }) {
    const job = this.pending.get(id);
    if (!job) return;
    this.pending.delete(id);
    worker.busy -= 1;
    if (error) job.reject(new Error(error));
    else job.resolve(md5);
  }

  /**
   * A worker that failed (it could not load, or crashed) leaves the pool and its parts are hashed again by the
   * others, or by the main thread when none is left.
   */
  #fail(worker) {
    this.workers = this.workers.filter((candidate) => candidate !== worker);
    worker.terminate();
    for (const [id, job] of this.pending) {
      if (job.worker !== worker) continue;
      this.pending.delete(id);
      this.hash(job.blob).then(job.resolve, job.reject);
    }
  }
}
