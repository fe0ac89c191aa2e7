import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { TrackerError } from '../../src/trackers/tracker-error.ts';
import type { EntityId, FileRef, Tracker, UploadTarget } from '../../src/trackers/tracker.ts';
import { putPart } from '../../src/transfer/storage-put.ts';
import type { Dispatcher } from 'undici';
import { countingDispatcher, type CountingDispatcher } from '../helpers/counting-dispatcher.ts';

// What every site adapter must do, through the Tracker interface alone, against its sandbox site: the actions and
// the transfer core rely on exactly this. Each adapter's test file runs this suite with its own site and fixtures
// (as the memory and Redis stores share theirs), so a second adapter is held to the first one's behaviour.

export interface ContractSite {
  tracker: Tracker;
  /** A user who may see and change the fixtures below. */
  login: string;
  /** The user's id at the site (a Version's artist). */
  userId: EntityId;
  /** A Version the user may upload its review media to. */
  version: { type: string; id: EntityId; name: string };
  /** A Shot (or the site's like) the user may attach files to and make Versions for. */
  shot: { type: string; id: EntityId; name: string };
  projectId: EntityId;
  /** An id no record of `version.type` has. */
  missingId: EntityId;
  /** A Version status code the site knows. */
  status: string;
  /**
   * Whether the site takes a new attachment in parts: ShotGrid cannot (no multipart upload without a field),
   * ftrack can (any component). Each site states it; the contract holds the adapter to its site's answer.
   */
  attachmentsInParts: boolean;
  /** Every answer of the site (and its storage) this much later, 0 to stop. */
  setLatency(ms: number): void;
  close(): Promise<void>;
}

const MiB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const md5Base64 = (data: Buffer) => createHash('md5').update(data).digest('base64');

function bytesOf(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return bytes;
}

/** The cap on requests in flight (SITE_MAX_CONCURRENT_REQUESTS) every adapter is made with for the contract. */
export const CONTRACT_REQUEST_CAP = 3;

/**
 * Runs the contract on the site `open` starts, whose tracker it makes with CONTRACT_REQUEST_CAP and the dispatcher
 * `countRequestsTo(site origin)` gives: the contract counts the tracker's requests to the site on its own sockets.
 */
