import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RedisKeyValueStore } from '../../src/store/redis-store.ts';
import { StoreUnavailableError } from '../../src/store/store-unavailable.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.ts';

// A Redis that keeps the connection open but answers nothing (paused: SIGSTOP, as a hung or swapping server): the
// store must not leave its callers waiting. Each command gives up after its deadline with StoreUnavailableError
// (the service's 503), and once Redis answers again the same connection carries on with everything it kept.
// Errors that are Redis's real answers stay what they are. The service-level test is test/hosting/instances.test.ts.

let redis: RedisServer;
let store: RedisKeyValueStore;

before(async () => {
  redis = await startRedisServer();
  store = await RedisKeyValueStore.connect(redis.url, { prefix: 'outage:', commandTimeoutMs: 300, onError: () => {} });
});
after(async () => {
  redis?.resume();
  await store?.close();
  await redis?.stop();
});

test('a paused Redis: every kind of command gives up with StoreUnavailableError; resumed, nothing kept is lost', async () => {
  await store.set('context', 'kept', 600);
  await store.hashSet('parts', '1', 'etag-1', 600);

  redis.pause();
  try {
    const unavailable = (error: unknown) => error instanceof StoreUnavailableError && /did not answer within 300 ms/.test(error.message);
    await Promise.all([
      assert.rejects(store.get('context'), unavailable),
      assert.rejects(store.setIfAbsent('replay', '1', 60), unavailable),
      assert.rejects(store.increment('rate', 60), unavailable),
      assert.rejects(store.hashSet('parts', '2', 'etag-2', 600), unavailable),
      assert.rejects(store.hashGetAll('parts'), unavailable),
    ]);
  } finally {
    redis.resume();
  }

  assert.equal(await store.get('context'), 'kept');
  // What was sent during the outage still ran when Redis answered again: a timed-out write may have happened.
  assert.deepEqual(await store.hashGetAll('parts'), { '1': 'etag-1', '2': 'etag-2' });
  assert.equal(await store.setIfAbsent('replay', '1', 60), false, 'the replay guard written during the outage holds');
});

test("Redis's own error answers are not an outage", async () => {
  await store.set('plain', 'v', 60);
  await assert.rejects(store.hashSet('plain', 'f', 'v', 60), (error: unknown) => !(error instanceof StoreUnavailableError) && /WRONGTYPE/.test(String(error)));
});
