import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { ContextStore, type ActionContext, type NewActionContext } from '../../src/ami/context-store.ts';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { MemoryKeyValueStore } from '../../src/store/memory-store.ts';
import { ShotgridTracker } from '../../src/trackers/shotgrid/tracker.ts';
import { MiB } from '../../src/transfer/part-plan.ts';
import { UploadSessions } from '../../src/transfer/upload-session.ts';
import { md5, testBytes } from '../helpers/sandbox-api.ts';

// Issue 13.4: one user flooding the in-memory store must not evict other users' launches and uploads. What gives
// way is the least recently used entry of the owner holding the most bytes. First the store alone, then its real
// writers (launches, uploads through the sandbox), which must name the user each entry is kept for.

const kB = 'x'.repeat(500); // 1,000 bytes as counted

describe('MemoryKeyValueStore: eviction is fair between owners', () => {
  test("one owner's flood evicts that owner's oldest entries, never another owner's", async () => {
    const store = new MemoryKeyValueStore({ maxBytes: 50_000 });
    for (let index = 0; index < 5; index += 1) await store.set(`b${index}`, kB, 60, { owner: 'bob' });
    for (let index = 0; index < 1_000; index += 1) await store.set(`a${index}`, kB, 60, { owner: 'alice' });
    for (let index = 0; index < 5; index += 1) assert.equal(await store.get(`b${index}`), kB, `bob's entry b${index} survived the flood`);
    assert.equal(await store.get('a0'), null, "alice's oldest went");
    assert.equal(await store.get('a999'), kB, "alice's newest is kept");
    assert.ok(store.bytes <= 50_000, `${store.bytes} bytes held`);
    assert.equal(store.bytesOwnedBy('alice') + store.bytesOwnedBy('bob'), store.bytes, 'every byte is counted to its owner');
    await store.close();
  });

  test('the same holds for the entry bound, and for a flood of entries without an owner', async () => {
    const store = new MemoryKeyValueStore({ maxEntries: 100 });
    await store.set('ami-context:bob', 'launch', 60, { owner: 'bob' });
    await store.hashSet('upload:bob:etags', '0:1', 'etag', 60, { owner: 'bob' });
    for (let index = 0; index < 1_000; index += 1) await store.set(`shared${index}`, 'v', 60);
    assert.equal(store.size, 100);
    assert.equal(await store.get('ami-context:bob'), 'launch');
    assert.deepEqual(await store.hashGetAll('upload:bob:etags'), { '0:1': 'etag' });
    assert.equal(await store.get('shared0'), null, 'shared entries give way to each other, least recently used first');
    assert.equal(await store.get('shared999'), 'v');
    await store.close();
  });

  test('the heaviest owner gives way first, least recently used first within it; then the next heaviest', async () => {
    const store = new MemoryKeyValueStore({ maxBytes: 20_000 });
    for (let index = 0; index < 4; index += 1) await store.set(`carol${index}`, kB.repeat(2), 60, { owner: 'carol' }); // 8,000 + keys
    for (let index = 0; index < 10; index += 1) await store.set(`alice${index}`, kB, 60, { owner: 'alice' }); // 10,000 + keys
    assert.equal(await store.get('alice0'), kB, 'reading alice0 makes alice1 her least recently used');
    await store.set('dave', kB.repeat(4), 60, { owner: 'dave' }); // 4,000 + key: about 2,300 bytes must go
    assert.equal(await store.get('alice1'), null);
    assert.equal(await store.get('alice2'), null);
    assert.equal(await store.get('alice3'), null);
    assert.equal(await store.get('alice0'), kB, 'kept: it was used recently');
    for (let index = 0; index < 4; index += 1) assert.equal(await store.get(`carol${index}`), kB.repeat(2), `carol${index} kept`);
    // Now carol is the heaviest (8,000 bytes and keys against alice's 7,000 and keys): she gives way next.
    await store.set('erin', kB.repeat(2), 60, { owner: 'erin' }); // 2,000 + key: about 1,150 bytes must go
    assert.equal(await store.get('carol0'), null);
    assert.equal(await store.get('alice4'), kB);
    assert.ok(store.bytes <= 20_000, `${store.bytes} bytes held`);
    await store.close();
  });

  test('bytes stay counted to their owner through hash fields, counters, overwrites, deletes and expiry', async () => {
    let now = 1_800_000_000_000;
    const store = new MemoryKeyValueStore({ now: () => now });
    await store.hashSet('h', 'field', 'abc', 60, { owner: 'alice' });
    await store.hashSet('h', 'other', 'de', 60, { owner: 'alice' });
    await store.hashDelete('h', 'other');
    assert.equal(store.bytesOwnedBy('alice'), 2 * ('h'.length + 'field'.length + 'abc'.length));
    for (let count = 0; count < 10; count += 1) await store.increment('rate', 60, { owner: 'alice' });
    assert.equal(store.bytesOwnedBy('alice'), 2 * ('h'.length + 'field'.length + 'abc'.length + 'rate'.length + '10'.length), 'a counter grows by its digits');
    await store.set('k', 'value', 60, { owner: 'alice' });
    await store.set('k', 'value', 60, { owner: 'bob' });
    assert.equal(store.bytesOwnedBy('bob'), 2 * ('k'.length + 'value'.length), 'an overwrite moves the entry to its new owner');
    await store.delete('h');
    await store.set('short', 'v', 5, { owner: 'alice' });
    now += 5_000;
    store.sweepExpired();
    assert.equal(store.bytesOwnedBy('alice'), 2 * ('rate'.length + '10'.length));
    await store.set('ami-replay:signature', '1', 60, { owner: 'alice' });
    assert.equal(store.bytes, store.bytesOwnedBy('alice') + store.bytesOwnedBy('bob') + 2 * ('ami-replay:signature'.length + 1), 'a protected key is in no pool');
    await store.close();
  });
});

