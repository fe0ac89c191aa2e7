import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContextStore, isContextId, type NewActionContext } from '../../src/ami/context-store.ts';
import type { KeyValueStore } from '../../src/store/key-value-store.ts';
import { MemoryKeyValueStore } from '../../src/store/memory-store.ts';
import { RedisKeyValueStore } from '../../src/store/redis-store.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.ts';

// Action contexts through both store twins: what a launch stores is what its page reads back, until it expires.

const launch: NewActionContext = {
  action: 'upload-files',
  siteUrl: 'https://studio.shotgrid.autodesk.com',
  user: { id: '24', login: 'artist' },
  signed: true,
  entityType: 'Version',
  selectedIds: ['9155', '9156'],
  project: { id: '116', name: 'Démo – Ödön 東京' },
  title: null,
};

/** Counts what reaches the store, to show that malformed ids never do. */
class CountingStore implements KeyValueStore {
  calls = 0;
  readonly #inner: KeyValueStore;
  constructor(inner: KeyValueStore) {
    this.#inner = inner;
  }
  get(key: string) {
    this.calls += 1;
    return this.#inner.get(key);
  }
  set(key: string, value: string, ttlSeconds: number) {
    this.calls += 1;
    return this.#inner.set(key, value, ttlSeconds);
  }
  setIfAbsent(key: string, value: string, ttlSeconds: number) {
    this.calls += 1;
    return this.#inner.setIfAbsent(key, value, ttlSeconds);
  }
  increment(key: string, ttlSeconds: number) {
    this.calls += 1;
    return this.#inner.increment(key, ttlSeconds);
  }
  setIfPresent(key: string, value: string, ttlSeconds: number) {
    this.calls += 1;
    return this.#inner.setIfPresent(key, value, ttlSeconds);
  }
  hashSet(key: string, field: string, value: string, ttlSeconds: number) {
    this.calls += 1;
    return this.#inner.hashSet(key, field, value, ttlSeconds);
  }
  hashDelete(key: string, field: string) {
    this.calls += 1;
    return this.#inner.hashDelete(key, field);
  }
  hashGetAll(key: string) {
    this.calls += 1;
    return this.#inner.hashGetAll(key);
  }
  delete(key: string) {
    this.calls += 1;
    return this.#inner.delete(key);
  }
  close() {
    return this.#inner.close();
  }
}

