import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { request } from 'undici';
import { bearer, download, sha256, testBytes } from '../helpers/sandbox-api.ts';
import { launch, startServiceWithSandbox, type Launched, type ServiceWithSandbox } from '../helpers/service.ts';
import { contentMd5, pageApi, sendParts, uploadThrough } from '../helpers/upload-client.ts';

// The upload API through the real service and the real sandbox site, as the page drives it: announce, parts
// (in parallel, again after failures), complete, cancel; and the no-JavaScript form. Bytes are checked by hash
// as the site serves them back.

const MiB = 1024 * 1024;
let env: ServiceWithSandbox;

before(async () => {
  env = await startServiceWithSandbox({ MAX_UPLOAD_BYTES: '64MiB' });
});
after(async () => {
  await env.close();
});
beforeEach(() => env.site.faults.reset());

const versionId = (code: string) => env.site.store.all('Version').find((v) => v.fields.code === code)!.id;

const api = (page: Launched, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, headers: Record<string, string> = {}) =>
  pageApi(page, method, path, body, headers);

async function storedMovie(code: string): Promise<Buffer> {
  const reply = await download(env.site, await bearer(env.site), `/api/v1/entity/versions/${versionId(code)}/sg_uploaded_movie?alt=original`);
  assert.equal(reply.status, 200);
  return reply.body;
}

