import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { thumbnailPng } from '../../src/sandbox/media.ts';
import { call, sha256, testBytes } from '../helpers/sandbox-api.ts';
import { launch, startServiceWithSandbox, type Launched, type ServiceWithSandbox } from '../helpers/service.ts';
import { pageApi, contentMd5, uploadThrough } from '../helpers/upload-client.ts';

// set-thumbnail through the real service and the sandbox site: images go to the `image` field (upload type
// Thumbnail), the page's thumbnail endpoint reports "pending" while the site serves its transient placeholder and
// then the new image; what is not an image by content is refused before a byte reaches storage, whatever its
// name; the no-JavaScript form matches images to entities by name.

const MiB = 1024 * 1024;
/** How long the sandbox shows the transient placeholder: long enough to see "pending" every time. */
const THUMBNAIL_DELAY_MS = 1500;
let env: ServiceWithSandbox;

before(async () => {
  env = await startServiceWithSandbox({ THUMBNAIL_MAX_BYTES: '10MiB' }, { thumbnailDelayMs: THUMBNAIL_DELAY_MS });
});
after(async () => {
  await env.close();
});
beforeEach(() => env.site.faults.reset());

const shotId = (code: string) => env.site.store.all('Shot').find((shot) => shot.fields.code === code)!.id;
const imageOf = (code: string) => JSON.stringify(env.site.store.get('Shot', shotId(code))!.fields.image ?? null);

interface ThumbnailState {
  id: number;
  state: string;
  url?: string;
}

async function thumbnails(page: Launched, ids: number[]): Promise<{ status: number; cacheControl: string; text: string; thumbnails: ThumbnailState[] }> {
  const response = await request(`${page.pageUrl}/thumbnails?ids=${ids.join(',')}`, { headers: { accept: 'application/json' } });
  const text = await response.body.text();
  return { status: response.statusCode, cacheControl: String(response.headers['cache-control']), text, thumbnails: response.statusCode === 200 ? JSON.parse(text).thumbnails : [] };
}

/** Asks until no thumbnail is pending (as the page does, without the backoff), returning every answer seen. */
async function untilMade(page: Launched, ids: number[]): Promise<ThumbnailState[][]> {
  const seen: ThumbnailState[][] = [];
  const deadline = Date.now() + 20_000;
  for (;;) {
    const answer = await thumbnails(page, ids);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.cacheControl, 'no-store', 'never cached: a pending answer must not be reused');
    assert.doesNotMatch(answer.text, /\/images\/status\/transient\//, 'the placeholder URL is never handed to the page');
    seen.push(answer.thumbnails);
    if (answer.thumbnails.every((thumbnail) => thumbnail.state !== 'pending')) return seen;
    assert.ok(Date.now() < deadline, 'the thumbnails are made within 20 s');
    await sleep(150);
  }
}

/** Counts what storage stores (whole objects and parts) until stopped. */
function countStored(): { count: number; stop(): void } {
  const { storage } = env.site;
  const putObject = storage.putObject;
  const uploadPart = storage.uploadPart;
  const counter = {
    count: 0,
    stop() {
      storage.putObject = putObject;
      storage.uploadPart = uploadPart;
    },
  };
  storage.putObject = async (...args: Parameters<typeof putObject>) => {
    const object = await putObject.apply(storage, args);
    counter.count += 1;
    return object;
  };
  storage.uploadPart = async (...args: Parameters<typeof uploadPart>) => {
    const part = await uploadPart.apply(storage, args);
    counter.count += 1;
    return part;
  };
  return counter;
}

