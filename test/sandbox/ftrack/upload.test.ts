import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SERVER_LOCATION_ID } from '../../../src/sandbox/ftrack/schema.ts';
import { startFtrackSandbox, type FtrackSandbox } from '../../../src/sandbox/ftrack/site.ts';
import { apiCall, http, md5Base64, md5Hex, named, put, sha256, testBytes, versionId } from './helpers.ts';

// Uploads into ftrack.server and downloads from it, the three steps of ftrack.md done with plain undici requests
// (the official uploader needs browser globals): the FileComponent and get_upload_metadata, the storage PUT(s),
// the completion and the ComponentLocation. Every byte checked by hash; every storage refusal is S3's.

let sandbox: FtrackSandbox;

before(async () => {
  sandbox = await startFtrackSandbox();
});
after(async () => {
  await sandbox?.close();
});

interface Begun {
  componentId: string;
  meta: any;
}

/** Step 1: one batch, the FileComponent and its upload metadata (checksum optional, as the JS client omits it). */
async function begin(bytes: Buffer, options: { name?: string; checksum?: string; parts?: number | null; user?: string; key?: string } = {}): Promise<Begun> {
  const componentId = randomUUID();
  const name = options.name ?? 'plate';
  const version = versionId(sandbox, 'sh030_comp', 1);
  const reply = await apiCall(
    sandbox,
    [
      { action: 'create', entity_type: 'FileComponent', entity_data: { id: componentId, name, file_type: '.mov', size: bytes.length, version_id: version } },
      {
        action: 'get_upload_metadata',
        component_id: componentId,
        file_name: `${name}.mov`,
        file_size: bytes.length,
        parts: options.parts ?? null,
        ...(options.checksum ? { checksum: options.checksum } : {}),
      },
    ],
    options.user,
    options.key,
  );
  assert.ok(Array.isArray(reply), JSON.stringify(reply));
  assert.equal(reply[0].data.id, componentId);
  return { componentId, meta: reply[1] };
}

/** The headers to send: exactly those returned, Content-Length aside (the HTTP client sets it from the body). */
function headersOf(meta: { headers: Record<string, string> }): Record<string, string> {
  return Object.fromEntries(Object.entries(meta.headers).filter(([name]) => name !== 'Content-Length'));
}

/** Step 3: the ComponentLocation in the server location (and the multipart completion first, when there is one). */
async function complete(componentId: string, parts?: { part_number: number; e_tag: string }[], uploadId?: string): Promise<any> {
  return apiCall(sandbox, [
    ...(parts ? [{ action: 'complete_multipart_upload', upload_id: uploadId, parts, component_id: componentId }] : []),
    {
      action: 'create',
      entity_type: 'ComponentLocation',
      entity_data: { id: randomUUID(), component_id: componentId, resource_identifier: componentId, location_id: SERVER_LOCATION_ID },
    },
  ]);
}

function componentUrl(componentId: string, user = 'artist', key = sandbox.apiKeys.artist, path = 'get'): string {
  return `${sandbox.url}/component/${path}?${new URLSearchParams({ id: componentId, username: user, apiKey: key })}`;
}

/** /component/get, following its redirect by hand: checks the redirect carries no credentials to storage's host. */
async function download(componentId: string): Promise<Buffer> {
  const first = await http(componentUrl(componentId));
  assert.equal(first.status, 302, first.body.toString());
  const location = String(first.headers.location);
  assert.ok(location.startsWith(`${sandbox.storageUrl}/`), `redirected to storage (${location})`);
  assert.notEqual(new URL(location).host, new URL(sandbox.url).host, 'storage has a host name of its own');
  assert.ok(!location.includes(sandbox.apiKeys.artist) && !/apiKey|username/i.test(location), 'no credentials in the redirect');
  const second = await http(location);
  assert.equal(second.status, 200);
  return second.body;
}

const storageCode = (reply: { body: Buffer }): string => /<Code>([^<]+)<\/Code>/.exec(reply.body.toString())?.[1] ?? '';