describe('upload API', () => {
  for (const size of [1, 5 * MiB - 1, 5 * MiB, 5 * MiB + 1, 37 * MiB]) {
    test(`a ${size}-byte file lands byte-identical`, async () => {
      const page = await launch(env, 'upload-files', 'Version', [versionId('sh040_comp_v003')]);
      const bytes = testBytes(size, size % 251);
      const upload = await uploadThrough(page, 'sh040_comp_v003.mov', bytes, [versionId('sh040_comp_v003')]);
      assert.equal(upload.status, 'done');
      assert.equal(upload.results[0].ok, true);
      assert.equal(upload.partCount, Math.max(1, Math.ceil(size / (8 * MiB))));
      assert.equal(sha256(await storedMovie('sh040_comp_v003')), sha256(bytes));
    });
  }

  test('one file to three Versions lands three times; results link to each Version', async () => {
    const codes = ['sh050_anim_v001', 'sh050_anim_v002', 'sh050_anim_v003'];
    const page = await launch(env, 'upload-files', 'Version', codes.map(versionId));
    const bytes = testBytes(11 * MiB, 5);
    const upload = await uploadThrough(page, 'fan.mov', bytes, codes.map(versionId));
    for (const [i, code] of codes.entries()) {
      assert.equal(upload.results[i].siteUrl, `${env.site.url}/detail/Version/${versionId(code)}`);
      assert.equal(sha256(await storedMovie(code)), sha256(bytes));
    }
  });

  test('with 10% of storage PUTs failing, resets and API 429s, 20 uploads all land intact and nothing is orphaned', async () => {
    const codes = env.site.store.all('Version').map((v) => String(v.fields.code)).filter((code) => code.startsWith('sh0')).slice(0, 20);
    const page = await launch(env, 'upload-files', 'Version', codes.map(versionId));
    env.site.faults.update({ storagePutFailRate: 0.1, storagePutModes: ['500', '503', 'reset'], apiFailRate: 0.1, apiModes: ['429'], retryAfterSeconds: 0 });
    const files = codes.map((code, i) => ({ code, bytes: testBytes(9 * MiB + i * 4096, 300 + i) }));
    const uploads = [];
    for (let i = 0; i < files.length; i += 5) {
      uploads.push(...(await Promise.all(files.slice(i, i + 5).map(({ code, bytes }) => uploadThrough(page, `${code}.mov`, bytes, [versionId(code)])))));
    }
    env.site.faults.reset();
    for (const [i, { code, bytes }] of files.entries()) {
      assert.equal(uploads[i].results[0].ok, true, code);
      assert.equal(sha256(await storedMovie(code)), sha256(bytes), code);
    }
    assert.equal(env.site.storage.multipartUploadsInProgress(), 0);
  });

  test('a cancel mid-way aborts the multipart upload and creates nothing', async () => {
    const code = 'sh060_comp_v002';
    const before = JSON.stringify(env.site.store.get('Version', versionId(code))!.fields.sg_uploaded_movie);
    const attachments = env.site.store.all('Attachment').length;
    const page = await launch(env, 'upload-files', 'Version', [versionId(code)]);
    const bytes = testBytes(20 * MiB, 6);
    const begun = await api(page, 'POST', '', { name: 'cancel.mov', size: bytes.length, targets: [versionId(code)] });
    const part = bytes.subarray(0, begun.body.upload.partSize);
    assert.equal((await api(page, 'PUT', `/${begun.body.upload.id}/parts/1`, part)).status, 200);
    assert.equal(env.site.storage.multipartUploadsInProgress(), 1);
    const cancelled = await api(page, 'DELETE', `/${begun.body.upload.id}`);
    assert.equal(cancelled.body.upload.status, 'aborted');
    assert.equal(env.site.storage.multipartUploadsInProgress(), 0);
    assert.equal((await api(page, 'PUT', `/${begun.body.upload.id}/parts/2`, bytes.subarray(part.length, 2 * part.length))).status, 409);
    assert.equal(JSON.stringify(env.site.store.get('Version', versionId(code))!.fields.sg_uploaded_movie), before);
    assert.equal(env.site.store.all('Attachment').length, attachments);
  });

  test('discarding the launch gives up its unfinished uploads at the site', async () => {
    const code = 'sh060_comp_v003';
    const page = await launch(env, 'upload-files', 'Version', [versionId(code)]);
    const bytes = testBytes(17 * MiB, 8);
    const begun = (await api(page, 'POST', '', { name: `${code}.mov`, size: bytes.length, targets: [versionId(code)] })).body.upload;
    const first = bytes.subarray(0, begun.partSize);
    assert.equal((await api(page, 'PUT', `/${begun.id}/parts/1`, first, { 'content-md5': contentMd5(first) })).status, 200);
    assert.equal(env.site.storage.multipartUploadsInProgress(), 1);
    const discarded = await request(`${page.pageUrl}/discard`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      body: `csrf_token=${encodeURIComponent(page.token('discard'))}`,
    });
    await discarded.body.dump();
    assert.equal(discarded.statusCode, 200);
    assert.equal(env.site.storage.multipartUploadsInProgress(), 0);
  });

  test('a reloaded page sees its unfinished uploads and which parts are stored', async () => {
    const page = await launch(env, 'upload-files', 'Version', [versionId('sh060_comp_v003')]);
    const bytes = testBytes(17 * MiB, 8);
    const begun = (await api(page, 'POST', '', { name: 'resume.mov', size: bytes.length, targets: [versionId('sh060_comp_v003')] })).body.upload;
    await api(page, 'PUT', `/${begun.id}/parts/2`, bytes.subarray(begun.partSize, 2 * begun.partSize));
    const listed = await api(page, 'GET', '');
    const found = listed.body.uploads.find((upload: { id: string }) => upload.id === begun.id);
    assert.deepEqual(found.partsDone, [2]);
    const puts = await sendParts(page, found, bytes);
    assert.equal(puts, 2, 'only the missing parts are sent');
    await api(page, 'POST', `/${begun.id}/complete`);
    assert.equal(sha256(await storedMovie('sh060_comp_v003')), sha256(bytes));
  });

  test('two completions at once: both see the one result, and the file lands once', async () => {
    const code = 'sh020_comp_v003';
    const page = await launch(env, 'upload-files', 'Version', [versionId(code)]);
    const bytes = testBytes(9 * MiB, 9);
    const begun = (await api(page, 'POST', '', { name: `${code}.mov`, size: bytes.length, targets: [versionId(code)] })).body.upload;
    await sendParts(page, begun, bytes);
    const attachments = env.site.store.all('Attachment').length;
    const [a, b] = await Promise.all([api(page, 'POST', `/${begun.id}/complete`), api(page, 'POST', `/${begun.id}/complete`)]);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.deepEqual(a.body.upload.results, b.body.upload.results);
    assert.equal(a.body.upload.results[0].ok, true);
    assert.equal(env.site.store.all('Attachment').length, attachments + 1);
  });

  test('attach-files: each file becomes an Attachment linked to the entity, with its display name', async () => {
    const shot = env.site.store.all('Shot').find((s) => s.fields.code === 'sh020')!;
    const page = await launch(env, 'attach-files', 'Shot', [shot.id], 'coord');
    const upload = await uploadThrough(page, 'reference.pdf', Buffer.from('%PDF-1.4 reference'), [shot.id], { displayName: 'Client reference' });
    const attachment = env.site.store.get('Attachment', Number(upload.results[0].attachmentId))!;
    assert.deepEqual(attachment.fields.attachment_links, [{ type: 'Shot', id: shot.id }]);
    assert.equal((attachment.fields.this_file as { name: string }).name, 'Client reference');
  });
});