export function trackerContract(name: string, open: (countRequestsTo: (origin: string) => Dispatcher) => Promise<ContractSite>): void {
  describe(`the Tracker contract: ${name}`, () => {
    let site: ContractSite;
    let siteRequests: CountingDispatcher;
    before(async () => {
      site = await open((origin) => (siteRequests = countingDispatcher(origin)).dispatcher);
    });
    after(async () => {
      await site?.close();
      await siteRequests?.dispatcher.close();
    });

    /** Uploads `bytes` to `target` through the interface alone: begin, PUT each part where told, complete. */
    async function upload(target: UploadTarget, fileName: string, bytes: Buffer, partSize: number) {
      const { tracker, login } = site;
      const partCount = Math.max(1, Math.ceil(bytes.length / partSize));
      const multipart = partCount > 1;
      if (multipart) assert.equal(await tracker.multipartAllowed(login, target), true, 'review media goes in parts');
      const begun = await tracker.beginUpload(login, target, { name: fileName, size: bytes.length, contentType: 'application/octet-stream', multipart, partCount, checksum: md5Base64(bytes) });
      const receipts: string[] = [];
      for (let n = 1; n <= partCount; n++) {
        const part = bytes.subarray((n - 1) * partSize, n * partSize);
        const { etag } = await putPart(await tracker.partUrl(login, begun, n), { bytes: part }, { contentType: 'application/octet-stream' });
        receipts.push(etag);
      }
      return { begun, file: await tracker.completeUpload(login, begun, receipts, {}) };
    }

    /** A listed file's bytes, fetched where the site says they are. */
    async function bytesAt(file: FileRef): Promise<Buffer> {
      const located = await site.tracker.locateFile(site.login, file);
      const answer = await request(located.url, { headers: located.headers ?? {}, maxRedirections: 0 } as Parameters<typeof request>[1]);
      assert.equal(answer.statusCode, 200, `${file.name} is served`);
      return Buffer.from(await answer.body.arrayBuffer());
    }

    test('the selection as the user sees it: in order, names and pages on the site; a missing id named hidden', async () => {
      const { tracker, login, version, missingId } = site;
      const { visible, hiddenIds } = await tracker.lookupSelection(login, version.type, [missingId, version.id]);
      assert.deepEqual(visible.map((entity) => [entity.type, entity.id, entity.name]), [[version.type, version.id, version.name]]);
      assert.deepEqual(hiddenIds, [missingId]);
      assert.equal(new URL(visible[0]!.siteUrl).origin, new URL(tracker.siteUrl).origin);
    });

    test('review media in two parts lands byte-identical and is listed among the Version\'s files', async () => {
      const { tracker, login, version } = site;
      const bytes = bytesOf(10 * MiB + 17, 3);
      const { file } = await upload({ type: version.type, id: version.id, slot: 'review-media' }, `${version.name}.mov`, bytes, 5 * MiB + 1);
      assert.equal(new URL(file.siteUrl).origin, new URL(tracker.siteUrl).origin);
      const [now] = (await tracker.lookupSelection(login, version.type, [version.id], { withReviewMedia: true })).visible;
      assert.ok(now?.reviewMedia, 'the Version has review media now');
      const files = await tracker.listFiles(login, version.type, [version.id], { attachments: false, fields: true, thumbnails: false, noteAttachments: false });
      const listed = files.find((candidate) => candidate.link.type === 'upload' && candidate.name === now.reviewMedia!.name);
      assert.ok(listed, `listed: ${files.map((candidate) => candidate.name).join(', ')}`);
      assert.equal(sha256(await bytesAt(listed)), sha256(bytes));
    });

    test('a new attachment in one PUT lands byte-identical and is listed among the entity\'s attachments', async () => {
      const { tracker, login, shot } = site;
      const bytes = bytesOf(300_001, 5);
      const target = { type: shot.type, id: shot.id, slot: 'attachment' as const };
      assert.equal(await tracker.multipartAllowed(login, target), site.attachmentsInParts, 'attachments go in parts where the site takes them so');
      const { file } = await upload(target, 'contract notes ü.bin', bytes, bytes.length);
      const files = await tracker.listFiles(login, shot.type, [shot.id], { attachments: true, fields: false, thumbnails: false, noteAttachments: false });
      const listed = files.find((candidate) => candidate.attachmentId === file.attachmentId);
      assert.ok(listed, 'the new attachment is listed');
      assert.equal(sha256(await bytesAt(listed)), sha256(bytes));
    });

    test('never more requests in flight toward the site than its cap: one user\'s big zip cannot flood the studio\'s site', async () => {
      const { tracker, login } = site;
      const files = await tracker.listFiles(login, site.version.type, [site.version.id], { fields: true, attachments: true, thumbnails: false, noteAttachments: false });
      const file = files.find((candidate) => candidate.link.type === 'upload');
      assert.ok(file, 'the version has a stored file');
      site.setLatency(60);
      siteRequests.reset();
      try {
        // What a zip's preparation does: many files located at once, with the selection read beside them.
        const asked = 5 * CONTRACT_REQUEST_CAP;
        const located = await Promise.all([
          ...Array.from({ length: asked }, () => tracker.locateFile(login, file)),
          ...Array.from({ length: asked }, () => tracker.lookupSelection(login, site.shot.type, [site.shot.id]).then(() => ({ url: '' }))),
        ]);
        assert.equal(located.filter((answer) => answer.url !== '').length, asked);
      } finally {
        site.setLatency(0);
      }
      assert.equal(siteRequests.peak(), CONTRACT_REQUEST_CAP, 'as many in flight as the cap allows, and no more');
    });

    test('a listing of every kind asks the site its independent queries at once', async () => {
      site.setLatency(60);
      siteRequests.reset();
      try {
        await site.tracker.listFiles(site.login, site.version.type, [site.version.id], { fields: true, attachments: true, thumbnails: true, noteAttachments: true });
      } finally {
        site.setLatency(0);
      }
      assert.ok(siteRequests.peak() >= 2, `at most ${siteRequests.peak()} request in flight: one after the other`);
    });

    test('an upload given up leaves nothing to complete', async () => {
      const { tracker, login, version } = site;
      const target = { type: version.type, id: version.id, slot: 'review-media' as const };
      const begun = await tracker.beginUpload(login, target, { name: 'given-up.mov', size: 12 * MiB, contentType: 'video/quicktime', multipart: true, partCount: 2 });
      const { etag } = await putPart(await tracker.partUrl(login, begun, 1), { bytes: bytesOf(6 * MiB, 9) });
      await tracker.abortUpload(login, begun);
      await assert.rejects(tracker.completeUpload(login, begun, [etag, etag], {}));
    });

    test('a target that does not exist is refused as a TrackerError the service can map', async () => {
      const { tracker, login, version, missingId } = site;
      const refused = await tracker.beginUpload(login, { type: version.type, id: missingId, slot: 'review-media' }, { name: 'x.mov', size: 1, contentType: 'video/quicktime', multipart: false, partCount: 1 }).then(
        async (begun) => {
          // A site may only refuse at completion: then that is where.
          const { etag } = await putPart(await tracker.partUrl(login, begun, 1), { bytes: Buffer.from('x') });
          return tracker.completeUpload(login, begun, [etag], {});
        },
      ).then(
        () => null,
        (error: unknown) => error,
      );
      assert.ok(refused instanceof TrackerError, `refused with a TrackerError (got ${String(refused)})`);
      assert.ok(['not_found', 'bad_request', 'permission'].includes(refused.kind), refused.kind);
    });

    test('a Version made as the user is visible, then gone once deleted (twice is no error); playlists take it', async () => {
      const { tracker, login, shot, projectId, userId, status } = site;
      const made = await tracker.createVersion(login, { code: `contract_v${Date.now() % 100_000}`, projectId, entity: { type: shot.type, id: shot.id }, taskId: null, userId, description: 'from the contract test', status });
      assert.equal((await tracker.lookupSelection(login, made.type, [made.id])).visible[0]?.name, made.name);
      const playlist = await tracker.createPlaylist(login, { name: `contract ${made.name}`, projectId, versionIds: [made.id] });
      assert.ok((await tracker.listPlaylists(login, projectId)).some((listed) => listed.id === playlist.id), 'the new playlist is listed');
      assert.equal((await tracker.addToPlaylist(login, playlist.id, [made.id])).id, playlist.id);
      await tracker.deleteEntity(login, made.type, made.id);
      assert.deepEqual((await tracker.lookupSelection(login, made.type, [made.id])).hiddenIds, [made.id]);
      await tracker.deleteEntity(login, made.type, made.id);
    });
  });
}
