import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { gate, heldBody, tapStorageParts, versionIds } from '../helpers/hosting.ts';
import { testBytes } from '../helpers/sandbox-api.ts';
import { launch, TEST_SESSION_SECRET } from '../helpers/service.ts';
import { siteEnvironment, spawnService, type ServiceProcess } from '../helpers/service-process.ts';
import { contentMd5, pageApi } from '../helpers/upload-client.ts';

// What a proxy sees of an instance told to stop, with no proxy in between: new connections are refused (nginx then
// passes the request to the next instance), and a part in flight is finished and answered with `Connection: close`,
// so the proxy does not pool that connection and send its next request down it as the instance closes it.
// test/hosting/instances.test.ts shows the same through nginx with two instances.

const MiB = 1024 * 1024;
let site: SandboxSite;
let service: ServiceProcess;

before(async () => {
  site = await startSandboxSite({});
  service = await spawnService(siteEnvironment(site, TEST_SESSION_SECRET));
});
after(async () => {
  await service?.stop();
  await site?.close();
});

test('SIGTERM: new connections are refused, a part in flight is finished and answered Connection: close, exit 0', async () => {
  const ids = versionIds(site, 'sh040_comp_v003');
  const page = await launch({ site, service }, 'upload-files', 'Version', ids);
  const bytes = testBytes(9 * MiB, 61);
  const begun = await pageApi(page, 'POST', '', { name: 'sh040_comp_v003.mov', size: bytes.length, targets: ids });
  assert.equal(begun.status, 201, JSON.stringify(begun.body));
  const part = bytes.subarray(0, begun.body.upload.partSize);

  const tap = tapStorageParts(site);
  const hold = gate();
  const keepAlive = new Agent();
  try {
    const sending = request(`${page.pageUrl}/uploads/${begun.body.upload.id}/parts/1`, {
      method: 'PUT',
      dispatcher: keepAlive,
      headers: { 'content-length': String(part.length), 'content-md5': contentMd5(part), 'x-csrf-token': page.token('uploads'), accept: 'application/json' },
      body: heldBody(part, hold.opened),
    });
    await tap.started(1, 20_000, 'part 1 in flight');
    service.child.kill('SIGTERM');
    await service.logLine(/^shutting down/);

    const fresh = new Agent();
    await assert.rejects(request(`${service.url}/healthz`, { dispatcher: fresh }), (error: Error & { code?: string }) => error.code === 'ECONNREFUSED');
    await fresh.close();

    hold.open();
    const answer = await sending;
    const body = await answer.body.text();
    assert.equal(answer.statusCode, 200, body);
    assert.equal(answer.headers['connection'], 'close', 'the proxy is told not to reuse the connection');
    assert.equal(await service.exited, 0, 'nothing had to be cut');
  } finally {
    hold.open();
    tap.restore();
    await keepAlive.close();
  }
});
