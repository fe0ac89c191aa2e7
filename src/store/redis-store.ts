import { createClient, ErrorReply } from 'redis';
import type { KeyValueStore, WriteOptions } from './key-value-store.ts';
import { StoreUnavailableError, withinDeadline } from './store-unavailable.ts';
import { checkTtlSeconds } from './ttl.ts';

// The shared twin: every instance behind the proxy sees the same contexts, replay guard and upload state.
// Failures surface as rejected promises: there is no fallback to memory, which would split state between
// instances without anyone noticing. The URL may hold a password, so it never appears in a message or a log.

export interface RedisKeyValueStoreOptions {
  /** Put before every key, so the service can share a Redis database with others. Default 'ami-transfer:'. */
  prefix?: string;
  /** Told of connection errors (each failed reconnect attempt among them); commands reject on their own anyway. */
  onError?: (error: Error) => void;
  /** How long a command may take before its caller is told the store is unavailable (default 2 s). */
  commandTimeoutMs?: number;
}

type RedisClient = ReturnType<typeof createClient>;

// The first connection is tried a few times (Redis may be starting next to us), then start-up fails with a
// message. Once connected, a lost connection is retried for as long as it takes, but never more often than every
// 2 s; meanwhile commands fail at once (no offline queue), so requests get an error instead of hanging.
const initialConnectRetries = 4;
const maxReconnectDelayMs = 2_000;
const connectTimeoutMs = 5_000;

// A Redis that holds the connection but does not answer (paused, swapping, a host gone silent) would leave every
// request hanging: node-redis's own command timeout stops counting once a command is written to the socket. So
// each command gets a deadline here (Redis answers in well under a millisecond; 2 s is an outage), and its caller a
// StoreUnavailableError (503). What was sent still runs when Redis answers again. The commands left waiting meanwhile
// are bounded, so a long outage under load cannot fill the heap: past the bound, commands are refused at once.
const defaultCommandTimeoutMs = 2_000;
const maxQueuedCommands = 10_000;

export class RedisKeyValueStore implements KeyValueStore {
  readonly #client: RedisClient;
  readonly #prefix: string;
  readonly #commandTimeoutMs: number;

  private constructor(client: RedisClient, prefix: string, commandTimeoutMs: number) {
    this.#client = client;
    this.#prefix = prefix;
    this.#commandTimeoutMs = commandTimeoutMs;
  }

  /** Connects to Redis at url (redis:// or rediss://); rejects when the first connection cannot be made. */
  static async connect(url: string, options: RedisKeyValueStoreOptions = {}): Promise<RedisKeyValueStore> {
    let connectedOnce = false;
    let client: RedisClient;
    try {
      client = createClient({
        url,
        disableOfflineQueue: true,
        commandsQueueMaxLength: maxQueuedCommands,
        socket: {
          connectTimeout: connectTimeoutMs,
          reconnectStrategy: (retries, cause) => {
            if (!connectedOnce && retries >= initialConnectRetries) return cause;
            // Exponential with jitter, so instances that lost Redis together do not reconnect in lockstep.
            return Math.min(100 * 2 ** retries, maxReconnectDelayMs) + Math.floor(Math.random() * 100);
          },
        },
      });
    } catch (error) {
      // A malformed URL's TypeError carries the whole URL (`input`), password included: say what, never the value.
      throw new Error(`The Redis URL is not valid: ${messageOf(error, 'it could not be parsed')}`);
    }
    client.on('error', (error: unknown) => options.onError?.(error instanceof Error ? error : new Error(String(error))));
    client.on('ready', () => {
      connectedOnce = true;
    });
    try {
      await client.connect();
    } catch (error) {
      if (client.isOpen) client.destroy();
      throw new Error(`Could not connect to Redis: ${messageOf(error, 'no answer')}`);
    }
    return new RedisKeyValueStore(client, options.prefix ?? 'ami-transfer:', options.commandTimeoutMs ?? defaultCommandTimeoutMs);
  }