describe('the user\'s record of the action', () => {
  const pageText = async (page: Launched) => {
    const reply = await request(page.pageUrl);
    assert.equal(reply.statusCode, 200);
    // Tags out, whitespace folded: the record as a reader sees it.
    return (await reply.body.text()).replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
  };

  test('files queued but not started, one begun and one cancelled before its turn are listed after a reload; the next launch lists them as earlier', async () => {
    const codes = ['sh060_anim_v001', 'sh060_anim_v002', 'sh060_anim_v003'];
    const ids = codes.map(versionId);
    const page = await launch(env, 'upload-files', 'Version', ids, 'coord');
    const queued = codes.map((code, i) => ({ key: `q-test-${i}`, name: `${code}.mov`, size: 1000 + i, targets: [ids[i]] }));
    assert.equal((await api(page, 'POST', '/queued', { queued })).status, 204);
    // The first one's turn: begun under its queued key; the third is cancelled before its turn.
    const begun = await api(page, 'POST', '', { name: queued[0]!.name, size: 1000, targets: [ids[0]], recordKey: 'q-test-0' });
    assert.equal(begun.status, 201);
    assert.equal((await api(page, 'POST', '/queued', { cancelled: ['q-test-2'] })).status, 204);

    const text = await pageText(page);
    assert.match(text, /From this launch/);
    assert.match(text, new RegExp(`${codes[0]}\\.mov .*Not finished: choose the same file again to continue`));
    assert.match(text, new RegExp(`${codes[1]}\\.mov .*Queued, not started: choose the file again to send it To: → ${codes[1]}`));
    assert.match(text, new RegExp(`${codes[2]}\\.mov .*Cancelled: nothing was created`));
    assert.equal(text.match(new RegExp(`${codes[0]}\\.mov \\d`, 'g'))?.length, 1, 'the begun file replaced its queued entry');

    const later = await pageText(await launch(env, 'upload-files', 'Version', [ids[0]!], 'coord'));
    assert.match(later, /Your earlier “Upload files”/);
    assert.doesNotMatch(later, /From this launch/);
    assert.match(later, new RegExp(`${codes[0]}\\.mov .*Stopped before it finished`));
    assert.match(later, new RegExp(`${codes[1]}\\.mov .*Queued, never started`));
    // Another user's record is theirs alone.
    assert.doesNotMatch(await pageText(await launch(env, 'upload-files', 'Version', [ids[0]!], 'artist')), new RegExp(`${codes[1]}\\.mov`));
  });

  test('queued files are bounded and checked like announced ones', async () => {
    const page = await launch(env, 'upload-files', 'Version', [versionId('sh060_anim_v001')], 'coord');
    const file = (key: string, targets = [versionId('sh060_anim_v001')]) => ({ key, name: 'a.mov', size: 1, targets });
    assert.equal((await api(page, 'POST', '/queued', { queued: Array.from({ length: 101 }, (_, i) => file(`k${i}`)) })).status, 400);
    assert.equal((await api(page, 'POST', '/queued', { queued: [file('bad key!')] })).status, 400);
    assert.equal((await api(page, 'POST', '/queued', { queued: [file('k', [versionId('sh010_comp_v001')])] })).body.error.code, 'target_outside_selection');
    assert.equal((await api(page, 'POST', '/queued', { queued: [file('k')] }, { 'x-csrf-token': 'forged' })).status, 403);
  });
});

