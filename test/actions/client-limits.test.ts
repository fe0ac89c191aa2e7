import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { testBytes } from '../helpers/sandbox-api.ts';
import { launch, startServiceWithSandbox, type ServiceWithSandbox } from '../helpers/service.ts';
import { contentMd5, pageApi } from '../helpers/upload-client.ts';

// What no single client may take: time (a body that stops coming is cut after CLIENT_IDLE_SECONDS, while a part
// held up by slow storage is not) and requests in flight at once from one address.

const MiB = 1024 * 1024;
let env: ServiceWithSandbox;
before(async () => {
  env = await startServiceWithSandbox({ CLIENT_IDLE_SECONDS: '2', MAX_REQUESTS_PER_CLIENT: '4' });
});
after(async () => {
  await env.close();
});
const versionId = (code: string) => env.site.store.all('Version').find((v) => v.fields.code === code)!.id;

test('a part whose body stops coming is cut once the client has been idle that long; the upload can go on', async () => {
  const id = versionId('sh030_comp_v001');
  const page = await launch(env, 'upload-files', 'Version', [id]);
  const bytes = testBytes(9 * MiB, 71);
  const begun = await pageApi(page, 'POST', '', { name: 'sh030_comp_v001.mov', size: bytes.length, targets: [id] });
  const upload = begun.body.upload;
  const part = bytes.subarray(0, upload.partSize);
  const target = new URL(`${page.pageUrl}/uploads/${upload.id}/parts/1`);
  const socket = connect(Number(target.port), target.hostname);
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write(`PUT ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Length: ${part.length}\r\nContent-MD5: ${contentMd5(part)}\r\nX-CSRF-Token: ${page.token('uploads')}\r\n\r\n`);
  socket.write(part.subarray(0, 1 * MiB));
  const started = Date.now();
  await Promise.race([once(socket, 'close'), sleep(15_000)]);
  const waited = Date.now() - started;
  assert.ok(socket.destroyed, 'the service closed the stalled connection');
  assert.ok(waited >= 1500 && waited < 12_000, `after about the idle time (${waited} ms)`);
  // The page sends the part again, and it lands.
  const again = await pageApi(page, 'PUT', `/${upload.id}/parts/1`, part, { 'content-md5': contentMd5(part) });
  assert.equal(again.status, 200);
  await pageApi(page, 'DELETE', `/${upload.id}`);
});

test('a part held up by slow storage longer than the idle time is not cut: the client is not the one waited on', async () => {
  const id = versionId('sh030_comp_v002');
  const page = await launch(env, 'upload-files', 'Version', [id]);
  const bytes = testBytes(1 * MiB, 72);
  const begun = await pageApi(page, 'POST', '', { name: 'sh030_comp_v002.mov', size: bytes.length, targets: [id] });
  env.site.faults.update({ latencyMs: 3500 });
  try {
    const reply = await pageApi(page, 'PUT', `/${begun.body.upload.id}/parts/1`, bytes, { 'content-md5': contentMd5(bytes) });
    assert.equal(reply.status, 200);
  } finally {
    env.site.faults.reset();
  }
  await pageApi(page, 'DELETE', `/${begun.body.upload.id}`);
});

test('requests in flight from one address are capped: past it a 503 with Retry-After, and the others go on', async () => {
  env.site.faults.update({ latencyMs: 1500 });
  try {
    const answers = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const response = await request(`${env.service.url}/readyz`);
        await response.body.dump();
        return { status: response.statusCode, retryAfter: response.headers['retry-after'] };
      }),
    );
    const refused = answers.filter((answer) => answer.status === 503 && answer.retryAfter === '5');
    assert.equal(refused.length, 2, JSON.stringify(answers));
  } finally {
    env.site.faults.reset();
  }
});