// ---- the real writers ----

const launchBy = (user: { id: string; login: string }): NewActionContext => ({
  action: 'upload-files',
  siteUrl: 'https://studio.shotgrid.autodesk.com',
  user,
  signed: true,
  entityType: 'Version',
  selectedIds: ['1'],
  project: null,
  title: null,
});

describe('launches and uploads are kept for their user', () => {
  let site: SandboxSite;
  let tracker: ShotgridTracker;
  before(async () => {
    site = await startSandboxSite();
    tracker = new ShotgridTracker({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: site.scriptKey });
  });
  after(async () => {
    await tracker.close();
    await site.close();
  });

  // The sandbox's people: 'artist' launches once and uploads; 'coord' launches 2,000 times (a script, say).
  const artist = { id: '1', login: 'artist' };
  const coord = { id: '2', login: 'coord' };

  test("a user who launches again and again pushes out their own oldest launches, never another user's launch and upload", async () => {
    // Room for about 200 launches: a flood of 2,000 must evict, and it must be alice's that go.
    const store = new MemoryKeyValueStore({ maxEntries: 200 });
    const contexts = new ContextStore(store, 3600);
    const uploads = new UploadSessions({ store, tracker, ttlSeconds: 3600, maxBytes: null, partSize: 5 * MiB });
    const version = site.store.all('Version').find((record) => record.fields.code === 'sh010_anim_v001')!;
    const artistLaunch = await contexts.create(launchBy(artist));
    const bytes = testBytes(6 * MiB, 7);
    const artistUpload = await uploads.begin(artistLaunch.id, 'artist', { name: 'artist.mov', size: bytes.length, targets: [{ type: 'Version', id: String(version.id), slot: 'review-media' as const }] });
    const first = bytes.subarray(0, artistUpload.partSize);
    await uploads.receivePart(artistUpload, 1, Readable.from([first]), first.length, Buffer.from(md5(first), 'hex').toString('base64'));
    // Everything the launch and its upload keep counts to artist, but for the service-wide list of open uploads.
    assert.equal(store.bytesOwnedBy(), 2 * ('open-uploads'.length + artistUpload.id.length + artistLaunch.id.length));
    assert.equal(store.bytesOwnedBy('artist'), store.bytes - store.bytesOwnedBy());

    const flood: ActionContext[] = [];
    for (let index = 0; index < 2_000; index += 1) flood.push(await contexts.create(launchBy(coord)));

    assert.equal(store.size, 200);
    assert.deepEqual(await contexts.get(artistLaunch.id), artistLaunch, "artist's launch is still there: the page does not answer 410");
    const kept = await uploads.get(artistLaunch.id, artistUpload.id);
    assert.equal(kept?.status, 'uploading', "artist's upload is still there");
    assert.deepEqual(await uploads.partsDone(kept!), [1], 'with the part already sent');
    assert.equal(await contexts.get(flood[0]!.id), null, "coord's oldest launch went");
    assert.ok(await contexts.get(flood.at(-1)!.id), "coord's newest launch is kept");
    await uploads.abort(kept!);
    await store.close();
  });
});
