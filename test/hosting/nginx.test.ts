import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getGlobalDispatcher, request, setGlobalDispatcher, type Dispatcher } from 'undici';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { PUBLIC_PATH, startNginx, steadyPort, type NginxProxy } from '../helpers/nginx.ts';
import { sha256, testBytes } from '../helpers/sandbox-api.ts';
import { launch, TEST_SESSION_SECRET } from '../helpers/service.ts';
import { siteEnvironment, spawnService, type ServiceProcess } from '../helpers/service-process.ts';
import { contentMd5, pageApi, sendParts } from '../helpers/upload-client.ts';
import { prepareZip } from '../helpers/zip-client.ts';
import { fetchToFile, gate, heldBody, storedMovie, tapStorageParts, versionIds, withZipFolder, zipEntries } from '../helpers/hosting.ts';

// The service behind Debian's nginx, configured as the README's Deployment section says (the tests read the block
// from the README): TLS with a certificate made for the run, the service under /ami-transfer, request bodies and
// zips streamed. Everything a user does goes through the proxy: the launch (signed as the site's menu signs it),
// the page, an upload through the page's API and through the plain form, and a zip; every byte is checked by hash
// against what storage holds.

const MiB = 1024 * 1024;
let site: SandboxSite;
let service: ServiceProcess;
let proxy: NginxProxy;
let previousDispatcher: Dispatcher;

before(async () => {
  site = await startSandboxSite({});
  const port = await steadyPort();
  service = await spawnService(siteEnvironment(site, TEST_SESSION_SECRET, { PUBLIC_URL: `https://127.0.0.1:${port}${PUBLIC_PATH}`, TRUST_PROXY: '1' }));
  proxy = await startNginx({ port, upstreams: [`127.0.0.1:${service.port}`] });
  // Every request of the test (its helpers use undici's global dispatcher) trusts the test certificate.
  previousDispatcher = getGlobalDispatcher();
  setGlobalDispatcher(proxy.dispatcher);
});
after(async () => {
  if (previousDispatcher) setGlobalDispatcher(previousDispatcher);
  await proxy?.dispatcher.close();
  await proxy?.stop();
  await service?.stop();
  await site?.close();
});

/** The launch helper's service, reached through the proxy. */
const throughProxy = () => ({ site, service: { url: proxy.url } });

