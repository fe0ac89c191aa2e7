import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { createLogger } from '../../src/log.ts';
import { startFtrackSandbox, type FtrackSandbox } from '../../src/sandbox/ftrack/site.ts';
import { FtrackTracker } from '../../src/trackers/ftrack/tracker.ts';
import { TrackerError } from '../../src/trackers/tracker-error.ts';
import type { FileRef } from '../../src/trackers/tracker.ts';
import { putPart, StoragePutError } from '../../src/transfer/storage-put.ts';
import { md5Base64, named, sha256, testBytes, versionId } from '../sandbox/ftrack/helpers.ts';

// What the contract does not say and ftrack makes matter: ids are UUIDs, a one-piece upload is signed with its
// checksum (and storage refuses other bytes), the site's key stays inside the adapter (never in a URL it returns,
// an error or a log line), thumbnails are shown through storage's own short-lived URLs, and a site that cannot be
// reached or refuses the key is an error to catch, not a process that exits.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('the ftrack adapter', () => {
  let site: FtrackSandbox;
  let tracker: FtrackTracker;
  const logLines: string[] = [];
  const fast = { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 };

  before(async () => {
    site = await startFtrackSandbox();
    const destination = new Writable({
      write(chunk, _encoding, done) {
        logLines.push(String(chunk));
        done();
      },
    });
    tracker = new FtrackTracker({ serverUrl: site.url, apiUser: site.apiUser, apiKey: site.apiKey, retry: fast, log: createLogger({ level: 'debug', destination }) });
  });
  after(async () => {
    await tracker?.close();
    await site?.close();
    for (const line of logLines) assert.ok(!line.includes(site.apiKey), 'no log line carries the key');
  });

  async function bytesAt(file: FileRef): Promise<Buffer> {
    const { url } = await tracker.locateFile('coord', file);
    assert.ok(!url.includes(site.apiKey) && !/apiKey=/i.test(url), 'the URL handed out carries no key');
    assert.equal(new URL(url).origin, site.storageUrl, 'the URL is storage\'s own');
    const answer = await request(url);
    assert.equal(answer.statusCode, 200);
    return Buffer.from(await answer.body.arrayBuffer());
  }

  test('ids are UUID strings; an id that cannot be one is hidden; names, projects and a task\'s parent as ftrack shows them', async () => {
    const comp = named(site, 'Task', 'compositing');
    const version = versionId(site, 'sh010_comp', 2);
    const versions = await tracker.lookupSelection('coord', 'AssetVersion', ['42', version]);
    assert.deepEqual(versions.hiddenIds, ['42']);
    const [seen] = versions.visible;
    assert.match(seen!.id, UUID);
    assert.equal(seen!.name, 'sh010_comp v2');
    assert.equal(seen!.project?.id, named(site, 'Project', 'demo'));
    const tasks = await tracker.lookupSelection('coord', 'task', [comp]);
    assert.equal(tasks.visible[0]?.type, 'Task', 'the action event\'s `task` is read as the typed context it is');
    assert.equal(tasks.visible[0]?.parent?.type, 'Shot');
    assert.match(tasks.visible[0]!.parent!.id, UUID);
    // outsider works on backlot only: demo's records do not exist for them.
    assert.deepEqual((await tracker.lookupSelection('outsider', 'AssetVersion', [version])).hiddenIds, [version]);
  });

  test('two versions of one asset in one reply are both named by it: ftrack writes the asset in full once, then as a reference', async () => {
    const ids = [versionId(site, 'sh010_comp', 1), versionId(site, 'sh010_comp', 2)];
    const { visible } = await tracker.lookupSelection('coord', 'AssetVersion', ids);
    assert.deepEqual(visible.map((version) => version.name), ['sh010_comp v1', 'sh010_comp v2']);
    assert.deepEqual(visible.map((version) => version.project?.name), ['demo', 'demo']);
    const files = await tracker.listFiles('coord', 'AssetVersion', ids, { attachments: false, fields: true, thumbnails: false, noteAttachments: false });
    assert.deepEqual([...new Set(files.map((file) => file.entity.name))], ['sh010_comp v1', 'sh010_comp v2'], 'the zip\'s folders too');
  });

  test('types as ftrack\'s users read them, the Actions menu\'s words for a mixed selection included', () => {
    assert.deepEqual(['AssetVersion', 'Shot', 'task', 'assetversion', 'show'].map((type) => tracker.typeLabel(type)), ['Version', 'Shot', 'Object', 'Version', 'Project']);
  });

  test('a thumbnail is shown through storage\'s short-lived URL, no key in it; an entity without one has none', async () => {
    const withThumbnail = versionId(site, 'sh010_comp', 2);
    const without = versionId(site, 'sh030_comp', 1);
    const { visible } = await tracker.lookupSelection('coord', 'AssetVersion', [withThumbnail, without]);
    const shown = visible[0]!.thumbnail;
    assert.equal(shown.state, 'ready');
    assert.ok(shown.state === 'ready' && !shown.url.includes(site.apiKey) && new URL(shown.url).origin === site.storageUrl);
    assert.deepEqual(visible[1]!.thumbnail, { state: 'none' });
    const page = Buffer.from(await (await request((shown as { url: string }).url)).body.arrayBuffer());
    const [listed] = (await tracker.listFiles('coord', 'AssetVersion', [withThumbnail], { attachments: false, fields: false, thumbnails: true, noteAttachments: false }));
    assert.equal(listed?.source, 'thumbnail');
    assert.equal(sha256(await bytesAt(listed!)), sha256(page), 'the thumbnail shown is the one listed');
  });

  test('a new thumbnail on a Shot becomes its thumbnail_id, shown and listed byte-identical', async () => {
    const shot = named(site, 'Shot', 'sh040');
    const bytes = testBytes(40_000, 11);
    const target = { type: 'Shot', id: shot, slot: 'thumbnail' as const };
    assert.equal(await tracker.multipartAllowed('coord', target), false);
    const begun = await tracker.beginUpload('coord', target, { name: 'sh040.png', size: bytes.length, contentType: 'image/png', multipart: false, partCount: 1, checksum: md5Base64(bytes) });
    const part = await tracker.partUrl('coord', begun, 1);
    const { etag } = await putPart(part, { bytes }, { contentType: part.headers?.['content-type'] ?? 'image/png' });
    const made = await tracker.completeUpload('coord', begun, [etag], {});
    assert.equal(made.attachmentId, null);
    const [listed] = await tracker.listFiles('coord', 'Shot', [shot], { attachments: false, fields: false, thumbnails: true, noteAttachments: false });
    assert.equal(sha256(await bytesAt(listed!)), sha256(bytes));
    assert.equal((await tracker.lookupSelection('coord', 'Shot', [shot])).visible[0]?.thumbnail.state, 'ready');
  });

  test('a one-piece upload begun without its checksum gets its link with the part\'s MD5 (the page hashes as it sends), never without', async () => {
    const shot = named(site, 'Shot', 'sh020');
    const bytes = testBytes(4000, 9);
    const begun = await tracker.beginUpload('coord', { type: 'Shot', id: shot, slot: 'attachment' }, { name: 'a.txt', size: bytes.length, contentType: 'text/plain', multipart: false, partCount: 1 });
    const refused = await tracker.partUrl('coord', begun, 1).then(() => null, (error: unknown) => error);
    assert.ok(refused instanceof TrackerError && refused.kind === 'bad_request', String(refused));
    assert.match(refused.message, /checksum|Content-MD5/);
    const part = await tracker.partUrl('coord', begun, 1, { md5: md5Base64(bytes) });
    assert.equal(part.headers?.['content-md5'], md5Base64(bytes), 'the part\'s MD5 is signed into the link');
    const { etag } = await putPart(part, { bytes }, { contentType: 'text/plain' });
    const made = await tracker.completeUpload('coord', begun, [etag], {});
    const listed = (await tracker.listFiles('coord', 'Shot', [shot], { attachments: true, fields: false, thumbnails: false, noteAttachments: false })).find((file) => file.attachmentId === made.attachmentId);
    assert.equal(sha256(await bytesAt(listed!)), sha256(bytes));
  });

  test('bytes that are not the checksummed ones are refused by storage (BadDigest) and completing says so as a TrackerError', async () => {
    const shot = named(site, 'Shot', 'sh020');
    const meant = testBytes(5000, 1);
    const sent = testBytes(5000, 2);
    const begun = await tracker.beginUpload('coord', { type: 'Shot', id: shot, slot: 'attachment' }, { name: 'notes.txt', size: meant.length, contentType: 'text/plain', multipart: false, partCount: 1, checksum: md5Base64(meant) });
    const part = await tracker.partUrl('coord', begun, 1);
    assert.deepEqual(Object.keys(part.headers ?? {}).sort(), ['content-disposition', 'content-md5', 'content-type'], 'exactly the listed headers, Content-Length aside');
    const put = await putPart(part, { bytes: sent }, { contentType: part.headers!['content-type']! }).then(() => null, (error: unknown) => error);
    assert.ok(put instanceof StoragePutError && put.code === 'BadDigest', String(put));
    const completed = await tracker.completeUpload('coord', begun, ['"nothing"'], {}).then(() => null, (error: unknown) => error);
    assert.ok(completed instanceof TrackerError && completed.kind === 'bad_request', String(completed));
    assert.match(completed.message, /BadDigest/);
    // The right bytes can still go, and then it completes.
    const again = await tracker.partUrl('coord', begun, 1);
    const { etag } = await putPart(again, { bytes: meant }, { contentType: again.headers!['content-type']! });
    const made = await tracker.completeUpload('coord', begun, [etag], { displayName: 'retried notes' });
    const listed = (await tracker.listFiles('coord', 'Shot', [shot], { attachments: true, fields: false, thumbnails: false, noteAttachments: false })).find((file) => file.attachmentId === made.attachmentId);
    assert.equal(listed?.source, 'attachment');
    assert.equal(sha256(await bytesAt(listed!)), sha256(meant));
  });

  test('the key is in no error: a missing component, a wrong key, a server that is not there', async () => {
    const missing: FileRef = {
      entity: { type: 'Shot', id: named(site, 'Shot', 'sh010'), name: 'sh010' },
      source: 'attachment',
      field: null,
      attachmentId: '00000000-0000-4000-8000-000000000001',
      name: 'gone.bin',
      size: 1,
      contentType: null,
      link: { type: 'upload' },
    };
    const notFound = await tracker.locateFile('coord', missing).then(() => null, (error: unknown) => error);
    assert.ok(notFound instanceof TrackerError && notFound.kind === 'not_found', String(notFound));

    const wrongKey = new FtrackTracker({ serverUrl: site.url, apiUser: site.apiUser, apiKey: 'not-the-key-0123456789', retry: fast });
    const refused = await wrongKey.lookupSelection('coord', 'Shot', [missing.entity.id]).then(() => null, (error: unknown) => error);
    const refusedDownload = await wrongKey.locateFile('coord', { ...missing, attachmentId: named(site, 'Shot', 'sh010') }).then(() => null, (error: unknown) => error);
    await wrongKey.close();
    assert.ok(refused instanceof TrackerError && refused.kind === 'auth', String(refused));
    assert.ok(refusedDownload instanceof TrackerError && refusedDownload.kind === 'auth', String(refusedDownload));

    const port = await closedPort();
    const away = new FtrackTracker({ serverUrl: `http://127.0.0.1:${port}`, apiUser: site.apiUser, apiKey: site.apiKey, retry: fast });
    const unreachable = await away.locateFile('coord', missing).then(() => null, (error: unknown) => error);
    await away.close();
    assert.ok(unreachable instanceof TrackerError && unreachable.kind === 'network', String(unreachable));

    for (const error of [notFound, refused, refusedDownload, unreachable]) {
      assert.ok(!inspect(error, { depth: 8 }).includes(site.apiKey), `no key in ${String(error)}`);
      assert.ok(!inspect(error, { depth: 8 }).includes('not-the-key-0123456789'));
    }
  });

  test('a site that cannot be reached or refuses the key fails its calls; no rejection goes unhandled (the process lives on)', async () => {
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record);
    try {
      const port = await closedPort();
      const away = new FtrackTracker({ serverUrl: `http://127.0.0.1:${port}`, apiUser: site.apiUser, apiKey: site.apiKey, retry: fast });
      const wrongKey = new FtrackTracker({ serverUrl: site.url, apiUser: site.apiUser, apiKey: 'wrong', retry: fast });
      const failures = await Promise.all([away.checkReachable(), wrongKey.checkReachable()].map((call) => call.then(() => null, (error: unknown) => error)));
      assert.deepEqual(failures.map((error) => (error instanceof TrackerError ? error.kind : String(error))), ['network', 'auth']);
      await Promise.all([away.close(), wrongKey.close()]);
      // Rejections nobody handles are reported after the microtasks of the turn that made them: one more turn.
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(unhandled, []);
      await tracker.checkReachable();
    } finally {
      process.off('unhandledRejection', record);
    }
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
