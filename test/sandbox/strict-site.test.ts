import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { computeAmiSignature } from '../../src/ami/signature.ts';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { api, bearer, call, download, sha256, testBytes } from '../helpers/sandbox-api.ts';

// What the sandbox SITE refuses or does differently because a real ShotGrid site does (shotgrid-rest.md and ami.md,
// the items marked strict; docs/decisions/0008-sandbox-fidelity.md). Each test fails if the sandbox goes lenient
// again: a client that passes here only by the sandbox's leniency would break at a studio.

let site: SandboxSite;

before(async () => {
  site = await startSandboxSite({ thumbnailDelayMs: 100 });
});
after(async () => {
  await site?.close();
});

function errorOf(reply: { json(): any }): { status: number; code: number; title: string; source: any } {
  const body = reply.json();
  assert.equal(body.errors.length, 1);
  const [error] = body.errors;
  assert.match(error.id, /^[0-9a-f]{32}$/);
  assert.deepEqual(Object.keys(error).sort(), ['code', 'detail', 'id', 'meta', 'source', 'status', 'title']);
  return error;
}

const byCode = (s: SandboxSite, type: 'Shot' | 'Version', code: string) => s.store.all(type).find((r) => r.fields.code === code)!;
const attachmentNamed = (s: SandboxSite, filename: string) => s.store.all('Attachment').find((a) => a.fields.filename === filename)!;

