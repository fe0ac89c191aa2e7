import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { MemoryKeyValueStore } from '../../src/store/memory-store.ts';
import { ShotgridTracker } from '../../src/trackers/shotgrid/tracker.ts';
import { MiB, partRange } from '../../src/transfer/part-plan.ts';
import type { PartLocation, TrackerUpload } from '../../src/trackers/tracker.ts';
import { UploadError, UploadSessions, type UploadRecord } from '../../src/transfer/upload-session.ts';
import { bearer, download, md5, sha256, testBytes } from '../helpers/sandbox-api.ts';

// Page-driven uploads through the real sandbox: parts in any order, again after failures, from any instance.

let site: SandboxSite;
let tracker: ShotgridTracker;
let store: MemoryKeyValueStore;
let sessions: UploadSessions;

before(async () => {
  site = await startSandboxSite();
  tracker = new ShotgridTracker({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: site.scriptKey, retry: { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 } });
  store = new MemoryKeyValueStore();
  sessions = new UploadSessions({ store, tracker, ttlSeconds: 3600, maxBytes: 100 * MiB, partSize: 5 * MiB });
});
after(async () => {
  await store.close();
  await tracker.close();
  await site.close();
});
beforeEach(() => site.faults.reset());

const version = (code: string) => ({ type: 'Version', id: String(site.store.all('Version').find((v) => v.fields.code === code)!.id), slot: 'review-media' as const });

function part(record: UploadRecord, bytes: Buffer, n: number): { body: Readable; length: number; md5: string } {
  const { start, end } = partRange({ size: record.size, partSize: record.partSize, partCount: record.partCount, multipart: record.partCount > 1 }, n);
  const slice = bytes.subarray(start, end);
  return { body: Readable.from([slice]), length: slice.length, md5: Buffer.from(md5(slice), 'hex').toString('base64') };
}

async function send(s: UploadSessions, record: UploadRecord, bytes: Buffer, n: number) {
  const p = part(record, bytes, n);
  return s.receivePart(record, n, p.body, p.length, p.md5);
}

async function stored(attachmentId: string | null): Promise<Buffer> {
  return (await download(site, await bearer(site), `/file_serve/attachment/${attachmentId}`)).body;
}

