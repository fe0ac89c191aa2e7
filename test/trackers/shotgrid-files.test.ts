import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Agent, request, type Dispatcher } from 'undici';
import type { EntityRef, FileValue, ImageValue, StoredValue } from '../../src/sandbox/records.ts';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { ShotgridTracker } from '../../src/trackers/shotgrid/tracker.ts';
import type { FileKinds, FileRef } from '../../src/trackers/tracker.ts';
import { putPart } from '../../src/transfer/storage-put.ts';
import { sha256, testBytes } from '../helpers/sandbox-api.ts';

// Listing and locating the files of a selection on the sandbox site: every kind and link type, permissions
// (sudo), a bounded number of API requests whatever the selection's size, and signed URLs that give the bytes.

/** An undici Agent that notes every request it sends: the API calls the tracker makes, counted at the socket. */
class CountingAgent extends Agent {
  readonly requests: string[] = [];
  override dispatch(options: Agent.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.requests.push(`${options.method} ${String(options.origin)}${options.path}`);
    return super.dispatch(options, handler);
  }
}

/** What beginning an upload takes; ShotGrid reads the name and whether it goes in parts. */
const newUpload = (name: string, multipart: boolean) => ({ name, size: null, contentType: 'application/octet-stream', multipart, partCount: null });

const ALL: FileKinds = { attachments: true, fields: true, thumbnails: true, noteAttachments: true };

let site: SandboxSite;
let agent: CountingAgent;
let tracker: ShotgridTracker;

before(async () => {
  site = await startSandboxSite();
  agent = new CountingAgent();
  tracker = new ShotgridTracker({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: site.scriptKey, dispatcher: agent });
});
after(async () => {
  await tracker.close();
  await agent.close();
  await site.close();
});

/** A seeded record's id as the seam carries it. */
const idOf = (type: 'Shot' | 'Version', code: string): string => String(site.store.all(type).find((r) => r.fields.code === code)!.id);
const summary = (files: FileRef[]) => files.map((f) => `${f.entity.name} ${f.source} ${f.link.type} ${f.name}`);

/** The bytes behind a signed location, fetched as storage sees it: plain undici, no Authorization. */
async function fetchBytes(url: string): Promise<Buffer> {
  const response = await request(url);
  assert.equal(response.statusCode, 200, `GET ${url} answered ${response.statusCode}`);
  return Buffer.from(await response.body.arrayBuffer());
}