describe('malware scanning (seeded on Shot sh040)', () => {
  test('a file under scan answers 409 with the site message, on the API download and on /file_serve; a quarantined one 410', async () => {
    const token = await bearer(site);
    const client = api(site, token);
    const sh040 = byCode(site, 'Shot', 'sh040');
    const linked = await client.search('attachments', [['attachment_links', 'is', { type: 'Shot', id: sh040.id }]], { fields: 'filename' });
    assert.deepEqual(linked.json().data.map((a: any) => a.attributes.filename).sort(), ['sh040_layout_notes.pdf', 'sh040_vendor_plugin.zip']);

    const cases = [
      { name: 'sh040_layout_notes.pdf', status: 409, message: 'This file is undergoing a malware scan, please try again in a few minutes' },
      { name: 'sh040_vendor_plugin.zip', status: 410, message: 'File scanning has detected malware and the file has been quarantined' },
    ];
    for (const { name, status, message } of cases) {
      const id = attachmentNamed(site, name).id;
      const viaApi = await client.get(`/api/v1/entity/attachments/${id}/this_file?alt=original`);
      assert.equal(viaApi.status, status, name);
      assert.equal(errorOf(viaApi).title, message);
      assert.equal(errorOf(viaApi).status, status);
      // python-api reads the message from the body of /file_serve itself.
      const viaFileServe = await call(`${site.url}/file_serve/attachment/${id}`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(viaFileServe.status, status, name);
      assert.match(String(viaFileServe.headers['content-type']), /^text\/plain/);
      assert.equal(viaFileServe.body.toString(), message);
      // The record reads as usual: only the bytes are held back.
      assert.equal((await client.get(`/api/v1/entity/attachments/${id}?fields=this_file`)).json().data.attributes.this_file.name, name);
    }
  });

  test('the scan ends after malwareScanSeconds: then the file downloads; the quarantined one stays 410', async () => {
    const quick = await startSandboxSite({ malwareScanSeconds: 1.5 });
    try {
      const token = await bearer(quick);
      const scanned = attachmentNamed(quick, 'sh040_layout_notes.pdf').id;
      const quarantined = attachmentNamed(quick, 'sh040_vendor_plugin.zip').id;
      const path = `/api/v1/entity/attachments/${scanned}/this_file?alt=original`;
      assert.equal((await download(quick, token, path)).status, 409);
      await new Promise((resolve) => setTimeout(resolve, 1600));
      const done = await download(quick, token, path);
      assert.equal(done.status, 200);
      assert.equal(done.body.subarray(0, 5).toString(), '%PDF-');
      assert.equal((await download(quick, token, `/file_serve/attachment/${scanned}`)).status, 200);
      assert.equal((await download(quick, token, `/api/v1/entity/attachments/${quarantined}/this_file?alt=original`)).status, 410);
      assert.equal((await download(quick, token, `/file_serve/attachment/${quarantined}`)).status, 410);
    } finally {
      await quick.close();
    }
  });
});

describe('multipart only where a real site does it', () => {
  test('a record-level (fieldless) upload with multipart_upload=true is refused 400, and nothing is opened in storage', async () => {
    const client = api(site, await bearer(site, 'artist'));
    const shot = byCode(site, 'Shot', 'sh050');
    const before = site.storage.multipartUploadsInProgress();
    const reply = await client.get(`/api/v1/entity/shots/${shot.id}/_upload?filename=plate.exr&multipart_upload=true`);
    assert.equal(reply.status, 400);
    const error = errorOf(reply);
    assert.equal(error.code, 103);
    assert.match(error.title, /Multipart upload is not supported for uploads without a field name/);
    assert.equal(site.storage.multipartUploadsInProgress(), before);
    // Single-part on the same record is fine.
    assert.equal((await client.get(`/api/v1/entity/shots/${shot.id}/_upload?filename=plate.exr`)).status, 200);
  });

  test('a thumbnail (image) upload with multipart_upload=true is refused 400; a file field may go multipart', async () => {
    const client = api(site, await bearer(site, 'artist'));
    const version = byCode(site, 'Version', 'sh050_comp_v001');
    const image = await client.get(`/api/v1/entity/versions/${version.id}/image/_upload?filename=thumb.png&multipart_upload=true`);
    assert.equal(image.status, 400);
    assert.match(errorOf(image).title, /thumbnail/i);
    const movie = await client.get(`/api/v1/entity/versions/${version.id}/sg_uploaded_movie/_upload?filename=m.mov&multipart_upload=true`);
    assert.equal(movie.status, 200);
    assert.equal(movie.json().data.multipart_upload, true);
    const base = `/api/v1/entity/versions/${version.id}/sg_uploaded_movie/_upload`;
    assert.equal((await client.post(`${base}/multipart_abort`, movie.json().data)).status, 204);
  });
});

describe('sudo is not refreshed', () => {
  async function refreshed(grant: { refresh_token: string }): Promise<string> {
    const query = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: grant.refresh_token });
    const reply = await call(`${site.url}/api/v1/auth/access_token?${query}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    assert.equal(reply.status, 200);
    return reply.json().access_token;
  }
  const sudoGrant = async (login: string) => {
    const query = new URLSearchParams({ grant_type: 'client_credentials', client_id: site.scriptName, client_secret: site.scriptKey, scope: `sudo_as_login:${login}` });
    return (await call(`${site.url}/api/v1/auth/access_token?${query}`, { method: 'POST', body: '' })).json();
  };
  const demo = () => site.store.all('Project').find((p) => p.fields.name === 'Demo')!;

  test('a token refreshed from a sudo grant writes as the script (ApiUser), not as the user', async () => {
    const grant = await sudoGrant('coord');
    const asCoord = await api(site, grant.access_token).post('/api/v1/entity/notes?options[fields]=created_by', { subject: 'before refresh', project: { type: 'Project', id: demo().id } });
    assert.deepEqual(asCoord.json().data.relationships.created_by.data.type, 'HumanUser', 'the sudo grant itself acts as coord');
    const token = await refreshed(grant);
    const created = await api(site, token).post('/api/v1/entity/notes?options[fields]=created_by', { subject: 'after refresh', project: { type: 'Project', id: demo().id } });
    assert.equal(created.status, 201);
    const author = created.json().data.relationships.created_by.data;
    assert.equal(author.type, 'ApiUser');
    assert.equal(author.name, site.scriptName);
  });

  test("a token refreshed from the outsider's sudo grant reads what only the script may see", async () => {
    const grant = await sudoGrant('outsider');
    const hidden = byCode(site, 'Version', 'sh010_comp_v003').id;
    assert.equal((await api(site, grant.access_token).get(`/api/v1/entity/versions/${hidden}`)).status, 404, 'the outsider cannot see Demo');
    const token = await refreshed(grant);
    assert.equal((await api(site, token).get(`/api/v1/entity/versions/${hidden}?fields=code`)).status, 200, 'the script can');
  });
});

describe('fields', () => {
  test('a name the entity lacks is dropped silently at 200, in the query and in a search body', async () => {
    const client = api(site, await bearer(site));
    const version = byCode(site, 'Version', 'sh020_comp_v002');
    const read = await client.get(`/api/v1/entity/versions/${version.id}?fields=code,sg_no_such_field`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.json().data.attributes, { code: 'sh020_comp_v002' });
    const found = await client.search('versions', [['id', 'is', version.id]], { fields: ['code', 'descripton'] });
    assert.equal(found.status, 200);
    assert.deepEqual(found.json().data[0].attributes, { code: 'sh020_comp_v002' });
  });

  test('the string "*" reads every field; a list holding "*" reads none (only type and id)', async () => {
    const client = api(site, await bearer(site));
    const version = byCode(site, 'Version', 'sh020_comp_v002');
    const all = (await client.search('versions', [['id', 'is', version.id]], { fields: '*' })).json().data[0];
    assert.equal(all.attributes.code, 'sh020_comp_v002');
    assert.ok('sg_uploaded_movie' in all.attributes && 'entity' in all.relationships);
    const starList = await client.search('versions', [['id', 'is', version.id]], { fields: ['*'] });
    assert.equal(starList.status, 200);
    const [row] = starList.json().data;
    assert.deepEqual([row.type, row.id], ['Version', version.id]);
    assert.deepEqual(row.attributes, {});
    assert.deepEqual(row.relationships, {});
    assert.deepEqual((await client.get(`/api/v1/entity/versions/${version.id}?fields=*`)).json().data.attributes.code, 'sh020_comp_v002');
    const commaString = (await client.search('versions', [['id', 'is', version.id]], { fields: 'code,sg_status_list' })).json().data[0];
    assert.deepEqual(Object.keys(commaString.attributes).sort(), ['code', 'sg_status_list']);
  });
});

describe('attachment sizes', () => {
  test('an upload made now has file_size and file_extension null; its bytes still download', async () => {
    const token = await bearer(site, 'coord');
    const client = api(site, token);
    const shot = byCode(site, 'Shot', 'sh060');
    const bytes = testBytes(70_000, 3);
    const begin = (await client.get(`/api/v1/entity/shots/${shot.id}/_upload?filename=size%20check.bin`)).json();
    assert.equal((await call(begin.links.upload, { method: 'PUT', body: bytes })).status, 200);
    assert.equal((await client.post(begin.links.complete_upload, { upload_info: begin.data, upload_data: {} })).status, 201);
    const [attachment] = (
      await client.search('attachments', [['attachment_links', 'is', { type: 'Shot', id: shot.id }], ['filename', 'is', 'size check.bin']], { fields: 'file_size,file_extension,this_file' })
    ).json().data;
    assert.equal(attachment.attributes.file_size, null);
    assert.equal(attachment.attributes.file_extension, null);
    const back = await download(site, token, `/api/v1/entity/attachments/${attachment.id}/this_file?alt=original`);
    assert.equal(sha256(back.body), sha256(bytes));
  });

  test('seeded attachments since 2025 state no size; an older one still does, and it is right', async () => {
    const token = await bearer(site);
    const rows = (await api(site, token).search('attachments', [], { fields: 'filename,file_size,file_extension,created_at,this_file' })).json().data;
    const uploads = rows.filter((a: any) => a.attributes.this_file?.link_type === 'upload');
    const sized = uploads.filter((a: any) => a.attributes.file_size !== null);
    const unsized = uploads.filter((a: any) => a.attributes.file_size === null);
    assert.ok(unsized.length >= 5, 'most seeded uploads are "since 2025"');
    assert.ok(unsized.every((a: any) => a.attributes.created_at >= '2025-01-01T00:00:00Z' && a.attributes.file_extension === null));
    assert.ok(sized.length >= 1, 'at least one old-style attachment keeps its size');
    assert.ok(sized.every((a: any) => a.attributes.created_at < '2025-01-01T00:00:00Z'));
    const brief = sized.find((a: any) => a.attributes.filename === 'sh010_brief.pdf');
    assert.ok(brief, 'sh010_brief.pdf is old-style');
    assert.equal(brief.attributes.file_extension, 'pdf');
    const bytes = await download(site, token, `/api/v1/entity/attachments/${brief.id}/this_file?alt=original`);
    assert.equal(bytes.body.length, brief.attributes.file_size);
    const movie = unsized.find((a: any) => a.attributes.filename === 'sh030_temp_mix.wav');
    assert.ok(movie, 'the large seeded file states no size');
  });

  test('completing before any PUT still answers 201, as live; the download then fails at storage', async () => {
    const token = await bearer(site, 'artist');
    const client = api(site, token);
    const version = byCode(site, 'Version', 'sh060_anim_v001');
    const begin = (await client.get(`/api/v1/entity/versions/${version.id}/sg_uploaded_movie/_upload?filename=never.mov`)).json();
    const complete = await client.post(begin.links.complete_upload, { upload_info: begin.data, upload_data: {} });
    assert.equal(complete.status, 201);
    const fetched = await download(site, token, `/api/v1/entity/versions/${version.id}/sg_uploaded_movie?alt=original`);
    assert.equal(fetched.status, 404);
    assert.match(fetched.body.toString(), /NoSuchKey/);
  });
});

describe("a local install (storageService 'sg')", () => {
  let local: SandboxSite;
  before(async () => {
    local = await startSandboxSite({ storageService: 'sg', thumbnailDelayMs: 0 });
  });
  after(async () => {
    await local?.close();
  });

  const begin = async (token: string, path: string) => {
    const reply = await api(local, token).get(path);
    assert.equal(reply.status, 200, reply.body.toString());
    return reply.json();
  };
  const put = (url: string, body: Buffer | Readable, token?: string, headers: Record<string, string> = {}) =>
    request(url, {
      method: 'PUT',
      body,
      headers: { 'content-type': 'application/octet-stream', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    }).then(async (response) => ({ status: response.statusCode, body: Buffer.from(await response.body.arrayBuffer()) }));

  test('the upload link is the site itself; the PUT needs the token and answers an upload_id that completing needs', async () => {
    const token = await bearer(local, 'artist');
    const client = api(local, token);
    const version = byCode(local, 'Version', 'sh030_comp_v001');
    const started = await begin(token, `/api/v1/entity/versions/${version.id}/sg_uploaded_movie/_upload?filename=local.mov`);
    assert.equal(started.data.storage_service, 'sg');
    assert.equal(started.data.multipart_upload, false);
    const link = new URL(started.links.upload);
    assert.equal(link.origin, local.url, "on the site's own host and port");
    for (const name of ['filename', 'expiration', 'signature', 'user_id', 'user_type']) assert.ok(link.searchParams.get(name), name);

    const bytes = testBytes(300_000, 21);
    assert.equal((await put(started.links.upload, bytes)).status, 401, 'no Bearer token: refused');
    const tampered = new URL(link);
    tampered.searchParams.set('signature', '0'.repeat(64));
    assert.equal((await put(tampered.toString(), bytes, token)).status, 403);
    const bare = await put(`${local.url}${link.pathname}?filename=local.mov`, bytes, token);
    assert.equal(bare.status, 400);
    assert.deepEqual(Object.keys(JSON.parse(bare.body.toString()).errors[0].source).sort(), ['expiration', 'signature', 'user_id', 'user_type']);
    const someoneElse = await bearer(local, 'coord');
    assert.equal((await put(started.links.upload, bytes, someoneElse)).status, 403, 'the link names the uploader');

    // Nothing stored yet: completing is refused (unlike on S3, the site knows).
    assert.equal((await client.post(started.links.complete_upload, { upload_info: started.data, upload_data: {} })).status, 400);
    const stored = await put(started.links.upload, bytes, token);
    assert.equal(stored.status, 200, stored.body.toString());
    const answer = JSON.parse(stored.body.toString());
    assert.deepEqual(Object.keys(answer.data).sort(), ['original_filename', 'upload_id']);
    assert.equal(answer.data.original_filename, 'local.mov');
    assert.equal(answer.links.complete_upload, started.links.complete_upload);
    assert.equal((await client.post(answer.links.complete_upload, { upload_info: started.data, upload_data: {} })).status, 400, 'upload_info without the upload_id');
    assert.equal((await client.post(answer.links.complete_upload, { upload_info: { ...started.data, upload_id: 'f'.repeat(32) }, upload_data: {} })).status, 400);
    const done = await client.post(answer.links.complete_upload, { upload_info: { ...started.data, ...answer.data }, upload_data: {} });
    assert.equal(done.status, 201, done.body.toString());

    const back = await download(local, token, `/api/v1/entity/versions/${version.id}/sg_uploaded_movie?alt=original`);
    assert.equal(back.status, 200);
    assert.equal(sha256(back.body), sha256(bytes));
  });

  test('record-level uploads go the same way; a body of unannounced length is refused 411', async () => {
    const token = await bearer(local, 'coord');
    const client = api(local, token);
    const shot = byCode(local, 'Shot', 'sh020');
    const started = await begin(token, `/api/v1/entity/shots/${shot.id}/_upload?filename=notes.txt`);
    assert.equal(started.data.storage_service, 'sg');
    const chunked = await put(started.links.upload, Readable.from([Buffer.from('streamed '), Buffer.from('notes')]), token);
    assert.equal(chunked.status, 411);
    const bytes = Buffer.from('local install notes\n');
    const answer = JSON.parse((await put(started.links.upload, bytes, token)).body.toString());
    assert.equal((await client.post(started.links.complete_upload, { upload_info: { ...started.data, upload_id: answer.data.upload_id }, upload_data: { display_name: 'Local notes' } })).status, 201);
    const [attachment] = (await client.search('attachments', [['attachment_links', 'is', { type: 'Shot', id: shot.id }], ['filename', 'is', 'notes.txt']], { fields: 'this_file,file_size' })).json().data;
    assert.equal(attachment.attributes.this_file.name, 'Local notes');
    assert.equal(attachment.attributes.file_size, null);
    assert.deepEqual((await download(local, token, `/file_serve/attachment/${attachment.id}`)).body, bytes);
  });

  test('no multipart on a local install: multipart_upload=true is refused 400', async () => {
    const client = api(local, await bearer(local, 'artist'));
    const version = byCode(local, 'Version', 'sh030_comp_v002');
    const reply = await client.get(`/api/v1/entity/versions/${version.id}/sg_uploaded_movie/_upload?filename=big.mov&multipart_upload=true`);
    assert.equal(reply.status, 400);
    assert.match(errorOf(reply).title, /Multipart upload is not supported/);
    assert.equal(local.storage.multipartUploadsInProgress(), 0);
  });

  test("on an S3 site the same PUT route has no signed link to honour: 400 naming the link's missing parameters", async () => {
    const token = await bearer(site, 'artist');
    const version = byCode(site, 'Version', 'sh030_comp_v001');
    const reply = await put(`${site.url}/api/v1/entity/versions/${version.id}/sg_uploaded_movie/_upload?filename=x.mov`, Buffer.from('x'), token);
    assert.equal(reply.status, 400);
  });
});

describe('the menu signs what a real site posts', () => {
  const launchFields = async (body: Record<string, unknown>): Promise<[string, string][]> => {
    const reply = await call(`${site.url}/sandbox/menu/launch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(reply.status, 200, reply.body.toString());
    return reply.json().fields;
  };
  const versionsPage = () => site.store.all('Version').filter((v) => (v.fields.project as { id: number }).id === site.store.all('Project').find((p) => p.fields.name === 'Demo')!.id);
  const uploadItem = () => site.store.all('ActionMenuItem').find((item) => String(item.fields.url).endsWith('/ami/upload-files'))!;
  const base = () => {
    const ids = versionsPage().map((v) => v.id);
    return { ami_id: uploadItem().id, login: 'artist', entity_type: 'Version', selected_ids: ids.slice(0, 2), page_ids: ids, sort_column: 'code', sort_direction: 'asc', session_uuid: crypto.randomUUID() };
  };
  const assertSigned = (fields: [string, string][]) => {
    const signature = fields.find(([name]) => name === 'signature')?.[1];
    assert.equal(signature, computeAmiSignature(fields.filter(([name]) => name !== 'signature'), site.amiSecret), 'the signature covers exactly what is posted');
  };

  test('an ungrouped page posts no blank field and no grouping field', async () => {
    const fields = await launchFields({ ...base(), grouping_column: '' });
    assert.deepEqual(fields.filter(([, value]) => value === ''), [], 'no blank values');
    assert.deepEqual(fields.filter(([name]) => name.startsWith('grouping_')), [], 'no grouping_* on an ungrouped page');
    for (const name of ['user_id', 'user_login', 'entity_type', 'selected_ids', 'ids', 'sort_column', 'timestamp', 'signature']) {
      assert.ok(fields.some(([field]) => field === name), name);
    }
    assertSigned(fields);
  });

  test('a grouped page posts its grouping fields; an item without a selection posts no selected_ids', async () => {
    const grouped = await launchFields({ ...base(), grouping_column: 'sg_status_list' });
    assert.deepEqual(
      grouped.filter(([name]) => name.startsWith('grouping_')),
      [['grouping_column', 'sg_status_list'], ['grouping_method', 'exact'], ['grouping_direction', 'asc']],
    );
    assertSigned(grouped);

    const item = site.store.insert('ActionMenuItem', {
      title: 'Page report', url: 'http://127.0.0.1:9/ami/page-report', entity_type: 'Version', list_order: 99, folder: null,
      selection_required: false, open_in_overlay: false, secret_token: 'report-secret', projects: [], permissions_groups: [],
    });
    try {
      const fields = await launchFields({ ...base(), ami_id: item.id, selected_ids: [], grouping_column: '' });
      assert.ok(!fields.some(([name]) => name === 'selected_ids'), 'nothing selected: no selected_ids at all');
      assert.deepEqual(fields.filter(([, value]) => value === ''), []);
      assert.equal(fields.find(([name]) => name === 'ids')?.[1], base().page_ids.join(','));
    } finally {
      site.store.retire(item);
    }
  });
});
