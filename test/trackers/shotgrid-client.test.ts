import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { ShotgridClient } from '../../src/trackers/shotgrid/client.ts';
import { ShotgridError } from '../../src/trackers/shotgrid/errors.ts';
import { bearer, call, download, md5, sha256, testBytes } from '../helpers/sandbox-api.ts';

// The service's ShotGrid client against the sandbox site over real sockets.

let site: SandboxSite;
let client: ShotgridClient;
const fastRetries = { attempts: 4, baseDelayMs: 5, maxDelayMs: 50 };

before(async () => {
  site = await startSandboxSite();
  client = new ShotgridClient({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: site.scriptKey, retry: fastRetries });
});
after(async () => {
  await client.close();
  await site.close();
});
beforeEach(() => site.faults.reset());

describe('ShotgridClient', () => {
  test('find pages through every match, flattening relationships', async () => {
    const versions = await client.as(null).find('Version', [['project.Project.name', 'is', 'Demo']], ['code', 'entity'], { pageSize: 7 });
    assert.equal(versions.length, 40);
    assert.equal(new Set(versions.map((v) => v.id)).size, 40);
    const first = versions.find((v) => v.code === 'sh010_comp_v001')!;
    assert.deepEqual(first.entity, { type: 'Shot', id: (first.entity as { id: number }).id, name: 'sh010' });
  });

  test('acting as a user applies their permissions', async () => {
    const outsider = await client.as('outsider').find('Version', [], ['code']);
    assert.deepEqual(outsider.map((v) => v.code), ['bl010_comp_v001']);
    const hidden = site.store.all('Version').find((v) => v.fields.code === 'sh010_comp_v001')!;
    assert.equal(await client.as('outsider').read('Version', hidden.id, ['code']), null);
    assert.equal((await client.as('artist').read('Version', hidden.id, ['code']))?.code, 'sh010_comp_v001');
  });

  test('a refused sudo is an auth error, not retried', async () => {
    await assert.rejects(client.as('former').find('Version', [], ['code']), (error: unknown) => {
      assert.ok(error instanceof ShotgridError);
      assert.equal(error.kind, 'auth');
      assert.equal(error.code, 102);
      return true;
    });
  });

  test('an expired token is renewed and the call goes through', async () => {
    const session = client.as('coord');
    await session.find('Project', [], ['name']);
    site.faults.update({ tokenTtlSeconds: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const projects = await session.find('Project', [], ['name']);
    assert.deepEqual(projects.map((p) => p.name), ['Demo']);
  });

  test('429, 502 and 503 are retried (Retry-After honoured); a lasting outage fails clearly', async () => {
    site.faults.update({ apiFailCount: 3, apiModes: ['429', '502', '503'], retryAfterSeconds: 0 });
    const projects = await client.as(null).find('Project', [], ['name']);
    assert.equal(projects.length, 2);
    assert.equal(site.faults.settings.apiFailCount, 0);
    site.faults.update({ apiFailRate: 1, apiModes: ['503'] });
    await assert.rejects(client.as(null).read('Project', 1, ['name']), (error: unknown) => error instanceof ShotgridError && error.kind === 'unavailable');
  });

  test('a create is not retried after a 502, where the site may have acted', async () => {
    site.faults.update({ apiFailCount: 1, apiModes: ['502'] });
    const demo = site.store.all('Project').find((p) => p.fields.name === 'Demo')!;
    await assert.rejects(client.as('artist').create('Note', { subject: 'once', project: { type: 'Project', id: demo.id } }), (error: unknown) => error instanceof ShotgridError && error.status === 502);
  });

  test('upload links, a multipart upload and completion, then the file reads back byte-identical', async () => {
    const session = client.as('artist');
    const version = site.store.all('Version').find((v) => v.fields.code === 'sh040_comp_v002')!;
    const bytes = testBytes(11 * 1024 * 1024, 21);
    const start = await session.beginUpload({ type: 'Version', id: version.id, field: 'sg_uploaded_movie' }, 'sh040_comp_v002.mov', true);
    const partSize = 5 * 1024 * 1024;
    const etags: string[] = [];
    let url = start.uploadUrl;
    let next = start.nextPartPath!;
    for (let offset = 0; offset < bytes.length; offset += partSize) {
      const part = bytes.subarray(offset, offset + partSize);
      const put = await call(url, { method: 'PUT', body: part });
      assert.equal(put.headers.etag, `"${md5(part)}"`);
      etags.push(String(put.headers.etag));
      if (offset + partSize < bytes.length) ({ uploadUrl: url, nextPartPath: next } = await session.nextPart(next));
    }
    await session.completeUpload(start.completePath, { ...start.info, etags }, { display_name: 'Comp v002' });
    const read = await session.read('Version', version.id, ['sg_uploaded_movie']);
    const movie = read!.sg_uploaded_movie as { url: string; name: string };
    assert.equal(movie.name, 'Comp v002');
    const stored = await download(site, await bearer(site, 'artist'), new URL(movie.url).pathname);
    assert.equal(stored.status, 200);
    assert.equal(sha256(stored.body), sha256(bytes));
  });

  test('an aborted multipart upload leaves nothing in storage', async () => {
    const session = client.as('artist');
    const version = site.store.all('Version').find((v) => v.fields.code === 'sh040_comp_v001')!;
    const start = await session.beginUpload({ type: 'Version', id: version.id, field: 'sg_uploaded_movie' }, 'x.mov', true);
    await call(start.uploadUrl, { method: 'PUT', body: testBytes(1024) });
    assert.equal(site.storage.multipartUploadsInProgress(), 1);
    await session.abortUpload(start.completePath, start.info);
    assert.equal(site.storage.multipartUploadsInProgress(), 0);
  });

  test('links outside the site API are refused (no SSRF through a link)', async () => {
    await assert.rejects(client.as(null).nextPart('http://169.254.169.254/latest/meta-data'), (error: unknown) => error instanceof ShotgridError && error.kind === 'protocol');
    await assert.rejects(client.as(null).nextPart(`${site.url}/sandbox/admin/faults`), (error: unknown) => error instanceof ShotgridError && error.kind === 'protocol');
  });

  test('checkReachable fails on wrong credentials and on a closed port', async () => {
    await client.checkReachable();
    const wrong = new ShotgridClient({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: 'nope', retry: fastRetries });
    await assert.rejects(wrong.checkReachable(), (error: unknown) => error instanceof ShotgridError && error.kind === 'auth');
    await wrong.close();
    const closed = new ShotgridClient({ siteUrl: 'http://127.0.0.1:9', scriptName: 'x', scriptKey: 'y', retry: fastRetries });
    await assert.rejects(closed.checkReachable());
    await closed.close();
  });
});