describe('attachments go to the site in one piece', () => {
  test('a file bigger than a part is planned as one part of its whole size and lands byte-identical', async () => {
    const shot = env.site.store.all('Shot').find((s) => s.fields.code === 'sh030')!;
    const page = await launch(env, 'attach-files', 'Shot', [shot.id]);
    const bytes = testBytes(19 * MiB + 3, 41);
    const upload = await uploadThrough(page, 'plate_ref.mov', bytes, [shot.id]);
    assert.deepEqual([upload.partCount, upload.partSize], [1, bytes.length]);
    const attachment = env.site.store.get('Attachment', Number(upload.results[0].attachmentId))!;
    const reply = await download(env.site, await bearer(env.site), `/api/v1/entity/attachments/${attachment.id}/this_file?alt=original`);
    assert.equal(sha256(reply.body), sha256(bytes));
    assert.equal(env.site.storage.head((attachment.fields.this_file as { key: string }).key)?.contentType, 'video/quicktime', 'typed by its name');
  });

  test('with no limit of the service\'s own: over 5 GiB is refused before a byte moves; the form holds 64 MiB at most', async () => {
    const unlimited = await startServiceWithSandbox();
    try {
      const shot = unlimited.site.store.all('Shot').find((s) => s.fields.code === 'sh030')!;
      const page = await launch(unlimited, 'attach-files', 'Shot', [shot.id]);
      const reply = await pageApi(page, 'POST', '', { name: 'huge.mov', size: 5 * 1024 * MiB + 1, targets: [shot.id] });
      assert.equal(reply.status, 413);
      assert.equal(reply.body.error.code, 'file_too_large');
      assert.match(reply.body.error.message, /in one piece, at most 5 GiB/);

      const attachments = unlimited.site.store.all('Attachment').length;
      const form = new FormData();
      form.append('files', new Blob([new Uint8Array(testBytes(64 * MiB + 1, 25))]), 'big.mov');
      const encoded = new Response(form);
      const posted = await request(`${page.pageUrl}/form-upload?csrf_token=${page.token('form-upload')}`, {
        method: 'POST',
        headers: { 'content-type': encoded.headers.get('content-type')!, accept: 'text/html' },
        body: Buffer.from(await encoded.arrayBuffer()),
      });
      const html = await posted.body.text();
      assert.equal(posted.statusCode, 207);
      assert.match(html, /with JavaScript on/);
      assert.equal(unlimited.site.store.all('Attachment').length, attachments, 'nothing created');
    } finally {
      await unlimited.close();
    }
  });
});

