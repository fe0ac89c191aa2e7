import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Agent, getGlobalDispatcher, request, setGlobalDispatcher, type Dispatcher } from 'undici';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { sha256, testBytes } from '../helpers/sandbox-api.ts';
import { launch, TEST_SESSION_SECRET, type Launched } from '../helpers/service.ts';
import { siteEnvironment, spawnService, type ServiceProcess } from '../helpers/service-process.ts';
import { PROXY_SOURCE_ADDRESS, startTinyproxy, type Tinyproxy } from '../helpers/tinyproxy.ts';
import { pageApi, sendParts } from '../helpers/upload-client.ts';
import { prepareZip } from '../helpers/zip-client.ts';
import { fetchToFile, storedMovie, versionIds, withZipFolder, zipEntries } from '../helpers/hosting.ts';

// A production-like run of the service as its own process: its way out is a real proxy (Debian's tinyproxy, with
// Basic credentials), and the site and its storage accept no connection but the proxy's (tinyproxy connects from
// 127.0.0.2; this test's own requests from 127.0.0.3): an upload through the page's API and one through the plain
// form, a zip, retries forced by the sandbox's faults, and refused requests. Then: the proxy saw the site and
// storage, the metrics (on their own port, not the public one) counted it all, and no line of the debug log holds
// a secret: token, key, signature, signed query string, proxy credential or context id.

const MiB = 1024 * 1024;
/** Where this test's own requests come from: the sandbox lets them in beside the proxy's. */
const TEST_SOURCE_ADDRESS = '127.0.0.3';

let proxy: Tinyproxy;
let site: SandboxSite;
let service: ServiceProcess;
let previousDispatcher: Dispatcher;
const ownDispatcher = new Agent({ localAddress: TEST_SOURCE_ADDRESS });
/** Client addresses the site or its storage refused: anything the service sent around the proxy. */
const refusedClients: string[] = [];
/** What each step launched, for the log scan. */
const launched: Launched[] = [];
const secrets = {
  scriptKey: `script-key-${randomBytes(12).toString('hex')}`,
  amiSecret: `ami-secret-${randomBytes(12).toString('hex')}`,
  proxyPassword: `proxy-pw-${randomBytes(12).toString('hex')}`,
};

before(async () => {
  previousDispatcher = getGlobalDispatcher();
  setGlobalDispatcher(ownDispatcher);
  proxy = await startTinyproxy({ user: 'studio-egress', password: secrets.proxyPassword });
  site = await startSandboxSite({
    scriptKey: secrets.scriptKey,
    amiSecret: secrets.amiSecret,
    acceptClient: (address) => {
      const accepted = address === PROXY_SOURCE_ADDRESS || address === TEST_SOURCE_ADDRESS;
      if (!accepted) refusedClients.push(address);
      return accepted;
    },
  });
  service = await spawnService(
    siteEnvironment(site, TEST_SESSION_SECRET, {
      LOG_LEVEL: 'debug',
      HTTPS_PROXY: proxy.url,
      http_proxy: proxy.url,
      // Parsed and obeyed, but lists neither the site nor its storage: both go through the proxy.
      NO_PROXY: 'intranet.studio.lan,10.20.30.40',
      METRICS_PORT: '0',
    }),
  );
});
after(async () => {
  if (previousDispatcher) setGlobalDispatcher(previousDispatcher);
  await service?.stop();
  await site?.close();
  await proxy?.stop();
  await ownDispatcher.close();
});

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const response = await request(url, { headers });
  return { status: response.statusCode, text: await response.body.text() };
}

/** The sum of a metric's samples whose labels include `labels` (Prometheus text format). */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [, sample, labelText = '', value] of text.matchAll(/^([a-z_:]+)(?:\{([^}]*)\})? (\S+)$/gm)) {
    if (sample !== name) continue;
    const has = Object.fromEntries([...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((match) => [match[1], match[2]]));
    if (Object.entries(labels).every(([key, wanted]) => has[key] === wanted)) sum += Number(value);
  }
  return sum;
}