describe('UploadSessions', () => {
  test('refuses what cannot be uploaded, changing nothing', async () => {
    const target = [version('sh010_anim_v001')];
    const expect = (code: string) => (error: unknown) => error instanceof UploadError && error.code === code;
    await assert.rejects(sessions.begin('ctx', 'artist', { name: 'a.mov', size: 0, targets: target }), expect('empty_file'));
    await assert.rejects(sessions.begin('ctx', 'artist', { name: 'a.mov', size: 101 * MiB, targets: target }), expect('file_too_large'));
    await assert.rejects(sessions.begin('ctx', 'artist', { name: '../\u0007', size: 5, targets: target }), expect('invalid_name'));
    await assert.rejects(sessions.begin('ctx', 'artist', { name: 'a.mov', size: 5, targets: [] }), expect('no_targets'));
    assert.equal(site.storage.multipartUploadsInProgress(), 0);
  });

  test('a launch begins at most its cap of uploads, counted atomically: asked at once, the rest are refused 429 and begin nothing', async () => {
    const capped = new UploadSessions({ store, tracker, ttlSeconds: 3600, maxBytes: 100 * MiB, partSize: 5 * MiB, maxUploadsPerLaunch: 3 });
    const target = [version('sh010_anim_v001')];
    const before = site.storage.multipartUploadsInProgress();
    // What the site refuses (a target the user cannot see) was never begun: it takes no place under the cap.
    for (let i = 0; i < 4; i++) {
      await assert.rejects(capped.begin('ctx-capped', 'artist', { name: 'hidden.mov', size: 6 * MiB, targets: [version('bl010_comp_v001')] }), (error: unknown) => !(error instanceof UploadError && error.code === 'too_many_uploads'));
    }
    const results = await Promise.allSettled(Array.from({ length: 7 }, (_, i) => capped.begin('ctx-capped', 'artist', { name: `plate_${i}.mov`, size: 6 * MiB, targets: target })));
    const begun = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const refused = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
    assert.equal(begun.length, 3);
    assert.equal(refused.length, 4);
    for (const reason of refused) assert.ok(reason instanceof UploadError && reason.status === 429 && reason.code === 'too_many_uploads', String(reason));
    assert.equal(site.storage.multipartUploadsInProgress(), before + 3, 'a refused upload began nothing at storage');
    assert.equal((await capped.list('ctx-capped')).length, 3);
    // Another launch has its own count.
    const elsewhere = await capped.begin('ctx-other', 'artist', { name: 'plate_x.mov', size: 6 * MiB, targets: target });
    for (const record of [...begun, elsewhere]) await capped.abort(record);
    assert.equal(site.storage.multipartUploadsInProgress(), before);
  });

  test('a begun upload on a hidden target aborts the ones already begun', async () => {
    await assert.rejects(sessions.begin('ctx', 'artist', { name: 'x.mov', size: 11 * MiB, targets: [version('sh010_anim_v002'), version('bl010_comp_v001')] }));
    assert.equal(site.storage.multipartUploadsInProgress(), 0);
  });

  test('parts in parallel and out of order, from two instances sharing the store, land byte-identical', async () => {
    const bytes = testBytes(17 * MiB + 3, 41);
    const record = await sessions.begin('ctx-a', 'artist', { name: 'C:\\fakepath\\sh010_anim_v003.mov', size: bytes.length, targets: [version('sh010_anim_v003')] });
    assert.equal(record.name, 'sh010_anim_v003.mov');
    assert.equal(record.partCount, 4);
    const other = new UploadSessions({ store, tracker, ttlSeconds: 3600, maxBytes: null, partSize: 5 * MiB });
    await Promise.all([send(sessions, record, bytes, 3), send(other, record, bytes, 1)]);
    assert.deepEqual(await other.partsDone(record), [1, 3]);
    assert.equal((await sessions.get('ctx-b', record.id)), null, 'another launch cannot see it');
    const again = (await other.get('ctx-a', record.id))!;
    await Promise.all([send(other, again, bytes, 4), send(sessions, again, bytes, 2)]);
    await assert.rejects(sessions.complete({ ...again, partCount: 5 }), (error: unknown) => error instanceof UploadError && error.code === 'parts_missing');
    const done = await sessions.complete(again);
    assert.equal(done.status, 'done');
    const [result] = done.results!;
    assert.ok(result?.ok);
    assert.equal(sha256(await stored(result.file.attachmentId)), sha256(bytes));
    assert.deepEqual(await sessions.complete(done), done, 'completing twice changes nothing');
  });

  test('the links of the next parts are asked for while a part streams, each used once', async () => {
    // The real tracker, watched: which part links it is asked for, and when.
    const asked: number[] = [];
    class WatchedTracker extends ShotgridTracker {
      override partUrl(login: string, upload: TrackerUpload, n: number): Promise<PartLocation> {
        asked.push(n);
        return super.partUrl(login, upload, n);
      }
    }
    const watched = new WatchedTracker({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: site.scriptKey });
    try {
      const ahead = new UploadSessions({ store, tracker: watched, ttlSeconds: 3600, maxBytes: null, partSize: 5 * MiB, partLinksAhead: 2 });
      const bytes = testBytes(21 * MiB, 43);
      const record = await ahead.begin('ctx-ahead', 'artist', { name: 'sh020_anim_v001.mov', size: bytes.length, targets: [version('sh020_anim_v001')] });
      assert.equal(record.partCount, 5);
      await send(ahead, record, bytes, 1);
      assert.deepEqual(asked.sort(), [1, 2, 3], 'part 1 sent: the links of parts 2 and 3 asked for');
      await send(ahead, record, bytes, 2);
      assert.deepEqual(asked.sort(), [1, 2, 3, 4], 'no link asked twice');
      // A part sent again after storage refused it gets a fresh link, not the one already used.
      site.faults.update({ storagePutFailCount: 1 });
      await assert.rejects(send(ahead, record, bytes, 3), (error: unknown) => error instanceof UploadError && error.code === 'part_failed');
      await send(ahead, record, bytes, 3);
      assert.deepEqual(asked.sort(), [1, 2, 3, 3, 4, 5], 'part 3 asked again; none past the last part');
      await send(ahead, record, bytes, 5);
      await send(ahead, record, bytes, 4);
      assert.equal(asked.length, 6);
      const done = await ahead.complete(record);
      assert.ok(done.results![0]?.ok);
      assert.equal(sha256(await stored(done.results![0].ok ? done.results![0].file.attachmentId : null)), sha256(bytes));
    } finally {
      await watched.close();
    }
  });

  test('a part that fails for one of three targets is sent again only to that one', async () => {
    const bytes = testBytes(6 * MiB, 42);
    const targets = ['sh020_anim_v001', 'sh020_anim_v002', 'sh020_anim_v003'].map(version);
    const record = await sessions.begin('ctx-c', 'coord', { name: 'fan.mov', size: bytes.length, targets });
    site.faults.update({ storagePutFailCount: 1, storagePutModes: ['503'] });
    await assert.rejects(send(sessions, record, bytes, 1), (error: unknown) => error instanceof UploadError && error.code === 'part_failed' && error.status === 503);
    assert.deepEqual(await sessions.partsDone(record), []);
    const resent = await send(sessions, record, bytes, 1);
    assert.equal(resent.sent, 5 * MiB, 'only the target that lacked part 1 got it');
    await send(sessions, record, bytes, 2);
    const done = await sessions.complete(record);
    for (const result of done.results!) {
      assert.ok(result.ok);
      assert.equal(sha256(await stored(result.file.attachmentId)), sha256(bytes));
    }
  });

  test('wrong part sizes and damaged bytes are refused; cancelling aborts at the site', async () => {
    const bytes = testBytes(7 * MiB, 43);
    const record = await sessions.begin('ctx-d', 'artist', { name: 'c.mov', size: bytes.length, targets: [version('sh030_anim_v001')] });
    await assert.rejects(sessions.receivePart(record, 1, Readable.from([bytes.subarray(0, 10)]), 10, undefined), (error: unknown) => error instanceof UploadError && error.code === 'part_size_mismatch');
    await assert.rejects(sessions.receivePart(record, 3, Readable.from([]), 0, undefined), (error: unknown) => error instanceof UploadError && error.code === 'invalid_part');
    const p = part(record, bytes, 1);
    const damaged = Buffer.from(bytes.subarray(0, 5 * MiB));
    damaged[100] = (damaged[100] ?? 0) ^ 0xff;
    await assert.rejects(sessions.receivePart(record, 1, Readable.from([damaged]), p.length, p.md5), (error: unknown) => error instanceof UploadError && error.code === 'part_corrupted');
    await send(sessions, record, bytes, 1);
    assert.equal(site.storage.multipartUploadsInProgress(), 1);
    const aborted = await sessions.abort(record);
    assert.equal(aborted.status, 'aborted');
    assert.equal(site.storage.multipartUploadsInProgress(), 0);
    await assert.rejects(send(sessions, aborted, bytes, 2), (error: unknown) => error instanceof UploadError && error.code === 'upload_finished');
  });

  test('the sweeper gives up the unfinished uploads of launches that are gone, and leaves live ones alone', async () => {
    const bytes = testBytes(11 * MiB, 44);
    const gone = await sessions.begin('ctx-gone', 'artist', { name: 'g.mov', size: bytes.length, targets: [version('sh030_anim_v002')] });
    const live = await sessions.begin('ctx-live', 'artist', { name: 'l.mov', size: bytes.length, targets: [version('sh030_anim_v003')] });
    await send(sessions, gone, bytes, 1);
    await send(sessions, live, bytes, 1);
    assert.equal(site.storage.multipartUploadsInProgress(), 2);
    const swept = await sessions.sweepAbandoned(async (contextId) => contextId === 'ctx-live');
    assert.equal(swept, 1);
    assert.equal(site.storage.multipartUploadsInProgress(), 1, 'only the gone launch\'s upload was aborted');
    assert.equal((await sessions.get('ctx-gone', gone.id))?.status, 'aborted');
    assert.equal(await sessions.sweepAbandoned(async (contextId) => contextId === 'ctx-live'), 0, 'a second sweep finds nothing more');
    assert.equal(await sessions.abortLaunch('ctx-live'), 1, 'a discarded launch gives up its own');
    assert.equal(site.storage.multipartUploadsInProgress(), 0);
  });
});
