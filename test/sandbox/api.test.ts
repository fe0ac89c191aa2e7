import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { api, bearer, call, download, md5, scriptToken, sha256, testBytes } from '../helpers/sandbox-api.ts';

// The sandbox site's REST API over real sockets: auth, sudo, search and paging, records, uploads, downloads
// and injected faults — each as ShotGrid does it (../shared/protocol/shotgrid-rest.md).

const MiB = 1024 * 1024;
let site: SandboxSite;

before(async () => {
  site = await startSandboxSite({ thumbnailDelayMs: 300 });
});
after(async () => {
  await site.close();
});
beforeEach(() => site.faults.reset());

function errorOf(reply: { json(): any }) {
  const error = reply.json().errors[0];
  assert.match(error.id, /^[0-9a-f]{32}$/);
  return error as { status: number; code: number; title: string };
}

describe('auth', () => {
  test('client_credentials in the query string gives a Bearer token that opens the API', async () => {
    const reply = await scriptToken(site);
    assert.equal(reply.status, 200);
    const grant = reply.json();
    assert.equal(grant.token_type, 'Bearer');
    assert.equal(grant.expires_in, 600);
    assert.ok(grant.refresh_token);
    const projects = await api(site, grant.access_token).get('/api/v1/entity/projects?fields=name');
    assert.equal(projects.status, 200);
    assert.deepEqual(projects.json().data.map((p: any) => p.attributes.name).sort(), ['Backlot', 'Demo']);
  });

  test('a form body is accepted too, and a wrong key is refused with code 102', async () => {
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: site.scriptName, client_secret: site.scriptKey });
    const ok = await call(`${site.url}/api/v1/auth/access_token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: body.toString(),
    });
    assert.equal(ok.status, 200);
    const bad = await scriptToken(site, { key: 'wrong' });
    assert.equal(bad.status, 400);
    assert.equal(errorOf(bad).code, 102);
  });

  test('password grant for a person', async () => {
    const query = new URLSearchParams({ grant_type: 'password', username: 'artist', password: 'sandbox-password' });
    const reply = await call(`${site.url}/api/v1/auth/access_token?${query}`, { method: 'POST' });
    assert.equal(reply.status, 200);
    const wrong = await call(`${site.url}/api/v1/auth/access_token?${new URLSearchParams({ grant_type: 'password', username: 'artist', password: 'x' })}`, { method: 'POST' });
    assert.equal(wrong.status, 400);
  });

  test('refresh_token gives a new working access token, without the sudo of its grant, and is used up', async () => {
    const grant = (await scriptToken(site, { sudoAs: 'outsider' })).json();
    const refresh = async () =>
      call(`${site.url}/api/v1/auth/access_token?${new URLSearchParams({ grant_type: 'refresh_token', refresh_token: grant.refresh_token })}`, { method: 'POST' });
    const renewed = await refresh();
    assert.equal(renewed.status, 200);
    const token = renewed.json().access_token;
    assert.notEqual(token, grant.access_token);
    // The pessimistic reading (shotgrid-rest.md): a refreshed token is the script again, which sees Demo too.
    const projects = await api(site, token).get('/api/v1/entity/projects?fields=name');
    assert.deepEqual(projects.json().data.map((p: any) => p.attributes.name).sort(), ['Backlot', 'Demo']);
    assert.equal((await refresh()).status, 400);
  });

  test('expired and forged tokens get 401', async () => {
    const token = await bearer(site);
    assert.equal((await api(site, 'forged-token').get('/api/v1/entity/projects')).status, 401);
    assert.equal((await call(`${site.url}/api/v1/entity/projects`)).status, 401);
    site.faults.update({ tokenTtlSeconds: 0 });
    const expired = await api(site, token).get('/api/v1/entity/projects');
    assert.equal(expired.status, 401);
    assert.equal(errorOf(expired).code, 102);
  });
});

describe('sudo', () => {
  test('acting as a member sees their project only; the outsider sees none of Demo', async () => {
    const asArtist = api(site, await bearer(site, 'artist'));
    const asOutsider = api(site, await bearer(site, 'outsider'));
    const demoVersions = await asArtist.search('versions', [['project.Project.name', 'is', 'Demo']], { fields: ['code'] }).catch(() => null);
    void demoVersions;
    const artistCodes = (await asArtist.search('Version', [], { fields: ['code'] })).json().data.map((v: any) => v.attributes.code);
    assert.equal(artistCodes.length, 40);
    assert.ok(!artistCodes.includes('bl010_comp_v001'));
    const outsiderCodes = (await asOutsider.search('Version', [], { fields: ['code'] })).json().data.map((v: any) => v.attributes.code);
    assert.deepEqual(outsiderCodes, ['bl010_comp_v001']);
    const hidden = artistFirstVersionId();
    const read = await asOutsider.get(`/api/v1/entity/versions/${hidden}`);
    assert.equal(read.status, 404);
    assert.equal(errorOf(read).code, 104);
  });

  test('sudo is refused for unknown and inactive logins and for a script without the permission', async () => {
    for (const login of ['nobody', 'former']) {
      const reply = await scriptToken(site, { sudoAs: login });
      assert.equal(reply.status, 400, login);
      assert.equal(errorOf(reply).code, 102);
    }
    const query = new URLSearchParams({ grant_type: 'client_credentials', client_id: 'readonly-script', client_secret: 'readonly-key', scope: 'sudo_as_login:artist' });
    const reply = await call(`${site.url}/api/v1/auth/access_token?${query}`, { method: 'POST' });
    assert.equal(reply.status, 400);
    assert.equal(errorOf(reply).code, 102);
  });

  test('records created through sudo are authored by that user', async () => {
    const asCoord = api(site, await bearer(site, 'coord'));
    const created = await asCoord.post('/api/v1/entity/notes', { subject: 'sudo note', project: { type: 'Project', id: demoId() } });
    assert.equal(created.status, 201);
    const author = created.json().data.relationships.created_by.data;
    assert.equal(author.type, 'HumanUser');
    assert.equal(author.name, 'Cora Coordinator');
  });
});

function demoId(): number {
  return site.store.all('Project').find((p) => p.fields.name === 'Demo')!.id;
}
function artistFirstVersionId(): number {
  return site.store.all('Version').find((v) => v.fields.code === 'sh010_comp_v001')!.id;
}

describe('search and paging', () => {
  test('array and hash filter syntaxes find the same records', async () => {
    const client = api(site, await bearer(site));
    const array = await client.search('versions', [['code', 'starts_with', 'sh01'], ['sg_status_list', 'is', 'rev']], { fields: ['code'] });
    const hash = await client.search(
      'versions',
      { logical_operator: 'and', conditions: [['code', 'starts_with', 'sh01'], { path: 'sg_status_list', relation: 'is', values: ['rev'] }] },
      { fields: ['code'] },
      'hash',
    );
    assert.equal(array.status, 200);
    assert.equal(hash.status, 200);
    const codes = array.json().data.map((v: any) => v.attributes.code);
    assert.deepEqual(codes, ['sh010_comp_v003', 'sh010_anim_v003']);
    assert.deepEqual(hash.json().data.map((v: any) => v.attributes.code), codes);
  });

  test('entity and multi-entity filters', async () => {
    const client = api(site, await bearer(site));
    const shot = site.store.all('Shot').find((s) => s.fields.code === 'sh010')!;
    const links = await client.search('attachments', [['attachment_links', 'in', [{ type: 'Shot', id: shot.id }]]], { fields: ['filename'] });
    const names = links.json().data.map((a: any) => a.attributes.filename).sort();
    assert.deepEqual(names, ['Reference board', 'sh010_bg_v001.exr', 'sh010_brief.pdf', 'sh010_reference.png', 'sh010_shotlist.csv']);
    const byShot = await client.search('versions', [['entity', 'is', { type: 'Shot', id: shot.id }]], { fields: ['code'] });
    assert.equal(byShot.json().data.length, 6);
  });

  test('plain application/json is refused with 415; a bad filter with 400', async () => {
    const client = api(site, await bearer(site));
    assert.equal((await client.post('/api/v1/entity/versions/_search', { filters: [] })).status, 415);
    const bad = await client.search('versions', [['no_such_field', 'is', 1]]);
    assert.equal(bad.status, 400);
    assert.equal(errorOf(bad).code, 103);
  });

  test('paging walks every record once and links.next stays on an empty page', async () => {
    const client = api(site, await bearer(site));
    const seen: number[] = [];
    let path = '/api/v1/entity/versions/_search?page[size]=7&fields=code';
    for (let page = 1; page < 20; page++) {
      const reply = await client.post(`/api/v1/entity/versions/_search?page%5Bsize%5D=7&page%5Bnumber%5D=${page}&fields=code`, { filters: [] }, 'application/vnd+shotgun.api3_array+json');
      assert.equal(reply.status, 200);
      const body = reply.json();
      assert.ok(body.links.next, 'next link on every page');
      if (body.data.length === 0) break;
      seen.push(...body.data.map((v: any) => v.id));
      path = body.links.next;
    }
    assert.ok(path.includes('_search'));
    assert.equal(seen.length, 41);
    assert.equal(new Set(seen).size, 41);
    const tooBig = await client.post('/api/v1/entity/versions/_search?page%5Bsize%5D=501', { filters: [] }, 'application/vnd+shotgun.api3_array+json');
    assert.equal(tooBig.status, 400);
  });

  test('the list endpoint filters with filter[field]', async () => {
    const client = api(site, await bearer(site));
    const reply = await client.get('/api/v1/entity/versions?filter%5Bcode%5D=sh020_comp_v002&fields=code,entity');
    assert.equal(reply.status, 200);
    const [version] = reply.json().data;
    assert.equal(version.attributes.code, 'sh020_comp_v002');
    assert.equal(version.relationships.entity.data.name, 'sh020');
    assert.equal(version.relationships.entity.links.related, `/api/v1/entity/shots/${version.relationships.entity.data.id}`);
  });
});

describe('records', () => {
  test('create, read, update and delete a Version as a member', async () => {
    const client = api(site, await bearer(site, 'artist'));
    const shot = site.store.all('Shot').find((s) => s.fields.code === 'sh040')!;
    const created = await client.post('/api/v1/entity/versions', { code: 'sh040_comp_v004', project: { type: 'Project', id: demoId() }, entity: { type: 'Shot', id: shot.id } });
    assert.equal(created.status, 201);
    const id = created.json().data.id;
    const read = await client.get(`/api/v1/entity/Version/${id}?fields=code,sg_uploaded_movie,image`);
    assert.equal(read.json().data.attributes.code, 'sh040_comp_v004');
    assert.equal(read.json().data.attributes.sg_uploaded_movie, null);
    const updated = await client.put(`/api/v1/entity/versions/${id}`, { description: 'first pass' });
    assert.equal(updated.status, 200);
    assert.equal(updated.json().data.attributes.description, 'first pass');
    assert.equal((await client.put(`/api/v1/entity/versions/${id}`, { nope: 1 })).status, 400);
    assert.equal((await client.put(`/api/v1/entity/versions/${id}`, { id: 3 })).status, 400);
    assert.equal((await client.delete(`/api/v1/entity/versions/${id}`)).status, 204);
    assert.equal((await client.get(`/api/v1/entity/versions/${id}`)).status, 404);
  });

  test('a person creates Versions only where they may: not in a project they are not part of, nor linked to what they cannot see', async () => {
    const outsider = api(site, await bearer(site, 'outsider'));
    const count = site.store.all('Version').length;
    const shot = site.store.all('Shot').find((s) => s.fields.code === 'sh040')!;
    const inDemo = await outsider.post('/api/v1/entity/versions', { code: 'x', project: { type: 'Project', id: demoId() } });
    assert.equal(inDemo.status, 400, 'the project is not visible to them');
    const linked = await outsider.post('/api/v1/entity/versions', { code: 'x', entity: { type: 'Shot', id: shot.id } });
    assert.equal(linked.status, 400);
    assert.match(errorOf(linked).title, /not visible to this user/);
    assert.equal(site.store.all('Version').length, count, 'nothing was created');
    assert.equal((await outsider.delete(`/api/v1/entity/versions/${artistFirstVersionId()}`)).status, 404, 'nor deleted');
    const backlot = site.store.all('Project').find((p) => p.fields.name === 'Backlot')!;
    const own = await outsider.post('/api/v1/entity/versions?options[fields]=code,created_by', { code: 'bl010_comp_v002', project: { type: 'Project', id: backlot.id } });
    assert.equal(own.status, 201, 'in their own project they may');
    assert.equal(own.json().data.relationships.created_by.data.name, 'Otto Outsider');
    assert.equal((await outsider.delete(`/api/v1/entity/versions/${own.json().data.id}`)).status, 204);
  });

  test("a Playlist's versions and a Version's playlists are one connection: either end shows the other; a deleted Version leaves", async () => {
    const client = api(site, await bearer(site, 'coord'));
    const [a, b] = site.store.all('Version').filter((v) => String(v.fields.code).startsWith('sh030_anim'));
    const created = await client.post('/api/v1/entity/playlists', { code: 'Connections', project: { type: 'Project', id: demoId() }, versions: [{ type: 'Version', id: a!.id }] });
    assert.equal(created.status, 201);
    const playlist = created.json().data.id;
    const playlistsOf = async (id: number) => (await client.get(`/api/v1/entity/versions/${id}?fields=playlists`)).json().data.relationships.playlists.data.map((p: any) => p.id);
    assert.ok((await playlistsOf(a!.id)).includes(playlist));
    await client.put(`/api/v1/entity/versions/${b!.id}`, { playlists: [...(await playlistsOf(b!.id)).map((id: number) => ({ type: 'Playlist', id })), { type: 'Playlist', id: playlist }] });
    const versionsOf = async () => (await client.get(`/api/v1/entity/playlists/${playlist}?fields=versions`)).json().data.relationships.versions.data.map((v: any) => v.id);
    assert.deepEqual(await versionsOf(), [a!.id, b!.id]);
    await client.put(`/api/v1/entity/playlists/${playlist}`, { versions: [{ type: 'Version', id: b!.id }] });
    assert.ok(!(await playlistsOf(a!.id)).includes(playlist), 'taken off the playlist: the Version no longer lists it');
    assert.equal((await client.delete(`/api/v1/entity/versions/${b!.id}`)).status, 204);
    assert.deepEqual(await versionsOf(), []);
  });

  test('people may not change what they cannot see, nor site setup', async () => {
    const outsider = api(site, await bearer(site, 'outsider'));
    assert.equal((await outsider.put(`/api/v1/entity/versions/${artistFirstVersionId()}`, { description: 'x' })).status, 404);
    const artist = api(site, await bearer(site, 'artist'));
    const denied = await artist.put(`/api/v1/entity/projects/${demoId()}`, { name: 'Mine' });
    assert.equal(denied.status, 403);
  });

  test('file values of the three link types', async () => {
    const client = api(site, await bearer(site));
    const attachments = (await client.search('attachments', [], { fields: ['this_file', 'filename'] })).json().data;
    const byType = (type: string) => attachments.find((a: any) => a.attributes.this_file?.link_type === type).attributes.this_file;
    const upload = byType('upload');
    assert.equal(upload.type, 'Attachment');
    assert.equal(upload.url, `${site.url}/file_serve/attachment/${upload.id}`);
    const web = byType('web');
    assert.equal(web.url, 'https://example.com/reference/sh010');
    const local = byType('local');
    assert.equal(local.local_path_linux, '/mnt/projects/demo/shots/sh010/plates/sh010_bg_v001.exr');
    assert.equal(local.local_path_windows, 'P:\\demo\\shots\\sh010\\plates\\sh010_bg_v001.exr');
    assert.equal(local.local_storage.name, 'primary');
  });
});

interface UploadTarget {
  entity: string;
  id: number;
  field?: string;
}

async function upload(token: string, target: UploadTarget, name: string, bytes: Buffer, partSize?: number, uploadData: Record<string, unknown> = {}) {
  const client = api(site, token);
  const base = `/api/v1/entity/${target.entity}/${target.id}${target.field ? `/${target.field}` : ''}/_upload`;
  const begin = await client.get(`${base}?filename=${encodeURIComponent(name)}${partSize ? '&multipart_upload=true' : ''}`);
  assert.equal(begin.status, 200, begin.body.toString());
  const { data, links } = begin.json();
  assert.equal(new URL(links.upload).origin, site.storageUrl, 'bytes go straight to storage');
  const etags: string[] = [];
  let link: string = links.upload;
  let next: string | undefined = links.get_next_part;
  const size = partSize ?? bytes.length;
  for (let offset = 0; offset < bytes.length || offset === 0; offset += size) {
    const part = bytes.subarray(offset, offset + size);
    // As a real upload link takes it: Content-Length and Content-Type only (a Content-MD5 is refused, 403).
    const put = await call(link, { method: 'PUT', body: part, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(put.status, 200, put.body.toString());
    assert.equal(put.headers.etag, `"${md5(part)}"`);
    etags.push(String(put.headers.etag));
    if (offset + size >= bytes.length) break;
    const following = await client.get(next!);
    assert.equal(following.status, 200);
    link = following.json().links.upload;
    next = following.json().links.get_next_part;
  }
  const info = partSize ? { ...data, etags } : data;
  return { complete: await client.post(links.complete_upload, { upload_info: info, upload_data: uploadData }), data, links, etags };
}

describe('uploads', () => {
  test('a single-part upload to a Version movie field reads back byte-identical', async () => {
    const token = await bearer(site, 'artist');
    const version = site.store.all('Version').find((v) => v.fields.code === 'sh030_comp_v001')!;
    const bytes = testBytes(1.5 * MiB, 7);
    const { complete, data } = await upload(token, { entity: 'versions', id: version.id, field: 'sg_uploaded_movie' }, 'sh030_comp_v001.mov', bytes);
    assert.equal(data.upload_type, 'Attachment');
    assert.equal(data.multipart_upload, false);
    assert.equal(complete.status, 201);
    const field = (await api(site, token).get(`/api/v1/entity/versions/${version.id}?fields=sg_uploaded_movie,description`)).json().data.attributes;
    assert.equal(field.sg_uploaded_movie.name, 'sh030_comp_v001.mov');
    assert.equal(field.sg_uploaded_movie.content_type, 'video/quicktime');
    const viaField = await download(site, token, `/api/v1/entity/versions/${version.id}/sg_uploaded_movie?alt=original`);
    assert.equal(viaField.status, 200);
    assert.equal(sha256(viaField.body), sha256(bytes));
    const viaFileServe = await download(site, token, `/file_serve/attachment/${field.sg_uploaded_movie.id}`);
    assert.equal(sha256(viaFileServe.body), sha256(bytes));
  });

  test('a 23 MiB multipart upload in 5 MiB parts along the get_next_part chain is stored byte-identical', async () => {
    const token = await bearer(site, 'artist');
    const version = site.store.all('Version').find((v) => v.fields.code === 'sh030_comp_v002')!;
    const bytes = testBytes(23 * MiB, 11);
    const { complete, etags, data } = await upload(token, { entity: 'versions', id: version.id, field: 'sg_uploaded_movie' }, 'big.mov', bytes, 5 * MiB);
    assert.equal(complete.status, 201, complete.body.toString());
    assert.equal(etags.length, 5);
    assert.equal(data.multipart_upload, true);
    const back = await download(site, token, `/api/v1/entity/versions/${version.id}/sg_uploaded_movie?alt=original`);
    assert.equal(back.body.length, bytes.length);
    assert.equal(sha256(back.body), sha256(bytes));
    assert.equal(site.storage.multipartUploadsInProgress(), 0);
  });

  test('a record-level upload creates an Attachment linked to the record, with display name and tags', async () => {
    const token = await bearer(site, 'coord');
    const shot = site.store.all('Shot').find((s) => s.fields.code === 'sh050')!;
    const tag = site.store.all('Tag')[0]!;
    const bytes = Buffer.from('shot notes\n');
    const { complete, links } = await upload(token, { entity: 'shots', id: shot.id }, 'notes.txt', bytes, undefined, { display_name: 'Client notes', tags: [{ type: 'Tag', id: tag.id }] });
    assert.equal(links.complete_upload, `/api/v1/entity/shots/${shot.id}/_upload`);
    assert.equal(complete.status, 201);
    const found = await api(site, token).search('attachments', [['attachment_links', 'is', { type: 'Shot', id: shot.id }]], { fields: ['this_file', 'filename', 'file_size', 'tag_list', 'created_by'] });
    const [attachment] = found.json().data;
    assert.equal(attachment.attributes.this_file.name, 'Client notes');
    assert.equal(attachment.attributes.filename, 'notes.txt');
    assert.equal(attachment.attributes.file_size, null, 'created since 2025: no size stated');
    assert.equal(attachment.relationships.tag_list.data[0].id, tag.id);
    assert.equal(attachment.relationships.created_by.data.name, 'Cora Coordinator');
  });

  test('a thumbnail shows the transient placeholder, then a signed image', async () => {
    const token = await bearer(site, 'artist');
    const shot = site.store.all('Shot').find((s) => s.fields.code === 'sh060')!;
    const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8ffff3f0005fe02fea7d6a4c40000000049454e44ae426082', 'hex');
    const { complete, data } = await upload(token, { entity: 'shots', id: shot.id, field: 'image' }, 'thumb.png', png);
    assert.equal(data.upload_type, 'Thumbnail');
    assert.equal(complete.status, 201);
    const read = async () => (await api(site, token).get(`/api/v1/entity/shots/${shot.id}?fields=image`)).json().data.attributes.image as string;
    const pending = await read();
    assert.match(pending, /\/images\/status\/transient\/thumbnail_pending\.png$/);
    const placeholder = await call(pending);
    assert.equal(placeholder.status, 200);
    assert.equal(placeholder.headers['content-type'], 'image/png');
    await new Promise((resolve) => setTimeout(resolve, 400));
    const ready = await read();
    assert.ok(ready.startsWith(site.storageUrl));
    assert.equal(sha256((await call(ready)).body), sha256(png));
  });

  test('bytes that are no image make no thumbnail: placeholder, then null; TIFF and BMP make one', async () => {
    const token = await bearer(site, 'artist');
    const asset = site.store.all('Asset').find((a) => a.fields.code === 'forest')!;
    const read = async () => (await api(site, token).get(`/api/v1/entity/assets/${asset.id}?fields=image`)).json().data.attributes.image as string | null;
    assert.equal((await upload(token, { entity: 'assets', id: asset.id, field: 'image' }, 'forest.png', Buffer.from('no picture here'))).complete.status, 201);
    assert.match((await read())!, /\/images\/status\/transient\//, 'the site does not know yet');
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(await read(), null, 'processing failed: no thumbnail');
    for (const head of [[0x49, 0x49, 0x2a, 0x00], [0x42, 0x4d, 0x46, 0, 0, 0, 0, 0, 0, 0, 0x36]]) {
      const image = Buffer.concat([Buffer.from(head), testBytes(64, 9)]);
      assert.equal((await upload(token, { entity: 'assets', id: asset.id, field: 'image' }, 'forest.img', image)).complete.status, 201);
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.equal(sha256((await call((await read())!)).body), sha256(image));
    }
  });

  test('completion is refused without upload_info, upload_data or etags, and abort leaves nothing behind', async () => {
    const token = await bearer(site, 'artist');
    const client = api(site, token);
    const version = site.store.all('Version').find((v) => v.fields.code === 'sh040_anim_v001')!;
    const base = `/api/v1/entity/versions/${version.id}/sg_uploaded_movie/_upload`;
    assert.equal((await client.get(base)).status, 400, 'filename is required');
    const begin = (await client.get(`${base}?filename=x.mov&multipart_upload=true`)).json();
    const part = testBytes(5 * MiB, 3);
    assert.equal((await call(begin.links.upload, { method: 'PUT', body: part })).status, 200);
    assert.equal((await client.post(base, { upload_data: {} })).status, 400);
    assert.equal((await client.post(base, { upload_info: begin.data })).status, 400);
    const noEtags = await client.post(base, { upload_info: begin.data, upload_data: {} });
    assert.equal(noEtags.status, 400);
    const badEtag = await client.post(base, { upload_info: { ...begin.data, etags: ['"0123"'] }, upload_data: {} });
    assert.equal(badEtag.status, 400);
    assert.match(errorOf(badEtag).title, /InvalidPart/);
    assert.equal(site.storage.multipartUploadsInProgress(), 1);
    const abort = await client.post(`${base}/multipart_abort`, begin.data);
    assert.equal(abort.status, 204);
    assert.equal(site.storage.multipartUploadsInProgress(), 0);
    assert.equal((await client.get(`/api/v1/entity/versions/${version.id}?fields=sg_uploaded_movie`)).json().data.attributes.sg_uploaded_movie, null);
  });

  test('a person cannot upload to a record outside their projects', async () => {
    const outsider = api(site, await bearer(site, 'outsider'));
    const reply = await outsider.get(`/api/v1/entity/versions/${artistFirstVersionId()}/sg_uploaded_movie/_upload?filename=x.mov`);
    assert.equal(reply.status, 404);
  });
});

describe('downloads', () => {
  test('a Range read of a seeded file through its signed URL', async () => {
    const token = await bearer(site);
    const wav = site.store.all('Attachment').find((a) => a.fields.filename === 'sh030_temp_mix.wav')!;
    const full = await download(site, token, `/file_serve/attachment/${wav.id}`);
    assert.ok(full.body.length > 5 * MiB, 'several MiB');
    assert.match(String(full.headers['content-disposition']), /attachment; filename="sh030_temp_mix.wav"/);
    const part = await download(site, token, `/file_serve/attachment/${wav.id}`, { range: 'bytes=1000-1999' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 1000-1999/${full.body.length}`);
    assert.deepEqual(part.body, full.body.subarray(1000, 2000));
  });

  test('a signed URL is refused once expired (fault: early expiry)', async () => {
    const token = await bearer(site);
    const wav = site.store.all('Attachment').find((a) => a.fields.filename === 'sh010_brief.pdf')!;
    const first = await call(`${site.url}/file_serve/attachment/${wav.id}`, { headers: { authorization: `Bearer ${token}` } });
    site.faults.update({ signedUrlTtlSeconds: 0 });
    const expired = await call(String(first.headers.location));
    assert.equal(expired.status, 403);
    assert.match(expired.body.toString(), /<Code>AccessDenied<\/Code>/);
  });
});

