import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { launch, startServiceWithSandbox, type ServiceWithSandbox } from './helpers/service.ts';

// Requests under launches are limited per user and per minute, in the key-value store: past the limit a clear
// 429 with Retry-After, for that user only.

let env: ServiceWithSandbox;
before(async () => {
  env = await startServiceWithSandbox({ RATE_LIMIT_PER_MINUTE: '60' });
});
after(async () => {
  await env.close();
});

const shotIds = (...codes: string[]) => codes.map((code) => env.site.store.all('Shot').find((shot) => shot.fields.code === code)!.id);

test('past the per-user limit: 429 with Retry-After, and another user is not held back', async () => {
  const page = await launch(env, 'attach-files', 'Shot', shotIds('sh010'), 'artist');
  const statuses: number[] = [];
  let retryAfter: string | undefined;
  let body = '';
  // A window may turn over mid-way: enough requests that one window sees more than 60.
  for (let index = 0; index < 130 && !statuses.includes(429); index++) {
    const response = await request(`${page.pageUrl}/uploads`, { headers: { accept: 'application/json' } });
    statuses.push(response.statusCode);
    if (response.statusCode === 429) {
      retryAfter = String(response.headers['retry-after']);
      body = await response.body.text();
    } else {
      await response.body.dump();
    }
  }
  assert.ok(statuses.includes(429), 'limited');
  assert.ok(statuses.filter((status) => status === 200).length >= 60, 'not before the limit');
  assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 61, `Retry-After ${retryAfter}`);
  assert.equal(JSON.parse(body).error.code, 'rate_limited');

  const other = await launch(env, 'attach-files', 'Shot', shotIds('sh010'), 'coord');
  const theirs = await request(`${other.pageUrl}/uploads`, { headers: { accept: 'application/json' } });
  await theirs.body.dump();
  assert.equal(theirs.statusCode, 200, 'another user is not held back');
});
