import type { KeyValueStore } from './key-value-store.ts';
import { MemoryKeyValueStore } from './memory-store.ts';

/**
 * The store for shared state: Redis when a URL is configured (every instance sees the same state), else this
 * process's memory (fine for a single instance). Rejects when Redis is configured but cannot be reached, so the
 * service does not start with state that would silently differ between instances.
 */
export async function createKeyValueStore(
  redisUrl: string | null,
  options: { onRedisError?: (error: Error) => void } = {},
): Promise<KeyValueStore> {
  if (redisUrl === null) return new MemoryKeyValueStore();
  // Loaded only when configured: the client's modules would otherwise sit in every process's heap, and a larger
  // heap makes every garbage collection during a transfer slower.
  const { RedisKeyValueStore } = await import('./redis-store.ts');
  return RedisKeyValueStore.connect(redisUrl, options.onRedisError ? { onError: options.onRedisError } : {});
}