describe('single-part upload', () => {
  test('with a checksum: the signed headers are returned, the PUT carrying them lands byte-identical, /component/get returns it', async () => {
    const bytes = testBytes(300_000, 1);
    const { componentId, meta } = await begin(bytes, { name: 'sh030 plate', checksum: md5Base64(bytes) });
    assert.deepEqual(Object.keys(meta).sort(), ['component_id', 'headers', 'url']);
    assert.equal(meta.component_id, componentId);
    assert.equal(meta.headers['Content-Type'], 'video/quicktime');
    assert.equal(meta.headers['Content-Disposition'], 'attachment; filename="sh030 plate.mov"');
    assert.equal(meta.headers['Content-MD5'], md5Base64(bytes));
    assert.ok(meta.url.startsWith(`${sandbox.storageUrl}/`));

    const stored = await put(meta.url, bytes, headersOf(meta));
    assert.equal(stored.status, 200, stored.body.toString());
    assert.equal(stored.headers.etag, `"${md5Hex(bytes)}"`);
    const completed = await complete(componentId);
    assert.equal(completed[0].data.location_id, SERVER_LOCATION_ID);

    assert.equal(sha256(await download(componentId)), sha256(bytes));
    const [located] = await apiCall(sandbox, [{ action: 'query', expression: `select component_locations.location.name from FileComponent where id is "${componentId}"` }]);
    assert.equal(located.data[0].component_locations[0].location.name, 'ftrack.server');
  });

  test('a Content-MD5 that does not match the body is refused by storage: 400 BadDigest, nothing stored', async () => {
    const bytes = testBytes(100_000, 2);
    const { componentId, meta } = await begin(bytes, { checksum: md5Base64(testBytes(100_000, 3)) });
    const refused = await put(meta.url, bytes, headersOf(meta));
    assert.equal(refused.status, 400);
    assert.equal(storageCode(refused), 'BadDigest');
    assert.equal(sandbox.storage.head(componentId), undefined);
  });

  test('the PUT must carry every signed header with its value: one missing or different is refused 403, nothing stored', async () => {
    const bytes = testBytes(50_000, 4);
    const { componentId, meta } = await begin(bytes, { checksum: md5Base64(bytes) });
    const headers = headersOf(meta);
    const without = (name: string) => Object.fromEntries(Object.entries(headers).filter(([header]) => header !== name));
    for (const sent of [without('Content-Disposition'), without('Content-MD5'), without('Content-Type'), { ...headers, 'Content-Type': 'application/octet-stream' }, { ...headers, 'Content-Disposition': 'inline' }]) {
      const refused = await put(meta.url, bytes, sent);
      assert.equal(refused.status, 403, JSON.stringify(sent));
      assert.equal(storageCode(refused), 'SignatureDoesNotMatch');
    }
    assert.equal(sandbox.storage.head(componentId), undefined);
    assert.equal((await put(meta.url, bytes, headers)).status, 200, 'the same URL with exactly its headers');
  });

  test('a Content-MD5 the URL did not sign (no checksum was given) is refused: headers not signed', async () => {
    const bytes = testBytes(20_000, 5);
    const { meta } = await begin(bytes);
    assert.equal(meta.headers['Content-MD5'], undefined);
    const refused = await put(meta.url, bytes, { ...headersOf(meta), 'Content-MD5': md5Base64(bytes) });
    assert.equal(refused.status, 403);
    assert.match(refused.body.toString(), /HeadersNotSigned/);
    assert.equal((await put(meta.url, bytes, headersOf(meta))).status, 200);
  });

  test('a body without Content-Length (chunked) is refused 411', async () => {
    const bytes = testBytes(20_000, 6);
    const { componentId, meta } = await begin(bytes);
    async function* chunks(): AsyncGenerator<Buffer> {
      yield bytes.subarray(0, 10_000);
      yield bytes.subarray(10_000);
    }
    const refused = await put(meta.url, chunks() as unknown as Buffer, headersOf(meta));
    assert.equal(refused.status, 411);
    assert.equal(storageCode(refused), 'MissingContentLength');
    assert.equal(sandbox.storage.head(componentId), undefined);
  });

  test('an expired URL is refused 403 (faults: URLs expire at once)', async () => {
    const bytes = testBytes(10_000, 7);
    const { componentId, meta } = await begin(bytes);
    sandbox.faults.update({ signedUrlTtlSeconds: 0 });
    try {
      const refused = await put(meta.url, bytes, headersOf(meta));
      assert.equal(refused.status, 403);
      assert.match(refused.body.toString(), /Request has expired/);
      assert.equal(sandbox.storage.head(componentId), undefined);
    } finally {
      sandbox.faults.reset();
    }
  });

  test('an injected storage 503 fails the PUT; the same PUT again succeeds', async () => {
    const bytes = testBytes(10_000, 8);
    const { componentId, meta } = await begin(bytes, { checksum: md5Base64(bytes) });
    sandbox.faults.update({ storagePutFailCount: 1, storagePutModes: ['503'] });
    try {
      assert.equal((await put(meta.url, bytes, headersOf(meta))).status, 503);
      assert.equal((await put(meta.url, bytes, headersOf(meta))).status, 200);
      assert.equal(sandbox.storage.head(componentId)?.size, bytes.length);
    } finally {
      sandbox.faults.reset();
    }
  });

  test('get_upload_metadata checks what it is given and for whom', async () => {
    const bytes = testBytes(1000, 9);
    const { componentId } = await begin(bytes);
    const ask = (extra: Record<string, unknown>, user?: string, key?: string) =>
      apiCall(sandbox, [{ action: 'get_upload_metadata', component_id: componentId, file_name: 'a.mov', file_size: 1000, parts: null, ...extra }], user, key);
    for (const bad of [{ checksum: 'not-base64-md5' }, { parts: 0 }, { parts: 10_001 }, { file_size: -1 }, { file_name: '' }, { component_id: randomUUID() }]) {
      const reply = await ask(bad);
      assert.equal(reply.exception, 'ValidationError', JSON.stringify(bad));
    }
    assert.equal((await ask({}, 'outsider', sandbox.apiKeys.outsider)).exception, 'ValidationError', "another project's component is not there for outsider");
  });
});

