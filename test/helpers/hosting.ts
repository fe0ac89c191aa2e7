import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { SandboxSite } from '../../src/sandbox/site.ts';
import { readWithPython, type PythonEntry } from '../transfer/zip/archive-checks.ts';
import { bearer, download } from './sandbox-api.ts';

// What the hosting tests (test/hosting/) share: the sandbox's Versions by code, what storage holds for one, and
// zips fetched to a file and read back by an independent reader (Python's zipfile, which checks every CRC-32).

export function versionIds(site: SandboxSite, ...codes: string[]): number[] {
  return codes.map((code) => {
    const version = site.store.all('Version').find((record) => record.fields.code === code);
    assert.ok(version, `the sandbox has a Version ${code}`);
    return version.id;
  });
}

/** The movie a Version holds, as the site serves it (its 302 to signed storage, followed). */
export async function storedMovie(site: SandboxSite, versionId: number): Promise<Buffer> {
  const reply = await download(site, await bearer(site), `/api/v1/entity/versions/${versionId}/sg_uploaded_movie?alt=original`);
  assert.equal(reply.status, 200, `Version ${versionId} has a movie`);
  return reply.body;
}

export async function withZipFolder<T>(use: (folder: string) => Promise<T>): Promise<T> {
  const folder = await mkdtemp(join(tmpdir(), 'ami-transfer-hosting-'));
  try {
    return await use(folder);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

// Fetching a zip to a file is the zip client's (zip-client.ts); the hosting tests import it from here too.
export { fetchToFile, type FetchedFile } from './zip-client.ts';

/** Every entry of the zip with its SHA-256, as Python's zipfile reads it (rejecting a broken archive). */
export function zipEntries(path: string): Promise<PythonEntry[]> {
  return readWithPython(path);
}

/** The instance that answered through nginx (the test configuration adds X-Upstream-Addr): its host:port. */
export function servedBy(headers: Record<string, string | string[] | undefined>): string {
  // nginx lists every server it tried ("a, b" when the first refused): the last one answered.
  const tried = String(headers['x-upstream-addr'] ?? '').split(/[,:]\s+/);
  return tried.at(-1) ?? '';
}

/**
 * Watches the sandbox's storage (in this process) for parts it begins to receive: a part whose body is still being
 * sent by the test and already reaches storage went through every hop unbuffered, and is in flight at an instance.
 */
export interface PartTap {
  /** Resolves once `count` parts began arriving since the tap was set; rejects with `what` after `withinMs`. */
  started(count: number, withinMs: number, what: string): Promise<void>;
  restore(): void;
}

export function tapStorageParts(site: SandboxSite): PartTap {
  const storage = site.storage;
  const original = storage.uploadPart;
  let count = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  storage.uploadPart = function (this: typeof storage, ...args: Parameters<typeof original>) {
    count += 1;
    for (const waiter of waiters.filter((candidate) => count >= candidate.count)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
    return original.apply(this, args);
  };
  return {
    started(wanted, withinMs, what) {
      if (count >= wanted) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${what}: ${count} of ${wanted} parts reached storage within ${withinMs} ms`)), withinMs);
        waiters.push({ count: wanted, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
    restore() {
      storage.uploadPart = original;
    },
  };
}

/** A part's body that sends its first half at once and the rest only once `released` resolves. */
export function heldBody(part: Buffer, released: Promise<void>): Readable {
  const half = Math.floor(part.length / 2);
  return Readable.from(
    (async function* () {
      yield part.subarray(0, half);
      await released;
      yield part.subarray(half);
    })(),
  );
}

/** A gate: `open()` resolves `opened`. */
export function gate(): { opened: Promise<void>; open(): void } {
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}
