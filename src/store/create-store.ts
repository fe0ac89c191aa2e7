import type { KeyValueStore } from './key-value-store.ts';
import { MemoryKeyValueStore } from './memory-store.ts';

/**
 * The store for shared state: Redis when a URL is configured (every instance sees the same state), else this
 * process's memory (fine for a single instance). Rejects when Redis is configured but cannot be reached, so the
 * service does not start with state that would silently differ between instances.
 */
export async function createKeyValueStore(
  redisUrl: string | null,
  options: { onRedisError?: (error: Error) => void; onWarning?: (message: string) => void } = {},
): Promise<KeyValueStore> {
  if (redisUrl === null) return new MemoryKeyValueStore();
  // Loaded only when configured: the client's modules would otherwise sit in every process's heap, and a larger
  // heap makes every garbage collection during a transfer slower.
  const { RedisKeyValueStore } = await import('./redis-store.ts');
  const store = await RedisKeyValueStore.connect(redisUrl, options.onRedisError ? { onError: options.onRedisError } : {});
  const policy = await store.evictionPolicy();
  if (policy === null) {
    options.onWarning?.('Redis does not say its maxmemory-policy (CONFIG is not allowed): make sure it is noeviction, or a full Redis may evict the AMI replay guard and launches.');
  } else if (policy !== 'noeviction') {
    options.onWarning?.(`Redis's maxmemory-policy is ${policy}: when Redis is full it may evict the AMI replay guard (a refused request could then be replayed) and users' launches. Set maxmemory-policy noeviction.`);
  }
  return store;
}