  /**
   * Redis's maxmemory-policy, or null where CONFIG is not allowed (managed Redis often refuses it). Only
   * "noeviction" keeps the replay guard safe: every key here has a TTL, so volatile-* policies may evict it too.
   */
  async evictionPolicy(): Promise<string | null> {
    try {
      const reply = (await this.#answer(() => this.#client.configGet('maxmemory-policy'))) as Record<string, string>;
      return reply['maxmemory-policy'] ?? null;
    } catch {
      return null;
    }
  }

  async get(key: string): Promise<string | null> {
    return this.#answer(() => this.#client.get(this.#prefix + key));
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    checkTtlSeconds(ttlSeconds);
    await this.#answer(() => this.#client.set(this.#prefix + key, value, { expiration: { type: 'EX', value: ttlSeconds } }));
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    checkTtlSeconds(ttlSeconds);
    // SET NX EX: the check and the write are one command, atomic across every instance.
    const reply = await this.#answer(() =>
      this.#client.set(this.#prefix + key, value, {
        expiration: { type: 'EX', value: ttlSeconds },
        condition: 'NX',
      }),
    );
    return reply !== null;
  }

  async setIfPresent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    checkTtlSeconds(ttlSeconds);
    // SET XX EX: one command, so a key deleted meanwhile on another instance stays deleted.
    const reply = await this.#answer(() =>
      this.#client.set(this.#prefix + key, value, {
        expiration: { type: 'EX', value: ttlSeconds },
        condition: 'XX',
      }),
    );
    return reply !== null;
  }

  async increment(key: string, ttlSeconds: number, _options?: WriteOptions, by = 1): Promise<number> {
    checkTtlSeconds(ttlSeconds);
    if (!Number.isSafeInteger(by)) throw new TypeError('increment: by must be a whole number');
    // INCRBY and EXPIRE … NX in one transaction: a new counter always gets its TTL, a running one keeps its own.
    const [count] = await this.#answer(() => this.#client.multi().incrBy(this.#prefix + key, by).expire(this.#prefix + key, ttlSeconds, 'NX').exec());
    return Number(count);
  }

  async delete(key: string): Promise<void> {
    await this.#answer(() => this.#client.del(this.#prefix + key));
  }

  async hashSet(key: string, field: string, value: string, ttlSeconds: number): Promise<void> {
    checkTtlSeconds(ttlSeconds);
    // One transaction, so the hash never lives on without its TTL.
    await this.#answer(async () => {
      try {
        await this.#client.multi().hSet(this.#prefix + key, field, value).expire(this.#prefix + key, ttlSeconds).exec();
      } catch (error) {
        throw firstCommandError(error);
      }
    });
  }

  async hashDelete(key: string, field: string): Promise<void> {
    await this.#answer(() => this.#client.hDel(this.#prefix + key, field));
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    return { ...(await this.#answer(() => this.#client.hGetAll(this.#prefix + key))) };
  }

  /**
   * One command with its deadline. Anything but Redis's own answer (the connection lost or being retried, the
   * deadline passed, too many commands waiting) and Redis saying it cannot serve now is StoreUnavailableError; other
   * error replies (WRONGTYPE…) stay what they are: a bug, not an outage.
   */
  async #answer<T>(command: () => Promise<T>): Promise<T> {
    const asked = command().catch((error: unknown) => {
      if (error instanceof ErrorReply && !unavailableReply.test(error.message)) throw error;
      throw new StoreUnavailableError(`Redis could not answer: ${messageOf(error, 'no answer')}`, { cause: error });
    });
    return withinDeadline(asked, this.#commandTimeoutMs, 'Redis');
  }

  /** Waits for commands under way, then disconnects; when Redis is unreachable, drops the connection attempts. */
  async close(): Promise<void> {
    if (this.#client.isReady) await this.#client.close();
    else if (this.#client.isOpen) this.#client.destroy();
  }
}

/** Error replies by which Redis says it cannot serve right now (loading, busy with a script, full, a replica cut off). */
const unavailableReply = /^(?:LOADING|BUSY|MASTERDOWN|TRYAGAIN|OOM|MISCONF|READONLY|CLUSTERDOWN)\b/;

/** An error's own message without any wrapping object, which might hold the URL. */
function messageOf(error: unknown, fallback: string): string {
  if (error instanceof TypeError && 'input' in error) return 'it could not be parsed';
  return error instanceof Error && error.message !== '' ? error.message : fallback;
}

/** A failed transaction's first command error (e.g. WRONGTYPE) rather than the wrapper that only counts them. */
function firstCommandError(error: unknown): unknown {
  const { replies, errorIndexes } = error as { replies?: unknown[]; errorIndexes?: number[] };
  const first = errorIndexes?.[0] === undefined ? undefined : replies?.[errorIndexes[0]];
  return first instanceof Error ? first : error;
}