describe('injected API faults', () => {
  test('429 with Retry-After, 502 from a proxy, 503', async () => {
    const client = api(site, await bearer(site));
    site.faults.update({ apiFailRate: 1, apiModes: ['429'], retryAfterSeconds: 7 });
    const limited = await client.get('/api/v1/entity/projects');
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '7');
    site.faults.update({ apiModes: ['502'] });
    const gateway = await client.get('/api/v1/entity/projects');
    assert.equal(gateway.status, 502);
    assert.match(String(gateway.headers['content-type']), /text\/html/);
    site.faults.update({ apiModes: ['503'] });
    assert.equal((await client.get('/api/v1/entity/projects')).status, 503);
    site.faults.reset();
    assert.equal((await client.get('/api/v1/entity/projects')).status, 200);
  });

  test('slow responses wait at least the configured latency', async () => {
    const client = api(site, await bearer(site));
    site.faults.update({ latencyMs: 250 });
    const started = performance.now();
    assert.equal((await client.get('/api/v1/entity/projects')).status, 200);
    assert.ok(performance.now() - started >= 240);
  });

  test('storage PUT failures through an upload link: 500, 503 SlowDown, reset', async () => {
    const token = await bearer(site, 'artist');
    const version = site.store.all('Version').find((v) => v.fields.code === 'sh050_comp_v001')!;
    const begin = (await api(site, token).get(`/api/v1/entity/versions/${version.id}/sg_uploaded_movie/_upload?filename=f.mov`)).json();
    const body = testBytes(256 * 1024, 5);
    site.faults.update({ storagePutFailRate: 1, storagePutModes: ['500'] });
    assert.equal((await call(begin.links.upload, { method: 'PUT', body })).status, 500);
    site.faults.update({ storagePutModes: ['503'] });
    const slowDown = await call(begin.links.upload, { method: 'PUT', body });
    assert.equal(slowDown.status, 503);
    assert.match(slowDown.body.toString(), /SlowDown/);
    site.faults.update({ storagePutModes: ['reset'] });
    await assert.rejects(call(begin.links.upload, { method: 'PUT', body }));
    site.faults.reset();
    assert.equal((await call(begin.links.upload, { method: 'PUT', body })).status, 200);
  });

  test('the admin endpoint sets, patches and clears faults, refusing bad settings', async () => {
    const admin = `${site.url}/sandbox/admin/faults`;
    const set = await call(admin, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ apiFailRate: 0.5 }) });
    assert.equal(set.status, 200);
    assert.equal(set.json().apiFailRate, 0.5);
    const bad = await call(admin, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ apiFailRate: 2 }) });
    assert.equal(bad.status, 400);
    assert.equal(bad.json().error.code, 'invalid_faults');
    assert.equal((await call(admin, { method: 'DELETE' })).json().apiFailRate, 0);
  });
});

describe('the detail pages result links lead to', () => {
  test('/detail/<Type>/<id> shows the entity, its fields and links to the entities it points at; an unknown one is 404', async () => {
    const site = await startSandboxSite();
    try {
      const version = site.store.all('Version').find((v) => v.fields.code === 'sh010_comp_v003')!;
      const page = await call(`${site.url}/detail/Version/${version.id}`);
      assert.equal(page.status, 200);
      const html = page.body.toString();
      assert.match(html, /<h1>sh010_comp_v003<\/h1>/);
      assert.match(html, /<a href="\/detail\/Shot\/\d+">sh010<\/a>/, 'its Shot, linked');
      assert.equal((await call(`${site.url}/detail/Version/999999`)).status, 404);
      assert.equal((await call(`${site.url}/detail/NoSuchType/1`)).status, 404);
    } finally {
      await site.close();
    }
  });
});
