import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { ShotgridTracker, thumbnailState } from '../../src/trackers/shotgrid/tracker.ts';
import { putPart } from '../../src/transfer/storage-put.ts';
import { bearer, download, sha256, testBytes } from '../helpers/sandbox-api.ts';

// The Tracker interface on the sandbox site: selection lookup as the user, and uploads with parts sent in
// parallel and out of order.

let site: SandboxSite;
let tracker: ShotgridTracker;
/** What beginning an upload takes; ShotGrid reads the name and whether it goes in parts. */
const newUpload = (name: string, multipart: boolean) => ({ name, size: null, contentType: 'application/octet-stream', multipart, partCount: null });

const MiB = 1024 * 1024;

before(async () => {
  site = await startSandboxSite();
  tracker = new ShotgridTracker({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: site.scriptKey });
});
after(async () => {
  await tracker.close();
  await site.close();
});

/** A seeded Version's id as the seam carries it. */
const versionId = (code: string) => String(site.store.all('Version').find((v) => v.fields.code === code)!.id);

test('lookupSelection keeps the order, names hidden ids, and reads thumbnails', async () => {
  const ids = [versionId('sh020_comp_v002'), versionId('bl010_comp_v001'), versionId('sh010_comp_v003'), '99999'];
  const selection = await tracker.lookupSelection('artist', 'Version', ids);
  assert.deepEqual(selection.visible.map((e) => e.name), ['sh020_comp_v002', 'sh010_comp_v003']);
  assert.deepEqual(selection.hiddenIds, [ids[1], '99999']);
  const [first] = selection.visible;
  assert.equal(first!.project?.name, 'Demo');
  assert.equal(first!.siteUrl, `${site.url}/detail/Version/${ids[0]}`);
  assert.equal(first!.thumbnail.state, 'ready');
  const tasks = await tracker.lookupSelection('artist', 'Task', [String(site.store.all('Task')[0]!.id)]);
  assert.equal(tasks.visible[0]!.name, 'comp');
});

test('a Task comes with the entity it belongs to; other types have no parent', async () => {
  const task = site.store.all('Task').find((record) => record.fields.content === 'lookdev')!;
  const [looked] = (await tracker.lookupSelection('artist', 'Task', [String(task.id)])).visible;
  const asset = site.store.get('Asset', (task.fields.entity as { id: number }).id)!;
  assert.deepEqual(looked!.parent, { type: 'Asset', id: String(asset.id), name: asset.fields.code });
  const [shot] = (await tracker.lookupSelection('artist', 'Shot', [String(site.store.all('Shot')[0]!.id)])).visible;
  assert.equal('parent' in shot!, false);
});

test('thumbnail states: none, transient placeholder, signed URL', () => {
  assert.deepEqual(thumbnailState(null), { state: 'none' });
  assert.deepEqual(thumbnailState('https://site.example/images/status/transient/thumbnail_pending.png'), { state: 'pending' });
  assert.deepEqual(thumbnailState('https://s3.example/x.png?sig=1'), { state: 'ready', url: 'https://s3.example/x.png?sig=1' });
});

test('a multipart upload with parts PUT in parallel and out of order completes and reads back identical', async () => {
  const bytes = testBytes(17 * MiB + 5, 31);
  const target = { type: 'Version', id: versionId('sh050_anim_v002'), slot: 'review-media' as const };
  const upload = await tracker.beginUpload('coord', target, newUpload('sh050_anim_v002.mov', true));
  const partSize = 5 * MiB;
  const count = Math.ceil(bytes.length / partSize);
  const order = [4, 2, 1, 3];
  const etags: string[] = [];
  await Promise.all(
    order.map(async (n) => {
      const url = await tracker.partUrl('coord', upload, n);
      const { etag } = await putPart(url, { bytes: bytes.subarray((n - 1) * partSize, n * partSize) });
      etags[n - 1] = etag;
    }),
  );
  assert.equal(count, 4);
  const file = await tracker.completeUpload('coord', JSON.parse(JSON.stringify(upload)), etags, { displayName: 'anim v002' });
  assert.equal(file.name, 'anim v002');
  assert.ok(file.attachmentId);
  const back = await download(site, await bearer(site), `/file_serve/attachment/${file.attachmentId}`);
  assert.equal(sha256(back.body), sha256(bytes));
});

test('a record-level upload is read back as the new attachment; abort leaves nothing', async () => {
  const shot = site.store.all('Shot').find((s) => s.fields.code === 'sh040')!;
  const target = { type: 'Shot', id: String(shot.id), slot: 'attachment' as const };
  const bytes = Buffer.from('layout notes');
  const upload = await tracker.beginUpload('artist', target, newUpload('layout.txt', false));
  const { etag } = await putPart(await tracker.partUrl('artist', upload, 1), { bytes });
  const file = await tracker.completeUpload('artist', upload, [etag], {});
  assert.equal(file.name, 'layout.txt');
  const attachment = site.store.get('Attachment', Number(file.attachmentId))!;
  assert.deepEqual(attachment.fields.attachment_links, [{ type: 'Shot', id: shot.id }]);

  const aborted = await tracker.beginUpload('artist', { type: 'Version', id: versionId('sh040_comp_v003'), slot: 'review-media' as const }, newUpload('x.mov', true));
  await putPart(await tracker.partUrl('artist', aborted, 1), { bytes: testBytes(1000) });
  await tracker.abortUpload('artist', aborted);
  assert.equal(site.storage.multipartUploadsInProgress(), 0);
});

test('the site takes attachments and thumbnails in one piece only; file fields in parts', async () => {
  assert.equal(await tracker.multipartAllowed('artist', { type: 'Shot', id: '1', slot: 'attachment' as const }), false);
  assert.equal(await tracker.multipartAllowed('artist', { type: 'Shot', id: '1', slot: 'thumbnail' as const }), false);
  assert.equal(await tracker.multipartAllowed('artist', { type: 'Version', id: versionId('sh010_comp_v003'), slot: 'review-media' as const }), true);
});

test('a user\'s token is minted again, never refreshed: writes stay the user\'s past the token\'s lifetime', async () => {
  const short = await startSandboxSite({ tokenTtlSeconds: 31 });
  const client = new ShotgridTracker({ siteUrl: short.url, scriptName: short.scriptName, scriptKey: short.scriptKey });
  try {
    const shot = short.store.all('Shot').find((s) => s.fields.code === 'sh040')!;
    for (let round = 0; round < 2; round++) {
      if (round === 1) await new Promise((resolve) => setTimeout(resolve, 1_500)); // past the 30 s margin: a new token
      const upload = await client.beginUpload('artist', { type: 'Shot', id: String(shot.id), slot: 'attachment' as const }, newUpload(`round-${round}.txt`, false));
      const { etag } = await putPart(await client.partUrl('artist', upload, 1), { bytes: Buffer.from(`round ${round}`) });
      const file = await client.completeUpload('artist', upload, [etag], {});
      const creator = short.store.get('Attachment', Number(file.attachmentId))!.fields.created_by as { type: string; id: number };
      const artist = short.store.all('HumanUser').find((user) => user.fields.login === 'artist')!;
      assert.deepEqual(creator, { type: 'HumanUser', id: artist.id }, `round ${round}: written as the artist`);
    }
  } finally {
    await client.close();
    await short.close();
  }
});

test('the outsider cannot begin an upload on a Demo version', async () => {
  await assert.rejects(tracker.beginUpload('outsider', { type: 'Version', id: versionId('sh010_comp_v001'), slot: 'review-media' as const }, newUpload('x.mov', false)), /not found/);
});