describe('upload API refusals change nothing', () => {
  test('empty file, over the limit, path in the name, target outside the selection, wrong CSRF, stale context', async () => {
    const code = 'sh030_comp_v003';
    const page = await launch(env, 'upload-files', 'Version', [versionId(code)]);
    const target = [versionId(code)];
    const expect = async (body: unknown, status: number, errorCode: string, headers: Record<string, string> = {}) => {
      const reply = await api(page, 'POST', '', body, headers);
      assert.equal(reply.status, status, JSON.stringify(reply.body));
      assert.equal(reply.body.error.code, errorCode);
    };
    await expect({ name: 'a.mov', size: 0, targets: target }, 400, 'empty_file');
    await expect({ name: 'a.mov', size: 65 * MiB, targets: target }, 413, 'file_too_large');
    await expect({ name: 'a.mov', size: 6 * 1024 * 1024 * MiB, targets: target }, 413, 'file_too_large');
    // Everything stored is bounded before it is stored (a 256 kB display name once filled the heap).
    await expect({ name: 'a.mov', size: 10, targets: target, displayName: 'x'.repeat(256) }, 400, 'bad_request');
    await expect({ name: 'a.mov', size: 10, targets: target, tagIds: Array.from({ length: 51 }, (_, i) => i + 1) }, 400, 'bad_request');
    await expect({ name: 'a.mov', size: 10, targets: Array.from({ length: 201 }, () => target[0]) }, 400, 'bad_request');
    await expect({ name: 'a.mov', size: 10, targets: [versionId('sh010_comp_v001')] }, 403, 'target_outside_selection');
    await expect({ name: '\u0000\u0001', size: 10, targets: target }, 400, 'invalid_name');
    await expect({ name: 'a.mov', size: 10, targets: target }, 403, 'csrf_invalid', { 'x-csrf-token': page.token('discard') });
    const stripped = await api(page, 'POST', '', { name: '../../etc/C:\\x\\shot.mov', size: 3, targets: target });
    assert.equal(stripped.body.upload.name, 'shot.mov');
    await api(page, 'DELETE', `/${stripped.body.upload.id}`);
    const stale = { ...page, pageUrl: page.pageUrl.replace(/[^/]+$/, 'A'.repeat(43)) };
    const gone = await api(stale, 'POST', '', { name: 'a.mov', size: 10, targets: target });
    assert.equal(gone.status, 403, 'the token belongs to another context, so CSRF refuses first');
    assert.equal(env.site.storage.multipartUploadsInProgress(), 0);
  });

  test('a part number that is not plain digits is refused (1e0, 0x1, 01, +1)', async () => {
    const page = await launch(env, 'upload-files', 'Version', [versionId('sh030_comp_v002')]);
    const begun = (await api(page, 'POST', '', { name: 'x.mov', size: 10, targets: [versionId('sh030_comp_v002')] })).body.upload;
    for (const n of ['1e0', '0x1', '01', '+1', '1.0']) {
      const reply = await api(page, 'PUT', `/${begun.id}/parts/${encodeURIComponent(n)}`, Buffer.alloc(10));
      assert.equal(reply.status, 400, n);
      assert.equal(reply.body.error.code, 'invalid_part', n);
    }
    await api(page, 'DELETE', `/${begun.id}`);
  });

  test('a part of the wrong size is refused', async () => {
    const page = await launch(env, 'upload-files', 'Version', [versionId('sh030_comp_v002')]);
    const begun = (await api(page, 'POST', '', { name: 'x.mov', size: 9 * MiB, targets: [versionId('sh030_comp_v002')] })).body.upload;
    const wrong = await api(page, 'PUT', `/${begun.id}/parts/1`, Buffer.alloc(10));
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.error.code, 'part_size_mismatch');
    await api(page, 'DELETE', `/${begun.id}`);
  });
});

