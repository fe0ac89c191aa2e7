import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { createKeyValueStore } from '../../src/store/create-store.ts';
import type { KeyValueStore } from '../../src/store/key-value-store.ts';
import { MemoryKeyValueStore } from '../../src/store/memory-store.ts';
import { RedisKeyValueStore } from '../../src/store/redis-store.ts';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';

// One contract, two twins: the in-process store and the Redis store must behave alike, so the service acts the
// same with one instance or many. Then what only one twin has: the memory store's bound and clock, Redis's
// prefix, reconnection and URL handling.

interface OpenStores {
  store: KeyValueStore;
  /** Another client over the same data: a second connection for Redis, the same object in memory. */
  peer: KeyValueStore;
}

interface Twin {
  name: string;
  setUp(): Promise<void>;
  tearDown(): Promise<void>;
  /** Stores over fresh, empty data. */
  open(): Promise<OpenStores>;
}

function keyValueStoreContract(twin: Twin): void {
  describe(`KeyValueStore contract: ${twin.name}`, () => {
    const opened: KeyValueStore[] = [];
    before(() => twin.setUp());
    after(async () => {
      for (const store of opened) await store.close();
      await twin.tearDown();
    });
    async function open(): Promise<OpenStores> {
      const stores = await twin.open();
      opened.push(stores.store, stores.peer);
      return stores;
    }

    test('get, set, overwrite and delete', async () => {
      const { store, peer } = await open();
      assert.equal(await store.get('a'), null);
      await store.set('a', 'one', 60);
      assert.equal(await store.get('a'), 'one');
      assert.equal(await peer.get('a'), 'one', 'the other client sees it');
      await store.set('a', 'two', 60);
      assert.equal(await peer.get('a'), 'two');
      await store.set('b', '', 60);
      assert.equal(await store.get('b'), '', 'an empty value is a value, not absence');
      await peer.delete('a');
      assert.equal(await store.get('a'), null);
      await store.delete('never-set');
    });

    test('keeps unicode, large and awkward values exactly', async () => {
      const { store, peer } = await open();
      const values = [
        'Démo – Ödön 東京 🎬 \u{1D11E} \uFEFF',
        'line\r\nbreaks\0and NUL',
        JSON.stringify({ ids: Array.from({ length: 20_000 }, (_, index) => index + 1) }),
      ];
      for (const [index, value] of values.entries()) {
        await store.set(`value-${index}`, value, 60);
        assert.equal(await peer.get(`value-${index}`), value);
      }
      await store.set('ключ 鍵 🔑', 'v', 60);
      assert.equal(await peer.get('ключ 鍵 🔑'), 'v', 'unicode keys');
    });

    test('an expired key reads as absent and can be claimed again', async () => {
      const { store, peer } = await open();
      await store.set('short', 'x', 1);
      assert.equal(await store.setIfAbsent('claim', 'first', 1), true);
      await store.set('long', 'y', 60);
      await sleep(1_200);
      assert.equal(await store.get('short'), null);
      assert.equal(await peer.get('short'), null);
      assert.equal(await store.get('long'), 'y');
      assert.equal(await peer.setIfAbsent('claim', 'second', 60), true);
      assert.equal(await store.get('claim'), 'second');
    });

    test('set replaces the TTL of the value it overwrites', async () => {
      const { store } = await open();
      await store.set('k', 'short', 1);
      await store.set('k', 'long', 60);
      await sleep(1_200);
      assert.equal(await store.get('k'), 'long');
    });

    test('setIfAbsent stores only when the key is absent', async () => {
      const { store, peer } = await open();
      assert.equal(await store.setIfAbsent('once', 'first', 60), true);
      assert.equal(await peer.setIfAbsent('once', 'second', 60), false);
      assert.equal(await store.get('once'), 'first', 'the value is kept');
      await store.delete('once');
      assert.equal(await peer.setIfAbsent('once', 'third', 60), true);
      assert.equal(await store.get('once'), 'third');
    });

    test('setIfPresent replaces a live value only: what was deleted or expired stays gone', async () => {
      const { store, peer } = await open();
      assert.equal(await store.setIfPresent('present', 'nothing yet', 60), false);
      assert.equal(await peer.get('present'), null);
      await store.set('present', 'first', 60);
      assert.equal(await peer.setIfPresent('present', 'second', 60), true);
      assert.equal(await store.get('present'), 'second');
      await peer.delete('present');
      assert.equal(await store.setIfPresent('present', 'third', 60), false);
      assert.equal(await peer.get('present'), null);
    });

    test('hashDelete removes one field and leaves the others', async () => {
      const { store, peer } = await open();
      await store.hashSet('h-del', 'a', '1', 60);
      await store.hashSet('h-del', 'b', '2', 60);
      await peer.hashDelete('h-del', 'a');
      await peer.hashDelete('h-del', 'missing');
      await peer.hashDelete('no-such-hash', 'a');
      assert.deepEqual(await store.hashGetAll('h-del'), { b: '2' });
    });

    test('increment counts atomically across callers, and the first one sets the TTL', async () => {
      const { store, peer } = await open();
      const counts = await Promise.all(Array.from({ length: 20 }, (_, index) => (index % 2 === 0 ? store : peer).increment('counter', 1)));
      assert.deepEqual([...counts].sort((a, b) => a - b), Array.from({ length: 20 }, (_, index) => index + 1));
      await sleep(1_200);
      assert.equal(await store.increment('counter', 60), 1, 'the window ended: a new counter');
    });

    test('increment by an amount: -1 gives one back, atomically across callers, and the window keeps its TTL', async () => {
      const { store, peer } = await open();
      await Promise.all(Array.from({ length: 10 }, (_, index) => (index % 2 === 0 ? store : peer).increment('places', 1)));
      await Promise.all(Array.from({ length: 4 }, (_, index) => (index % 2 === 0 ? store : peer).increment('places', 1, {}, -1)));
      assert.equal(await peer.increment('places', 60, {}, 0), 6);
      assert.equal(await store.increment('places', 60, {}, 3), 9);
      await sleep(1_200);
      assert.equal(await store.increment('places', 60), 1, 'the TTL set by the first increment still ends the window');
      await assert.rejects(store.increment('places', 60, {}, 0.5), TypeError);
    });

    test('setIfAbsent from 20 concurrent callers: exactly one wins', async () => {
      const { store, peer } = await open();
      for (let round = 0; round < 5; round += 1) {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, index) => (index % 2 === 0 ? store : peer).setIfAbsent(`race-${round}`, `caller ${index}`, 60)),
        );
        assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${JSON.stringify(results)}`);
        const winner = results.indexOf(true);
        assert.equal(await store.get(`race-${round}`), `caller ${winner}`);
      }
    });

    test('hash fields set by many writers are all kept, with the TTL, and a string key is not a hash', async () => {
      const { store, peer } = await open();
      await Promise.all(Array.from({ length: 30 }, (_, n) => (n % 2 ? store : peer).hashSet('parts', `0:${n + 1}`, `"etag-${n + 1}"`, 60)));
      const fields = await peer.hashGetAll('parts');
      assert.equal(Object.keys(fields).length, 30);
      assert.equal(fields['0:17'], '"etag-17"');
      assert.deepEqual(await store.hashGetAll('no-such-hash'), {});
      await store.set('plain', 'v', 60);
      await assert.rejects(store.hashSet('plain', 'f', 'v', 60), /WRONGTYPE/);
      await assert.rejects(store.hashSet('parts', 'f', 'v', 0), RangeError);
      await store.delete('parts');
      assert.deepEqual(await store.hashGetAll('parts'), {});
    });

    test('a hash expires as a whole', async () => {
      const { store } = await open();
      await store.hashSet('short-hash', 'a', '1', 1);
      await new Promise((resolve) => setTimeout(resolve, 1200));
      assert.deepEqual(await store.hashGetAll('short-hash'), {});
    });

    test('refuses a TTL Redis would refuse, in both twins alike', async () => {
      const { store } = await open();
      for (const ttl of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        await assert.rejects(store.set('k', 'v', ttl), RangeError, `set with ${ttl}`);
        await assert.rejects(store.setIfAbsent('k', 'v', ttl), RangeError, `setIfAbsent with ${ttl}`);
      }
      assert.equal(await store.get('k'), null);
    });

    test('a closed store rejects instead of answering from nothing', async () => {
      const { store } = await open();
      await store.set('k', 'v', 60);
      await store.close();
      await assert.rejects(store.get('k'));
      await assert.rejects(store.set('k', 'v', 60));
    });
  });
}

// ---- the twins ----

keyValueStoreContract({
  name: 'MemoryKeyValueStore',
  async setUp() {},
  async tearDown() {},
  async open() {
    const store = new MemoryKeyValueStore();
    return { store, peer: store };
  },
});

let redis: RedisServer | undefined;
function redisUrl(): string {
  assert.ok(redis, 'redis-server was started');
  return redis.url;
}

keyValueStoreContract({
  name: 'RedisKeyValueStore',
  async setUp() {
    redis = await startRedisServer();
  },
  async tearDown() {
    await redis?.stop();
  },
  async open() {
    // A prefix per test keeps tests apart on one server; two connections prove atomicity across clients.
    const prefix = `test-${randomUUID()}:`;
    const store = await RedisKeyValueStore.connect(redisUrl(), { prefix });
    const peer = await RedisKeyValueStore.connect(redisUrl(), { prefix });
    return { store, peer };
  },
});

// ---- what only the memory store has ----

describe('MemoryKeyValueStore: bound and clock', () => {
  function clock(start = 1_800_000_000_000) {
    let now = start;
    return { now: () => now, advance: (seconds: number) => void (now += seconds * 1000) };
  }

  test('TTLs follow the injected clock', async () => {
    const time = clock();
    const store = new MemoryKeyValueStore({ now: time.now });
    await store.set('k', 'v', 10);
    time.advance(9.999);
    assert.equal(await store.get('k'), 'v');
    time.advance(0.001);
    assert.equal(await store.get('k'), null, 'gone exactly at its TTL, as in Redis');
    assert.equal(await store.setIfAbsent('k', 'again', 10), true);
    await store.close();
  });

  test('the sweep frees expired entries nobody reads', async () => {
    const time = clock();
    const store = new MemoryKeyValueStore({ now: time.now });
    for (let index = 0; index < 10; index += 1) await store.set(`short-${index}`, 'v', 5);
    await store.set('long', 'v', 60);
    time.advance(5);
    assert.equal(store.size, 11, 'expired but not yet swept');
    assert.equal(store.sweepExpired(), 10);
    assert.equal(store.size, 1);
    assert.equal(await store.get('long'), 'v');
    await store.close();
  });

  test('past maxEntries the least recently used entries go first', async () => {
    const store = new MemoryKeyValueStore({ maxEntries: 3 });
    await store.set('a', '1', 60);
    await store.set('b', '2', 60);
    await store.set('c', '3', 60);
    assert.equal(await store.get('a'), '1', 'reading a makes b the least recently used');
    await store.set('d', '4', 60);
    assert.equal(store.size, 3);
    assert.equal(await store.get('b'), null, 'b was dropped');
    // Least recently used first: c, a, d.
    await store.setIfAbsent('e', '5', 60);
    assert.equal(await store.get('c'), null, 'then c');
    assert.deepEqual([await store.get('a'), await store.get('d'), await store.get('e')], ['1', '4', '5']);
    assert.equal(store.size, 3);
    await store.close();
  });

  test('a flood stays within the bound', async () => {
    const store = new MemoryKeyValueStore({ maxEntries: 1_000 });
    for (let index = 0; index < 10_000; index += 1) await store.set(`k${index}`, 'v', 60);
    assert.equal(store.size, 1_000);
    assert.equal(await store.get('k9999'), 'v');
    assert.equal(await store.get('k8999'), null);
    await store.close();
  });

  test('bounded by bytes too: big values push out the oldest, and the count of bytes stays exact', async () => {
    const store = new MemoryKeyValueStore({ maxBytes: 100_000 });
    const big = 'x'.repeat(10_000); // 20 kB as counted
    for (let index = 0; index < 20; index += 1) await store.set(`big${index}`, big, 60);
    assert.ok(store.bytes <= 100_000, `${store.bytes} bytes held`);
    assert.equal(await store.get('big19'), big);
    assert.equal(await store.get('big0'), null);
    await store.hashSet('h', 'field', 'a', 60);
    await store.hashSet('h', 'field', 'abc', 60);
    await store.hashSet('h', 'other', '', 60);
    for (let index = 0; index < 20; index += 1) await store.delete(`big${index}`);
    assert.equal(store.bytes, 2 * ('h'.length + 'field'.length + 'abc'.length + 'other'.length), 'hash fields counted by difference, deletes subtract');
    await store.close();
  });

  test('protected keys (the replay guard) are never evicted before their time, however big the flood', async () => {
    const store = new MemoryKeyValueStore({ maxEntries: 50 });
    await store.set('ami-replay:used-signature', '1', 60);
    for (let index = 0; index < 1_000; index += 1) await store.set(`flood${index}`, 'v', 60);
    assert.equal(await store.setIfAbsent('ami-replay:used-signature', '1', 60), false, 'a replay is still refused');
    assert.ok(store.size <= 51);
    await store.close();
  });

  test('rejects a bound that is not a positive whole number', () => {
    for (const maxEntries of [0, -5, 2.5]) assert.throws(() => new MemoryKeyValueStore({ maxEntries }), RangeError);
  });

  test('createKeyValueStore(null) is the memory store', async () => {
    const store = await createKeyValueStore(null);
    assert.ok(store instanceof MemoryKeyValueStore);
    await store.close();
  });
});

// ---- what only the Redis store has ----

describe('RedisKeyValueStore: Redis specifics', () => {
  let server: RedisServer;
  const closers: (() => Promise<void>)[] = [];
  before(async () => {
    server = await startRedisServer();
  });
  after(async () => {
    for (const close of closers.reverse()) await close();
    await server.stop();
  });

  async function raw() {
    const client = createClient({ url: server.url });
    await client.connect();
    closers.push(() => client.close());
    return client;
  }

  test('a maxmemory-policy that may evict the replay guard is warned about at start; noeviction is not', async () => {
    const client = await raw();
    const warnings: string[] = [];
    await client.configSet('maxmemory-policy', 'allkeys-lru');
    const evicting = await createKeyValueStore(server.url, { onWarning: (message) => warnings.push(message) });
    closers.push(() => evicting.close());
    assert.match(warnings.join('\n'), /maxmemory-policy is allkeys-lru: .*replay guard/);
    await client.configSet('maxmemory-policy', 'noeviction');
    warnings.length = 0;
    const safe = await createKeyValueStore(server.url, { onWarning: (message) => warnings.push(message) });
    closers.push(() => safe.close());
    assert.deepEqual(warnings, []);
  });

  test("keys carry the prefix ('ami-transfer:' by default) and SET … EX sets their TTL", async () => {
    const store = await createKeyValueStore(server.url);
    closers.push(() => store.close());
    assert.ok(store instanceof RedisKeyValueStore);
    await store.set('ami-context:abc', 'v', 3600);
    await store.setIfAbsent('ami-replay:def', '1', 121);
    const client = await raw();
    assert.equal(await client.get('ami-transfer:ami-context:abc'), 'v');
    const ttl = await client.ttl('ami-transfer:ami-context:abc');
    assert.ok(ttl > 3590 && ttl <= 3600, `TTL ${ttl}`);
    const replayTtl = await client.ttl('ami-transfer:ami-replay:def');
    assert.ok(replayTtl > 110 && replayTtl <= 121, `TTL ${replayTtl}`);
    assert.equal(await client.get('ami-context:abc'), null, 'nothing unprefixed');

    const other = await RedisKeyValueStore.connect(server.url, { prefix: 'other:' });
    closers.push(() => other.close());
    assert.equal(await other.get('ami-context:abc'), null, 'another prefix is another namespace');
  });

  test('an unreachable Redis fails start-up with a message, never the password', async () => {
    const port = await freePort();
    const errors: Error[] = [];
    const started = Date.now();
    await assert.rejects(
      RedisKeyValueStore.connect(`redis://ami:hunter2-secret@127.0.0.1:${port}`, { onError: (error) => errors.push(error) }),
      (error: Error) => {
        assert.match(error.message, /Could not connect to Redis: .*ECONNREFUSED/);
        assert.doesNotMatch(`${error.message} ${String(error.stack)} ${JSON.stringify(error)}`, /hunter2/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 10_000, 'the first connection is not retried for long');
    assert.ok(errors.length >= 1, 'each failed attempt is reported to onError');
    for (const error of errors) assert.doesNotMatch(`${error.message} ${JSON.stringify(error)}`, /hunter2/);
  });

  test('a malformed URL is refused without echoing it', async () => {
    await assert.rejects(RedisKeyValueStore.connect('redis://ami:hunter2-secret@host:99999999'), (error: Error) => {
      assert.match(error.message, /Redis URL is not valid/);
      assert.doesNotMatch(`${error.message} ${JSON.stringify(error)} ${String(error.cause)}`, /hunter2/);
      return true;
    });
  });

  test('when Redis goes away commands fail at once, and work again once it is back', async () => {
    const own = await startRedisServer();
    const store = await RedisKeyValueStore.connect(own.url, { onError: () => {} });
    closers.push(() => store.close());
    await store.set('k', 'v', 60);
    await own.stop();

    const started = Date.now();
    await assert.rejects(store.get('k'));
    await assert.rejects(store.setIfAbsent('k', 'v', 60));
    assert.ok(Date.now() - started < 2_000, 'no hanging on an offline queue');

    // Same port, fresh (empty) data: the client reconnects by itself within its capped backoff.
    const again = await startRedisServer({ port: own.port });
    closers.push(() => again.stop());
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        assert.equal(await store.setIfAbsent('k', 'back', 60), true);
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(100);
      }
    }
    assert.equal(await store.get('k'), 'back');
  });
});