describe('multi-part upload', () => {
  const MiB = 1024 * 1024;

  test('each part answers 200 with its ETag; complete_multipart_upload checks them; the ComponentLocation; the bytes come back', async () => {
    const bytes = testBytes(5 * MiB + 300_000, 10);
    const { componentId, meta } = await begin(bytes, { parts: 2 });
    assert.deepEqual(Object.keys(meta).sort(), ['component_id', 'upload_id', 'urls']);
    assert.deepEqual(meta.urls.map((url: { part_number: number }) => url.part_number), [1, 2]);
    const pieces = [bytes.subarray(0, 5 * MiB), bytes.subarray(5 * MiB)];
    const etags: string[] = [];
    for (const [index, url] of meta.urls.entries()) {
      const piece = pieces[index]!;
      assert.ok(url.signed_url.startsWith(`${sandbox.storageUrl}/`));
      const stored = await put(url.signed_url, piece);
      assert.equal(stored.status, 200, stored.body.toString());
      // The JS uploader waits for this header for ever without it (ftrack.md).
      assert.equal(stored.headers.etag, `"${md5Hex(piece)}"`);
      etags.push(String(stored.headers.etag).replaceAll('"', ''));
    }
    const wrong = await complete(componentId, [{ part_number: 1, e_tag: etags[0]! }, { part_number: 2, e_tag: md5Hex(Buffer.from('other')) }], meta.upload_id);
    assert.equal(wrong.exception, 'ValidationError');
    assert.match(wrong.content, /InvalidPart/);
    const missing = await complete(componentId, [{ part_number: 1, e_tag: etags[0]! }, { part_number: 3, e_tag: etags[1]! }], meta.upload_id);
    assert.equal(missing.exception, 'ValidationError');
    const elsewhere = await apiCall(sandbox, [
      { action: 'complete_multipart_upload', upload_id: meta.upload_id, parts: etags.map((e_tag, i) => ({ part_number: i + 1, e_tag })), component_id: named(sandbox, 'FileComponent', 'notes') },
    ]);
    assert.equal(elsewhere.exception, 'ValidationError', "another component cannot complete this upload");

    const done = await complete(componentId, etags.map((e_tag, i) => ({ part_number: i + 1, e_tag })), meta.upload_id);
    assert.ok(Array.isArray(done), JSON.stringify(done));
    assert.deepEqual(done[0], { action: 'complete_multipart_upload', component_id: componentId });
    assert.equal(sandbox.storage.multipartUploadsInProgress(), 0);
    assert.equal(sha256(await download(componentId)), sha256(bytes));
  });
});