async function storedBytes(key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of site.storage.createReadStream(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('listFiles', () => {
  test('a shot: attachments of all three link types, its thumbnail and its notes’ attachments, in a stable order', async () => {
    const sh010 = idOf('Shot', 'sh010');
    const files = await tracker.listFiles('artist', 'Shot', [sh010], ALL);
    assert.deepEqual(summary(files), [
      'sh010 attachment web Reference board',
      'sh010 attachment local sh010_bg_v001.exr',
      'sh010 attachment upload sh010_brief.pdf',
      'sh010 attachment upload sh010_reference.png',
      'sh010 attachment upload sh010_shotlist.csv',
      'sh010 thumbnail upload thumbnail.png',
      'sh010 note-attachment upload sh010_comp_v003_note_1.png',
    ]);
    const byName = new Map(files.map((f) => [f.name, f]));
    assert.deepEqual(byName.get('Reference board')!.link, { type: 'web', url: 'https://example.com/reference/sh010' });
    assert.equal(byName.get('Reference board')!.size, null);
    assert.deepEqual(byName.get('sh010_bg_v001.exr')!.link, {
      type: 'local',
      storageCode: 'primary',
      relativePath: 'demo/shots/sh010/plates/sh010_bg_v001.exr',
      localPath: '/mnt/projects/demo/shots/sh010/plates/sh010_bg_v001.exr',
    });
    const brief = byName.get('sh010_brief.pdf')!;
    const stored = site.store.get('Attachment', Number(brief.attachmentId!))!;
    assert.equal(brief.size, (stored.fields.this_file as FileValue & { size: number }).size);
    assert.equal(brief.contentType, 'application/pdf');
    assert.deepEqual(brief.entity, { type: 'Shot', id: sh010, name: 'sh010' });
    const thumbnail = byName.get('thumbnail.png')!;
    assert.deepEqual([thumbnail.field, thumbnail.size, thumbnail.attachmentId, thumbnail.contentType], ['image', null, null, 'image/png']);
    // The same selection lists the same way again.
    assert.deepEqual(await tracker.listFiles('artist', 'Shot', [sh010], ALL), files);
  });

  test('versions: an uploaded movie and a web-link movie as fields, note attachments, kinds switched off', async () => {
    const v003 = idOf('Version', 'sh010_comp_v003');
    const v001 = idOf('Version', 'sh010_comp_v001');
    const files = await tracker.listFiles('artist', 'Version', [v003, v001, v003], ALL);
    const movie = site.store.get('Version', Number(v003))!.fields.sg_uploaded_movie as Extract<FileValue, { link_type: 'upload' }>;
    assert.deepEqual(summary(files), [
      `sh010_comp_v003 field upload ${movie.name}`,
      'sh010_comp_v003 thumbnail upload thumbnail.png',
      'sh010_comp_v003 note-attachment upload sh010_comp_v003_note_1.png',
      'sh010_comp_v001 field web sh010_comp_v001.mov',
      'sh010_comp_v001 thumbnail upload thumbnail.png',
    ]);
    const [upload, , , web] = files;
    // Current sites state no size for an attachment made since 2025 (live): the zip asks storage instead.
    assert.deepEqual([upload!.field, upload!.attachmentId, upload!.size], ['sg_uploaded_movie', String(movie.attachmentId), null]);
    assert.deepEqual(web!.link, { type: 'web', url: 'https://example.com/review/sh010_comp_v001.mov' });
    assert.equal(web!.size, null);

    const onlyFields = await tracker.listFiles('artist', 'Version', [v003, v001], { attachments: false, fields: true, thumbnails: false, noteAttachments: false });
    assert.deepEqual(onlyFields.map((f) => f.source), ['field', 'field']);
    const onlyNotes = await tracker.listFiles('artist', 'Version', [v003], { attachments: false, fields: false, thumbnails: false, noteAttachments: true });
    assert.deepEqual(summary(onlyNotes), ['sh010_comp_v003 note-attachment upload sh010_comp_v003_note_1.png']);
  });

  test('a note about several selected entities gives its attachment to each of them', async () => {
    const v003 = idOf('Version', 'sh010_comp_v003');
    const sh010 = idOf('Shot', 'sh010');
    // The seeded note links the version and its shot; link it to sh020 as well, then select both shots.
    const note = site.store.all('Note').find((n) => n.fields.subject === 'Notes on sh010_comp_v003')!;
    const links = note.fields.note_links;
    const sh020 = idOf('Shot', 'sh020');
    site.store.update(note, { note_links: [{ type: 'Version', id: Number(v003) }, { type: 'Shot', id: Number(sh010) }, { type: 'Shot', id: Number(sh020) }] });
    try {
      const files = await tracker.listFiles('artist', 'Shot', [sh020, sh010], { attachments: false, fields: false, thumbnails: false, noteAttachments: true });
      assert.deepEqual(summary(files), [
        'sh020 note-attachment upload sh010_comp_v003_note_1.png',
        'sh020 note-attachment upload sh020_comp_v003_note_2.png',
        'sh010 note-attachment upload sh010_comp_v003_note_1.png',
      ]);
    } finally {
      site.store.update(note, { note_links: links ?? [] });
    }
  });

  test('thumbnails: none and the transient placeholder give no file, nor a location', async () => {
    const sh050 = site.store.get('Shot', Number(idOf('Shot', 'sh050')))!;
    const image = sh050.fields.image as StoredValue;
    const kinds = { attachments: false, fields: true, thumbnails: true, noteAttachments: false };
    const [listed] = await tracker.listFiles('artist', 'Shot', [String(sh050.id)], kinds);
    site.store.update(sh050, { image: { ...(image as ImageValue), readyAt: Date.now() + 60_000 } });
    try {
      const files = await tracker.listFiles('artist', 'Shot', [String(sh050.id), idOf('Shot', 'sh060')], kinds);
      assert.deepEqual(files, []);
      // Replaced since it was listed: the placeholder is never handed out as the thumbnail's bytes.
      await assert.rejects(tracker.locateFile('artist', listed!), /being processed/);
    } finally {
      site.store.update(sh050, { image });
    }
  });

  test('as the user: the outsider sees none of Demo’s files, only their own', async () => {
    const demo = [idOf('Shot', 'sh010'), idOf('Shot', 'sh020')];
    assert.deepEqual(await tracker.listFiles('outsider', 'Shot', demo, ALL), []);
    const bl010 = idOf('Version', 'bl010_comp_v001');
    const files = await tracker.listFiles('outsider', 'Version', [idOf('Version', 'sh010_comp_v003'), bl010], ALL);
    assert.deepEqual(summary(files), ['bl010_comp_v001 field upload bl010_comp_v001.mp4', 'bl010_comp_v001 thumbnail upload thumbnail.png']);
    assert.deepEqual(await tracker.listFiles('artist', 'Version', [bl010], ALL), []);
  });

  test('all 40 versions and all shots list in a handful of requests', async () => {
    const versionIds = site.store.all('Version').filter((v) => (v.fields.project as EntityRef).id === 1).map((v) => String(v.id));
    const shotIds = site.store.all('Shot').filter((s) => (s.fields.project as EntityRef).id === 1).map((s) => String(s.id));
    assert.equal(versionIds.length, 40);
    assert.equal(shotIds.length, 6);
    await tracker.listFiles('coord', 'Shot', [shotIds[0]!], { attachments: false, fields: false, thumbnails: false, noteAttachments: false }); // token
    agent.requests.length = 0;
    const versions = await tracker.listFiles('coord', 'Version', versionIds, ALL);
    const versionRequests = agent.requests.splice(0);
    const shots = await tracker.listFiles('coord', 'Shot', shotIds, ALL);
    const shotRequests = agent.requests.splice(0);
    // Read `*`, attachments, movie sizes, notes, note attachments (+ LocalStorage when a local link is found).
    assert.ok(versionRequests.length <= 6, versionRequests.join('\n'));
    assert.ok(shotRequests.length <= 6, shotRequests.join('\n'));
    assert.ok(versionRequests.every((r) => r.startsWith(`POST ${site.url}/api/v1/entity/`)), versionRequests.join('\n'));
    // The latest of each shot's comp and anim, and the 4 look-dev versions; one comp movie is a web link.
    assert.equal(versions.filter((f) => f.field === 'sg_uploaded_movie' && f.link.type === 'upload').length, 16);
    assert.equal(versions.filter((f) => f.field === 'sg_uploaded_movie' && f.link.type === 'web').length, 1);
    assert.equal(shots.filter((f) => f.source === 'thumbnail').length, 5);
    console.log(`40 versions: ${versions.length} files in ${versionRequests.length} requests; 6 shots: ${shots.length} files in ${shotRequests.length} requests`);
  });
});

describe('locateFile', () => {
  test('signed URLs on storage that give the listed bytes, without the token', async () => {
    const files = [
      ...(await tracker.listFiles('artist', 'Shot', [idOf('Shot', 'sh010')], ALL)),
      ...(await tracker.listFiles('artist', 'Version', [idOf('Version', 'sh010_comp_v003')], ALL)),
    ].filter((f) => f.link.type === 'upload');
    assert.deepEqual(new Set(files.map((f) => f.source)), new Set(['attachment', 'field', 'thumbnail', 'note-attachment']));
    agent.requests.length = 0;
    for (const file of files) {
      const { url } = await tracker.locateFile('artist', file);
      assert.equal(new URL(url).origin, site.storageUrl, `${file.name} is served by storage`);
      const bytes = await fetchBytes(url);
      const key =
        file.source === 'thumbnail'
          ? (site.store.get(file.entity.type as 'Shot', Number(file.entity.id))!.fields.image as ImageValue).key
          : (site.store.get('Attachment', Number(file.attachmentId!))!.fields.this_file as Extract<FileValue, { link_type: 'upload' }>).key;
      assert.equal(sha256(bytes), sha256(await storedBytes(key)), file.name);
      if (file.size !== null) assert.equal(bytes.length, file.size, file.name);
    }
    // The tracker only spoke to the site: the Bearer token never went to storage.
    assert.ok(agent.requests.every((r) => r.startsWith(`GET ${site.url}/api/v1/entity/`)), agent.requests.join('\n'));
    assert.equal(agent.requests.length, files.length);
  });

  test('a file uploaded through the tracker comes back identical', async () => {
    const sh040 = idOf('Shot', 'sh040');
    const bytes = testBytes(300_001, 7);
    const upload = await tracker.beginUpload('coord', { type: 'Shot', id: sh040, slot: 'attachment' }, newUpload('layout ünïcode.bin', false));
    const { etag } = await putPart(await tracker.partUrl('coord', upload, 1), { bytes });
    await tracker.completeUpload('coord', upload, [etag], {});
    const [file] = (await tracker.listFiles('coord', 'Shot', [sh040], ALL)).filter((f) => f.name === 'layout ünïcode.bin');
    assert.ok(file);
    assert.equal(file.size, null, 'a new attachment states no size, as on current sites');
    const fetched = await fetchBytes((await tracker.locateFile('coord', file)).url);
    assert.equal(sha256(fetched), sha256(bytes));
  });

  test('web and local links are refused; other users cannot locate what they cannot see', async () => {
    const files = await tracker.listFiles('artist', 'Shot', [idOf('Shot', 'sh010')], ALL);
    for (const file of files.filter((f) => f.link.type !== 'upload')) {
      await assert.rejects(tracker.locateFile('artist', file), /not a file stored at the site/);
    }
    const upload = files.find((f) => f.source === 'attachment' && f.link.type === 'upload')!;
    await assert.rejects(tracker.locateFile('outsider', upload), /not found/i);
    const thumbnail = files.find((f) => f.source === 'thumbnail')!;
    await assert.rejects(tracker.locateFile('outsider', thumbnail), /not found/i);
  });

  test('the client asks only site API paths and refuses redirects to other schemes', async () => {
    const session = tracker.client.as('artist');
    await assert.rejects(session.locate('https://storage.example/x'), /outside the site's API/);
    await assert.rejects(session.locate('/file_serve/attachment/1'), /outside the site's API/);
    await assert.rejects(session.locate('/api/v1/entity/shots/1'), /without a redirect/);
  });
});

describe('at scale', () => {
  test('2,000 shots with 10,000 attachments list in seconds, in requests that grow with pages, not entities', async () => {
    const big = await startSandboxSite();
    const counter = new CountingAgent();
    const bigTracker = new ShotgridTracker({ siteUrl: big.url, scriptName: big.scriptName, scriptKey: big.scriptKey, dispatcher: counter });
    try {
      const demo: EntityRef = { type: 'Project', id: 1 };
      const ids: string[] = [];
      for (let i = 0; i < 2000; i++) {
        const shot = big.store.insert('Shot', { code: `big${String(i).padStart(4, '0')}`, project: demo, image: null, sg_status_list: 'ip' });
        ids.push(String(shot.id));
        for (let n = 0; n < 5; n++) {
          const attachment = big.store.insert('Attachment', { filename: `f${n}.exr`, file_size: 1000 + n, project: demo, attachment_links: [{ type: 'Shot', id: shot.id }] });
          const value: FileValue = { link_type: 'upload', attachmentId: attachment.id, name: `f${n}.exr`, content_type: 'image/x-exr', key: `big/${attachment.id}`, size: 1000 + n };
          big.store.update(attachment, { this_file: value });
        }
      }
      const started = performance.now();
      const files = await bigTracker.listFiles('artist', 'Shot', ids, ALL);
      const seconds = (performance.now() - started) / 1000;
      assert.equal(files.length, 10_000);
      assert.equal(files[0]!.entity.name, 'big0000');
      assert.equal(files.at(-1)!.entity.name, 'big1999');
      const apiCalls = counter.requests.filter((r) => r.includes('/api/v1/entity/'));
      // 4 reads of 500 shots; 10,000 attachments in pages of 500, the pages after the first asked three at once
      // (up to 3 empty ones past the end of each chunk's list); 4 note searches.
      assert.ok(apiCalls.length <= 4 + (20 + 4 * 3) + 4, `${apiCalls.length} requests:\n${apiCalls.join('\n')}`);
      assert.ok(seconds < 5, `${seconds.toFixed(1)} s`);
      console.log(`2,000 shots, 10,000 files: ${apiCalls.length} API requests, ${seconds.toFixed(2)} s`);
    } finally {
      await bigTracker.close();
      await counter.close();
      await big.close();
    }
  });
});