function contextStoreTests(name: string, setUp: () => Promise<void>, tearDown: () => Promise<void>, open: () => Promise<KeyValueStore>): void {
  describe(`ContextStore over ${name}`, () => {
    const opened: KeyValueStore[] = [];
    before(setUp);
    after(async () => {
      for (const store of opened) await store.close();
      await tearDown();
    });
    async function fresh(): Promise<KeyValueStore> {
      const store = await open();
      opened.push(store);
      return store;
    }

    test('create gives an unguessable id and an expiry; get reads back the same context', async () => {
      const contexts = new ContextStore(await fresh(), 3600);
      const startedAt = Date.now();
      const context = await contexts.create(launch);
      const { id, createdAt, expiresAt, ...given } = context;
      assert.deepEqual(given, launch);
      assert.match(id, /^[A-Za-z0-9_-]{43}$/);
      assert.ok(isContextId(id));
      const created = Date.parse(createdAt);
      assert.ok(created >= startedAt - 1 && created <= Date.now() + 1);
      assert.equal(Date.parse(expiresAt) - created, 3_600_000);
      assert.deepEqual(await contexts.get(context.id), context);
      const other = await contexts.create(launch);
      assert.notEqual(other.id, context.id);
    });

    test('another ContextStore over the same store (another instance) reads it too', async () => {
      const store = await fresh();
      const context = await new ContextStore(store, 60).create({ ...launch, project: null, signed: false, title: 'All Versions' });
      assert.deepEqual(await new ContextStore(store, 60).get(context.id), context);
    });

    test('a selection of thousands of ids fits', async () => {
      const contexts = new ContextStore(await fresh(), 60);
      const selectedIds = Array.from({ length: 50_000 }, (_, index) => String(1_000_000 + index));
      const context = await contexts.create({ ...launch, selectedIds });
      assert.deepEqual((await contexts.get(context.id))?.selectedIds, selectedIds);
    });

    test('unknown and deleted ids read as null', async () => {
      const contexts = new ContextStore(await fresh(), 60);
      assert.equal(await contexts.get('A'.repeat(43)), null);
      const context = await contexts.create(launch);
      await contexts.delete(context.id);
      assert.equal(await contexts.get(context.id), null);
      await contexts.delete(context.id);
    });

    test('expires with its TTL', async () => {
      const contexts = new ContextStore(await fresh(), 1);
      const context = await contexts.create(launch);
      assert.notEqual(await contexts.get(context.id), null);
      await sleep(1_200);
      assert.equal(await contexts.get(context.id), null);
    });

    test('malformed ids are refused before the store is asked', async () => {
      const counting = new CountingStore(await fresh());
      const contexts = new ContextStore(counting, 60);
      for (const id of ['', 'short', 'A'.repeat(42), 'A'.repeat(44), `${'A'.repeat(42)}=`, `${'A'.repeat(42)}/`, `${'A'.repeat(42)}.`, '../'.repeat(15)]) {
        assert.equal(isContextId(id), false, id);
        assert.equal(await contexts.get(id), null);
        await contexts.delete(id);
      }
      assert.equal(counting.calls, 0);
    });

    test('what cannot be read back as a context counts as expired', async () => {
      const store = await fresh();
      const contexts = new ContextStore(store, 60);
      const context = await contexts.create(launch);
      const key = `ami-context:${context.id}`;
      const stored = JSON.parse((await store.get(key)) ?? 'null') as Record<string, unknown>;
      for (const broken of [
        'not json',
        JSON.stringify({ ...stored, action: 'format-disk' }),
        JSON.stringify({ ...stored, selectedIds: ['../1'] }),
        JSON.stringify({ ...stored, user: { id: 24 } }),
        JSON.stringify({ ...stored, id: 'B'.repeat(43) }),
        JSON.stringify({ ...stored, expiresAt: new Date(Date.now() - 1000).toISOString() }),
      ]) {
        await store.set(key, broken, 60);
        assert.equal(await contexts.get(context.id), null, broken.slice(0, 80));
      }
    });

    test('stores only the context, not whatever else the caller passed', async () => {
      const store = await fresh();
      const contexts = new ContextStore(store, 60);
      const context = await contexts.create({ ...launch, secretToken: 'do-not-store' } as NewActionContext);
      assert.doesNotMatch((await store.get(`ami-context:${context.id}`)) ?? '', /do-not-store/);
      assert.equal('secretToken' in context, false);
    });
  });
}

contextStoreTests('the memory store', async () => {}, async () => {}, async () => new MemoryKeyValueStore());

let redis: RedisServer | undefined;
contextStoreTests(
  'Redis',
  async () => {
    redis = await startRedisServer();
  },
  async () => {
    await redis?.stop();
  },
  async () => {
    assert.ok(redis);
    return RedisKeyValueStore.connect(redis.url, { prefix: `test-${randomUUID()}:` });
  },
);

describe('ContextStore', () => {
  test('keepAlive slides the lifetime while bytes move, at most every 30 s, and never brings back a discarded launch', async () => {
    const store = new CountingStore(new MemoryKeyValueStore());
    const contexts = new ContextStore(store, 3600);
    const context = await contexts.create(launch);
    store.calls = 0;
    assert.equal(await contexts.keepAlive(context), context, 'fresh: nothing written');
    assert.equal(store.calls, 0);
    const aged = { ...context, expiresAt: new Date(Date.now() + 3000 * 1000).toISOString() };
    const kept = await contexts.keepAlive(aged);
    assert.ok(Date.parse(kept.expiresAt) > Date.parse(aged.expiresAt) + 590_000, 'a new hour from now');
    assert.equal((await contexts.get(context.id))?.expiresAt, kept.expiresAt);
    await contexts.delete(context.id);
    await contexts.keepAlive(aged);
    assert.equal(await contexts.get(context.id), null, 'discarded stays discarded');
  });

  test('expiry follows the store clock too', async () => {
    let now = Date.now();
    const contexts = new ContextStore(new MemoryKeyValueStore({ now: () => now }), 3600);
    const context = await contexts.create(launch);
    now += 3_599_000;
    assert.notEqual(await contexts.get(context.id), null);
    now += 1_000;
    assert.equal(await contexts.get(context.id), null);
  });

  test('refuses a TTL that is not a positive whole number of seconds', () => {
    for (const ttl of [0, -1, 1.5]) assert.throws(() => new ContextStore(new MemoryKeyValueStore(), ttl), RangeError);
  });
});