describe('the no-JavaScript form', () => {
  async function postForm(page: Launched, form: FormData, token = page.token('form-upload')) {
    const encoded = new Response(form);
    const response = await request(`${page.pageUrl}/form-upload?csrf_token=${token}`, {
      method: 'POST',
      headers: { 'content-type': encoded.headers.get('content-type')!, accept: 'text/html' },
      body: Buffer.from(await encoded.arrayBuffer()),
    });
    return { status: response.statusCode, html: await response.body.text() };
  }

  test('files stream through busboy to the Versions of their names', async () => {
    const codes = ['sh010_anim_v001', 'sh010_anim_v002'];
    const page = await launch(env, 'upload-files', 'Version', codes.map(versionId));
    const first = testBytes(9 * MiB + 7, 21);
    const second = testBytes(300, 22);
    const form = new FormData();
    form.set('mode', 'match');
    form.append('files', new Blob([new Uint8Array(first)]), 'SH010_anim.v001.mov');
    form.append('files', new Blob([new Uint8Array(second)]), 'sh010_anim_v002.mp4');
    form.append('files', new Blob(['x']), 'unrelated.txt');
    const reply = await postForm(page, form);
    assert.equal(reply.status, 207, 'one file matched nothing');
    assert.match(reply.html, /No selected entity is named like this file/);
    assert.equal(sha256(await storedMovie('sh010_anim_v001')), sha256(first));
    assert.equal(sha256(await storedMovie('sh010_anim_v002')), sha256(second));
    assert.equal(env.site.storage.multipartUploadsInProgress(), 0);
  });

  test('a file over MAX_UPLOAD_BYTES is refused part-way and nothing is created', async () => {
    const code = 'sh020_anim_v002';
    const before = JSON.stringify(env.site.store.get('Version', versionId(code))!.fields.sg_uploaded_movie);
    const page = await launch(env, 'upload-files', 'Version', [versionId(code)]);
    const form = new FormData();
    form.append('files', new Blob([new Uint8Array(testBytes(65 * MiB, 23))]), `${code}.mov`);
    const reply = await postForm(page, form);
    assert.equal(reply.status, 207);
    assert.match(reply.html, /larger than 67108864 bytes/);
    assert.equal(JSON.stringify(env.site.store.get('Version', versionId(code))!.fields.sg_uploaded_movie), before);
    assert.equal(env.site.storage.multipartUploadsInProgress(), 0);
  });

  test('non-ASCII file names arrive as sent (UTF-8), attached in one piece', async () => {
    const shot = env.site.store.all('Shot').find((s) => s.fields.code === 'sh020')!;
    const page = await launch(env, 'attach-files', 'Shot', [shot.id]);
    const form = new FormData();
    const bytes = testBytes(9 * MiB, 24);
    form.append('files', new Blob([new Uint8Array(bytes)]), 'café_ü 東京.txt');
    const reply = await postForm(page, form);
    assert.equal(reply.status, 200, reply.html);
    const attachment = env.site.store.all('Attachment').findLast((a) => (a.fields.this_file as { name?: string } | null)?.name === 'café_ü 東京.txt');
    assert.ok(attachment, 'stored under its own name');
  });

  test('a form that cannot be read is the client\'s mistake: 400, never 500', async () => {
    const page = await launch(env, 'upload-files', 'Version', [versionId('sh020_anim_v003')]);
    const post = async (contentType: string, body: string) => {
      const response = await request(`${page.pageUrl}/form-upload?csrf_token=${page.token('form-upload')}`, {
        method: 'POST',
        headers: { 'content-type': contentType, accept: 'application/json' },
        body,
      });
      return { status: response.statusCode, body: (await response.body.json()) as { error: { code: string } } };
    };
    const noBoundary = await post('multipart/form-data', '--x\r\n');
    assert.equal(noBoundary.status, 400);
    assert.equal(noBoundary.body.error.code, 'bad_request');
    const cut = await post('multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="files"; filename="a.mov"\r\n\r\nabc');
    assert.equal(cut.status, 400);
  });

  test('a wrong token is refused before any byte is stored', async () => {
    const page = await launch(env, 'upload-files', 'Version', [versionId('sh020_anim_v003')]);
    const form = new FormData();
    form.append('files', new Blob(['abc']), 'sh020_anim_v003.mov');
    const reply = await postForm(page, form, page.token('uploads'));
    assert.equal(reply.status, 403);
  });
});