describe('production run: through the outbound proxy, metrics, logs', { timeout: 120_000 }, () => {
  const uploaded = new Map<string, Buffer>();

  test('an upload through the page\'s API, its parts failing at storage and the API failing now and then: stored byte-identical', async () => {
    const code = 'sh040_comp_v003';
    const ids = versionIds(site, code);
    // Two API calls fail (429, 502 or 503): the service retries them.
    site.faults.update({ apiFailCount: 2 });
    const page = await launch({ site, service }, 'upload-files', 'Version', ids);
    launched.push(page);
    const bytes = testBytes(17 * MiB + 3, 61);
    const begun = await pageApi(page, 'POST', '', { name: `${code}.mov`, size: bytes.length, targets: ids });
    assert.equal(begun.status, 201, JSON.stringify(begun.body));
    // Two part PUTs fail at storage: answered 503 part_failed, and sent again as the page does.
    site.faults.update({ storagePutFailCount: 2, storagePutModes: ['503', '500'] });
    const puts = await sendParts(page, begun.body.upload, bytes);
    assert.equal(puts, begun.body.upload.partCount + 2, 'each failed part was sent again');
    const done = await pageApi(page, 'POST', `/${begun.body.upload.id}/complete`);
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.upload.results[0].ok, true, JSON.stringify(done.body.upload.results));
    assert.equal(sha256(await storedMovie(site, ids[0]!)), sha256(bytes));
    uploaded.set(code, bytes);
  });

  test('the plain form: its held parts go through the proxy too, a failed one retried by the service', async () => {
    const code = 'sh050_anim_v001';
    const ids = versionIds(site, code);
    const page = await launch({ site, service }, 'upload-files', 'Version', ids);
    launched.push(page);
    const bytes = testBytes(5 * MiB + 11, 62);
    const form = new FormData();
    form.set('mode', 'match');
    form.append('files', new Blob([new Uint8Array(bytes)]), `${code}.mov`);
    const encoded = new Response(form);
    site.faults.update({ storagePutFailCount: 1, storagePutModes: ['503'] });
    const response = await request(`${page.pageUrl}/form-upload?csrf_token=${page.token('form-upload')}`, {
      method: 'POST',
      headers: { 'content-type': encoded.headers.get('content-type')!, accept: 'text/html' },
      body: Buffer.from(await encoded.arrayBuffer()),
    });
    assert.equal(response.statusCode, 200, await response.body.text());
    assert.equal(sha256(await storedMovie(site, ids[0]!)), sha256(bytes));
    uploaded.set(code, bytes);
  });

  test('a zip of both, a storage connection dropped mid-file and resumed: every file byte-identical', async () => {
    assert.equal(uploaded.size, 2, 'runs after the uploads above');
    const codes = [...uploaded.keys()];
    const ids = versionIds(site, ...codes);
    const page = await launch({ site, service }, 'download-zip', 'Version', ids);
    launched.push(page);
    const zip = await prepareZip(page, 'fields');
    assert.equal(zip.status.state, 'ready', JSON.stringify(zip.status));
    site.faults.update({ storageGetResetCount: 1 });
    await withZipFolder(async (folder) => {
      const fetched = await fetchToFile(zip.fileUrl, folder);
      assert.equal(fetched.status, 200);
      assert.equal(fetched.bytes, Number(fetched.headers['content-length']));
      const entries = await zipEntries(fetched.path);
      for (const code of codes) {
        const entry = entries.find((candidate) => candidate.name.startsWith(`Version/${code}/`));
        assert.equal(entry?.sha256, sha256(uploaded.get(code)!), code);
      }
    });
    assert.equal(site.faults.settings.storageGetResetCount, 0, 'the dropped connection happened');
  });

  test('refused requests: a forged signature, a launch that never was, a part without its CSRF token, a signed-looking query', async () => {
    const [id] = versionIds(site, 'sh040_comp_v003');
    const forged = new URLSearchParams({ user_login: 'artist', user_id: '1', entity_type: 'Version', selected_ids: String(id), timestamp: new Date().toISOString().slice(0, 19) + 'Z', signature: randomBytes(20).toString('hex') });
    const refusedLaunch = await request(`${service.url}/ami/upload-files`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: forged.toString() });
    await refusedLaunch.body.dump();
    assert.ok([400, 401].includes(refusedLaunch.statusCode), `forged launch: ${refusedLaunch.statusCode}`);

    const unknownContext = randomBytes(32).toString('base64url');
    launched.push({ pageUrl: '', contextId: unknownContext, signature: forged.get('signature')!, token: () => '' });
    assert.equal((await get(`${service.url}/ami/upload-files/${unknownContext}`, { accept: 'application/json' })).status, 410);

    const page = launched[0]!;
    const noToken = await request(`${page.pageUrl}/uploads/nope/parts/1`, { method: 'PUT', headers: { accept: 'application/json', 'content-length': '3' }, body: 'abc' });
    await noToken.body.dump();
    assert.equal(noToken.statusCode, 403);

    const signedQuery = `${service.url}/no/such/page?X-Amz-Signature=${'ab'.repeat(32)}&X-Amz-Credential=AKIAQUERYSECRET&access_token=${randomBytes(24).toString('base64url')}`;
    assert.equal((await get(signedQuery, { authorization: `Bearer ${randomBytes(24).toString('base64url')}` })).status, 404);
  });

  test('the site and its storage were reached only through the proxy, which opened tunnels to both', async () => {
    assert.deepEqual(refusedClients, [], 'no connection reached the site or storage around the proxy');
    const tunnels = await proxy.tunnels();
    const siteHost = new URL(site.url).host;
    const storageHost = new URL(site.storageUrl).host;
    assert.ok(tunnels.includes(siteHost), `tunnels to the site: ${tunnels.join(', ')}`);
    assert.ok(tunnels.includes(storageHost), `tunnels to storage: ${tunnels.join(', ')}`);
    assert.ok(tunnels.every((tunnel) => tunnel === siteHost || tunnel === storageHost), `nothing else: ${tunnels.join(', ')}`);
  });

  test('metrics: not on the public port; on their own port, counting the run', async () => {
    assert.equal((await get(`${service.url}/metrics`)).status, 404, 'the public port has no metrics');
    assert.equal((await get(`${new URL(service.url).origin}/metrics`)).status, 404);
    const metricsUrl = String((await service.logLine(/serving Prometheus metrics/))['metricsUrl']);
    assert.notEqual(new URL(metricsUrl).port, String(service.port));
    assert.equal((await get(`${service.url}/readyz`)).status, 200);

    const { status, text } = await get(metricsUrl);
    assert.equal(status, 200);
    const sent = [...uploaded.values()].reduce((sum, bytes) => sum + bytes.length, 0);
    assert.ok(metric(text, 'ami_transfer_bytes_total', { direction: 'up' }) >= sent, 'bytes stored');
    assert.ok(metric(text, 'ami_transfer_bytes_total', { direction: 'down' }) >= sent, 'bytes fetched for the zip');
    assert.equal(metric(text, 'ami_transfer_requests_total', { action: 'upload-files', kind: 'part', outcome: 'ok' }), 3);
    assert.equal(metric(text, 'ami_transfer_requests_total', { action: 'upload-files', kind: 'part', outcome: 'failed' }), 2, 'the two 503s');
    assert.equal(metric(text, 'ami_transfer_requests_total', { action: 'upload-files', kind: 'part', outcome: 'refused' }), 1, 'the part without its token');
    assert.equal(metric(text, 'ami_transfer_requests_total', { action: 'upload-files', kind: 'form', outcome: 'ok' }), 1);
    assert.equal(metric(text, 'ami_transfer_requests_total', { action: 'upload-files', kind: 'complete', outcome: 'ok' }), 1);
    assert.equal(metric(text, 'ami_transfer_requests_total', { action: 'download-zip', kind: 'zip', outcome: 'ok' }), 1);
    assert.equal(metric(text, 'ami_transfer_request_duration_seconds_count', { action: 'download-zip', kind: 'zip' }), 1);
    assert.equal(metric(text, 'ami_transfer_requests_in_flight'), 0);
    assert.ok(metric(text, 'ami_transfer_retries_total', { operation: 'site_api' }) >= 2, 'the API calls that failed were retried');
    assert.equal(metric(text, 'ami_transfer_retries_total', { operation: 'storage_put' }), 1, "the form's held part");
    assert.equal(metric(text, 'ami_transfer_retries_total', { operation: 'storage_get', cause: 'connection_dropped' }), 1);
    assert.equal(metric(text, 'ami_transfer_storage_refusals_total', { operation: 'put' }), 3);
    assert.equal(metric(text, 'ami_transfer_dependency_up', { dependency: 'site' }), 1);
    assert.equal(metric(text, 'ami_transfer_dependency_up', { dependency: 'store' }), 1);
    assert.ok(metric(text, 'process_cpu_seconds_total') > 0, "Node's own figures too");
  });

  test('no line of the debug log holds a secret', async () => {
    const lines = [...service.lines.map((line) => JSON.stringify(line)), ...service.stderr().split('\n')];
    assert.ok(lines.length > 30 && lines.some((line) => line.includes('"level":"debug"')), `a debug log was kept (${lines.length} lines)`);
    const known: [string, string][] = [
      ['script key', secrets.scriptKey],
      ['AMI secret', secrets.amiSecret],
      ['session secret', TEST_SESSION_SECRET],
      ['proxy password', secrets.proxyPassword],
      ['proxy credentials', `studio-egress:${secrets.proxyPassword}`],
      ["storage's signing key", 'sandbox-storage-secret-key'],
      ["storage's key id", 'AKIASANDBOXSTORAGE01'],
      ['a signed query in a refused URL', 'AKIAQUERYSECRET'],
      ...site.issuedTokens().map((token): [string, string] => ['a site token', token]),
      ...launched.flatMap((page): [string, string][] => [
        ['a context id', page.contextId],
        ['an AMI signature', page.signature],
      ]),
    ];
    assert.ok(site.issuedTokens().length >= 4, 'the run minted tokens to look for');
    const leaks: string[] = [];
    for (const line of lines) {
      for (const [what, value] of known) if (value !== '' && line.includes(value)) leaks.push(`${what} in ${line}`);
      // Signed URLs' query values, whatever their names' case, are masked wherever a URL is logged.
      for (const match of line.matchAll(/[?&]((?:X-Amz-|X-Goog-)?(?:Signature|Credential|Security-Token|sig|token|access_token))=([^&"\s]*)/gi)) {
        if (match[2] !== '[redacted]') leaks.push(`a signed query string (${match[1]}) in ${line}`);
      }
      if (/Bearer (?!\[redacted\])\S/i.test(line)) leaks.push(`a bearer token in ${line}`);
      // Anything else that looks like an opaque token (32+ base64url characters, not all hex: hashes and ids are hex).
      for (const [token] of line.matchAll(/[A-Za-z0-9_-]{32,}/g)) {
        if (!/^[0-9a-f-]+$/i.test(token)) leaks.push(`an opaque token ${token} in ${line}`);
      }
    }
    assert.deepEqual(leaks, []);
  });
});