describe('downloads and thumbnails', () => {
  test('/component/get: wrong credentials 401; unknown component, or one with no data in ftrack.server, 404', async () => {
    const seeded = named(sandbox, 'FileComponent', 'notes');
    assert.equal((await http(componentUrl(seeded, 'artist', 'wrong'))).status, 401);
    assert.equal((await http(componentUrl(seeded, 'outsider', sandbox.apiKeys.outsider))).status, 404, 'not visible to outsider');
    assert.equal((await http(componentUrl(randomUUID()))).status, 404);
    assert.equal((await http(componentUrl(named(sandbox, 'FileComponent', 'model')))).status, 404, 'only in ftrack.unmanaged');
    assert.match((await download(seeded)).toString(), /chair v001/);
  });

  test('/component/thumbnail redirects to the image in storage; no thumbnail is the placeholder image', async () => {
    const version = sandbox.store.byId(versionId(sandbox, 'sh010_comp', 2))!;
    const thumbnail = await http(componentUrl(String(version.attrs.thumbnail_id), 'artist', sandbox.apiKeys.artist, 'thumbnail') + '&size=300');
    assert.equal(thumbnail.status, 302);
    assert.ok(String(thumbnail.headers.location).startsWith(`${sandbox.storageUrl}/`));
    const image = await http(String(thumbnail.headers.location));
    assert.equal(image.body.subarray(1, 4).toString(), 'PNG');
    const none = await http(componentUrl(randomUUID(), 'artist', sandbox.apiKeys.artist, 'thumbnail'));
    assert.equal(none.status, 302);
    assert.equal(none.headers.location, '/img/thumbnail2.png');
    const placeholder = await http(`${sandbox.url}/img/thumbnail2.png`);
    assert.equal(placeholder.status, 200);
    assert.equal(placeholder.body.subarray(1, 4).toString(), 'PNG');
  });

  test("deleting a FileComponent (the uploader's clean-up) removes its ComponentLocation and its data", async () => {
    const bytes = testBytes(5000, 11);
    const { componentId, meta } = await begin(bytes);
    assert.equal((await put(meta.url, bytes, headersOf(meta))).status, 200);
    await complete(componentId);
    assert.deepEqual(await apiCall(sandbox, [{ action: 'delete', entity_type: 'FileComponent', entity_key: componentId }]), [{ action: 'delete', data: true }]);
    assert.equal(sandbox.storage.head(componentId), undefined);
    assert.equal(sandbox.store.all('ComponentLocation').some((entry) => entry.attrs.component_id === componentId), false);
    assert.equal((await http(componentUrl(componentId))).status, 404);
  });

  test('a component is in a location once; encode_media answers a job id for data in the server location', async () => {
    const bytes = testBytes(4000, 12);
    const { componentId, meta } = await begin(bytes);
    assert.equal((await put(meta.url, bytes, headersOf(meta))).status, 200);
    assert.ok(Array.isArray(await complete(componentId)));
    assert.match((await complete(componentId)).content, /already in location/);
    const version = versionId(sandbox, 'sh030_comp', 1);
    const [job] = await apiCall(sandbox, [{ action: 'encode_media', component_id: componentId, version_id: version, keep_original: true }]);
    assert.match(job.job_id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(sandbox.encodeJobs.at(-1), { jobId: job.job_id, componentId, versionId: version, keepOriginal: true, requestedBy: 'artist' });
    const unmanaged = await apiCall(sandbox, [{ action: 'encode_media', component_id: named(sandbox, 'FileComponent', 'model') }]);
    assert.equal(unmanaged.exception, 'ValidationError');
  });
});