describe('set-thumbnail', () => {
  test('one image for two Shots: pending while the site makes them, then both serve the same bytes', async () => {
    const ids = [shotId('sh010'), shotId('sh020')];
    const page = await launch(env, 'set-thumbnail', 'Shot', ids);
    const png = thumbnailPng(41, 'new look');
    const upload = await uploadThrough(page, 'new look.png', png, ids);
    assert.equal(upload.status, 'done');
    assert.deepEqual(
      upload.results.map((result: { id: string; ok: boolean; attachmentId: string | null }) => [result.id, result.ok, result.attachmentId]),
      ids.map((id) => [String(id), true, null]),
      'a thumbnail makes no Attachment',
    );

    const seen = await untilMade(page, ids);
    assert.deepEqual(seen[0]!.map((thumbnail) => thumbnail.state), ['pending', 'pending'], 'first pending: the site serves its placeholder');
    const final = seen.at(-1)!;
    assert.deepEqual(final.map((thumbnail) => [thumbnail.id, thumbnail.state]), ids.map((id) => [String(id), 'ready']));
    for (const thumbnail of final) {
      const image = await call(thumbnail.url!);
      assert.equal(image.status, 200);
      assert.equal(sha256(image.body), sha256(png), `Shot ${thumbnail.id} shows the new image`);
    }
  });

  test('not an image by content, named .png: refused with 415 before a byte is stored, and nothing changes', async () => {
    const page = await launch(env, 'set-thumbnail', 'Shot', [shotId('sh030')]);
    const before = imageOf('sh030');
    const stored = countStored();
    for (const bytes of [Buffer.from('%PDF-1.4 not a picture at all, whatever the name says'), Buffer.from('tiny'), testBytes(9 * MiB, 3)]) {
      const begun = await pageApi(page, 'POST', '', { name: 'frame.png', size: bytes.length, targets: [shotId('sh030')] });
      assert.equal(begun.status, 201, 'the name says nothing: only the bytes can tell');
      const { id, partSize, partCount } = begun.body.upload;
      const part = bytes.subarray(0, partSize);
      const refused = await pageApi(page, 'PUT', `/${id}/parts/1`, part, { 'content-md5': contentMd5(part) });
      assert.equal(refused.status, 415, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'not_an_image');
      assert.match(refused.body.error.message, /“frame\.png” is not an image: its content is not PNG, JPEG, GIF, WebP, TIFF or BMP/);
      const after = await pageApi(page, 'GET', `/${id}`);
      assert.equal(after.body.upload.status, 'aborted', 'given up at the site');
      assert.equal(after.body.upload.partCount, partCount);
      assert.equal((await pageApi(page, 'POST', `/${id}/complete`)).status, 409, 'nothing left to complete');
    }
    stored.stop();
    assert.equal(stored.count, 0, 'storage stored no object and no part');
    assert.equal(env.site.storage.multipartUploadsInProgress(), 0, 'the multipart one was aborted at storage');
    assert.equal(imageOf('sh030'), before, "the Shot's thumbnail is unchanged");
  });

  test('an image over THUMBNAIL_MAX_BYTES is refused before anything begins', async () => {
    const page = await launch(env, 'set-thumbnail', 'Shot', [shotId('sh030')]);
    const reply = await pageApi(page, 'POST', '', { name: 'huge.png', size: 10 * MiB + 1, targets: [shotId('sh030')] });
    assert.equal(reply.status, 413);
    assert.equal(reply.body.error.code, 'file_too_large');
    assert.match(reply.body.error.message, /images for thumbnails may be at most 10485760 bytes/);
    assert.deepEqual((await pageApi(page, 'GET', '')).body.uploads, []);
    // The page is told the same limit, to refuse such files before they start.
    const html = await (await request(page.pageUrl)).body.text();
    assert.match(html, /data-max-bytes="10485760"/);
    assert.match(html, /data-thumbnails-api="[^"]+\/thumbnails"/);
  });

  test('the plain form: each image to the Shot of its name; unmatched and non-images refused; those Shots unchanged', async () => {
    const codes = ['sh040', 'sh050', 'sh060'];
    const page = await launch(env, 'set-thumbnail', 'Shot', codes.map(shotId));
    const png = thumbnailPng(42, 'sh040');
    // JPEG by its signature (the sandbox serves what was stored; it need not decode).
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00]), testBytes(5000, 4)]);
    const sh060Before = imageOf('sh060');
    const form = new FormData();
    form.set('mode', 'match');
    form.append('files', new Blob([new Uint8Array(png)]), 'sh040.png');
    form.append('files', new Blob([new Uint8Array(jpeg)]), 'SH050.jpg');
    form.append('files', new Blob([new Uint8Array(thumbnailPng(43))]), 'nobody.png');
    form.append('files', new Blob(['just some notes, not a picture']), 'sh060.png');
    const encoded = new Response(form);
    const response = await request(`${page.pageUrl}/form-upload?csrf_token=${page.token('form-upload')}`, {
      method: 'POST',
      headers: { 'content-type': encoded.headers.get('content-type')!, accept: 'text/html' },
      body: Buffer.from(await encoded.arrayBuffer()),
    });
    const html = await response.body.text();
    assert.equal(response.statusCode, 207, 'some files were refused');
    assert.match(html, /2 of 4 files uploaded/);
    assert.match(html, /No selected entity is named like this file/, 'nobody.png matched no Shot');
    assert.match(html, /“sh060\.png” is not an image/);

    const made = (await untilMade(page, [shotId('sh040'), shotId('sh050')])).at(-1)!;
    assert.equal(sha256((await call(made[0]!.url!)).body), sha256(png));
    assert.equal(sha256((await call(made[1]!.url!)).body), sha256(jpeg));
    assert.equal(imageOf('sh060'), sh060Before, 'the non-image changed nothing');
    assert.equal(env.site.storage.multipartUploadsInProgress(), 0);
  });

  test('the thumbnail endpoint answers only for the selection, and only for set-thumbnail', async () => {
    const page = await launch(env, 'set-thumbnail', 'Shot', [shotId('sh010')]);
    assert.equal((await thumbnails(page, [shotId('sh020')])).status, 403);
    const bad = await request(`${page.pageUrl}/thumbnails?ids=1,x.y`, { headers: { accept: 'application/json' } });
    assert.equal(bad.statusCode, 400);
    await bad.body.dump();
    const ready = await thumbnails(page, [shotId('sh010')]);
    assert.equal(ready.thumbnails[0]!.state, 'ready');
    const other = await launch(env, 'attach-files', 'Shot', [shotId('sh010')]);
    assert.equal((await thumbnails(other, [shotId('sh010')])).status, 404);
  });
});