describe('behind nginx (TLS, path prefix)', { timeout: 120_000 }, () => {
  /** What the uploads stored, by Version code, for the zip to be checked against. */
  const uploaded = new Map<string, Buffer>();

  test('a launch is answered with the page under the prefix, over https, with the proxy\'s request id', async () => {
    const [id] = versionIds(site, 'sh040_comp_v003');
    const page = await launch(throughProxy(), 'upload-files', 'Version', [id!]);
    assert.ok(page.pageUrl.startsWith(`${proxy.url}/ami/upload-files/`), page.pageUrl);

    const response = await request(page.pageUrl, { headers: { accept: 'text/html' } });
    const html = await response.body.text();
    assert.equal(response.statusCode, 200, html);
    // PUBLIC_URL is https: the service says so (HSTS), and every link the page makes carries the prefix.
    assert.match(String(response.headers['strict-transport-security']), /max-age=\d+/);
    assert.ok(html.includes(`href="${PUBLIC_PATH}/public/style.css"`), 'the stylesheet under the prefix');
    assert.ok(html.includes(`${new URL(page.pageUrl).pathname}/uploads`), 'the upload API under the prefix');
    // nginx's $request_id (32 hex digits) became the service's request id (TRUST_PROXY=1).
    assert.match(String(response.headers['x-request-id']), /^[0-9a-f]{32}$/);

    const style = await request(`${proxy.url}/public/style.css`);
    await style.body.dump();
    assert.equal(style.statusCode, 200);
    assert.match(String(style.headers['content-type']), /^text\/css/);
  });

  test('an upload through the page\'s API streams through the proxy and lands byte-identical', async () => {
    const code = 'sh040_comp_v003';
    const ids = versionIds(site, code);
    const page = await launch(throughProxy(), 'upload-files', 'Version', ids);
    const bytes = testBytes(21 * MiB + 5, 41);
    const begun = await pageApi(page, 'POST', '', { name: `${code}.mov`, size: bytes.length, targets: ids });
    assert.equal(begun.status, 201, JSON.stringify(begun.body));
    const { id, partSize, partCount } = begun.body.upload as { id: string; partSize: number; partCount: number };
    assert.equal(partCount, 3);

    // Part 1's second half waits until storage has its first: the proxy passes bodies on as they come
    // (proxy_request_buffering off) instead of holding the part until the last byte.
    const tap = tapStorageParts(site);
    const hold = gate();
    const part = bytes.subarray(0, partSize);
    try {
      const sending = request(`${page.pageUrl}/uploads/${id}/parts/1`, {
        method: 'PUT',
        headers: { 'content-length': String(part.length), 'content-md5': contentMd5(part), 'x-csrf-token': page.token('uploads'), accept: 'application/json' },
        body: heldBody(part, hold.opened),
      });
      await tap.started(1, 15_000, 'part 1 while its second half was held back').finally(() => hold.open());
      const sent = await sending;
      assert.equal(sent.statusCode, 200, await sent.body.text());
      await sent.body.dump();
    } finally {
      hold.open();
      tap.restore();
    }
    await sendParts(page, { id, partSize, partCount, partsDone: [1] }, bytes);
    const done = await pageApi(page, 'POST', `/${id}/complete`);
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.upload.results[0].ok, true, JSON.stringify(done.body.upload.results));
    assert.equal(sha256(await storedMovie(site, ids[0]!)), sha256(bytes));
    uploaded.set(code, bytes);
  });

  test('the plain form (no JavaScript) streams through the proxy and lands byte-identical', async () => {
    const code = 'sh050_anim_v001';
    const ids = versionIds(site, code);
    const page = await launch(throughProxy(), 'upload-files', 'Version', ids);
    const bytes = testBytes(17 * MiB + 7, 42);
    const form = new FormData();
    form.set('mode', 'match');
    form.append('files', new Blob([new Uint8Array(bytes)]), `${code}.mov`);
    const encoded = new Response(form);
    const response = await request(`${page.pageUrl}/form-upload?csrf_token=${page.token('form-upload')}`, {
      method: 'POST',
      headers: { 'content-type': encoded.headers.get('content-type')!, accept: 'text/html' },
      body: Buffer.from(await encoded.arrayBuffer()),
    });
    const html = await response.body.text();
    assert.equal(response.statusCode, 200, html);
    assert.equal(sha256(await storedMovie(site, ids[0]!)), sha256(bytes));
    uploaded.set(code, bytes);
  });

  test('a zip of both streams through the proxy with its exact length, each file byte-identical to storage', async () => {
    assert.equal(uploaded.size, 2, 'runs after the two uploads above');
    const codes = [...uploaded.keys()];
    const ids = versionIds(site, ...codes);
    const page = await launch(throughProxy(), 'download-zip', 'Version', ids);
    const zip = await prepareZip(page, 'fields');
    assert.equal(zip.status.state, 'ready', JSON.stringify(zip.status));
    assert.ok(zip.fileUrl.startsWith(`${proxy.url}/ami/download-zip/`), zip.fileUrl);

    await withZipFolder(async (folder) => {
      const fetched = await fetchToFile(zip.fileUrl, folder);
      assert.equal(fetched.status, 200);
      assert.equal(fetched.bytes, Number(fetched.headers['content-length']), 'the whole announced length arrived');
      const entries = await zipEntries(fetched.path);
      for (const [index, code] of codes.entries()) {
        const inZip = entries.filter((entry) => entry.name.startsWith(`Version/${code}/`));
        assert.equal(inZip.length, 1, `one file of ${code}: ${entries.map((entry) => entry.name).join(', ')}`);
        // Against what storage holds (not only what was sent): the zip is what the site has.
        assert.equal(inZip[0]!.sha256, sha256(await storedMovie(site, ids[index]!)), code);
        assert.equal(inZip[0]!.sha256, sha256(uploaded.get(code)!), code);
      }
    });
  });
});
