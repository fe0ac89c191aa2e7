import { randomUUID } from 'node:crypto';
import { Agent, request, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { countRetry } from '../../net/metrics.ts';
import { isNetworkError } from '../../net/network-errors.ts';
import { RequestLimit } from '../../net/request-limit.ts';
import { defaultRetryPolicy, parseRetryAfter, withRetries, type RetryPolicy } from '../../net/retry-policy.ts';
import { errorFromException, FtrackError } from './errors.ts';

// The ftrack API as the adapter speaks it: POST <server>/api with a JSON list of operations (ftrack.md, "The /api
// endpoint"), sent with undici through the service's outbound dispatcher.
//
// Why not @ftrack/api's Session: its constructor takes no fetch or dispatcher (SessionOptions 1.11.2: clientToken,
// apiEndpoint, additionalHeaders… and it calls the global fetch), so its requests would go around HTTPS_PROXY; it
// starts with a query_schemas call whose failure, uncaught, exits the process (`session.initializing`); and its
// uploader needs browser globals anyway. The batches it sends are small and documented: this file sends the same.
//
// Acting as a person: the service's API key (a site key) with `ftrack-user` naming the launching user acts with
// that user's rights (the sandbox's reading, the narrower one). The key travels in a header only, never in a URL
// this module returns, a log line or an error message.

export interface FtrackSite {
  /** https://studio.ftrackapp.com — no trailing slash needed. */
  serverUrl: string;
  /** The service's API user (checkReachable acts as it). */
  apiUser: string;
  apiKey: string;
}

export interface FtrackApiOptions extends FtrackSite {
  /** Requests to the server in flight at once, downloads' redirects included (SITE_MAX_CONCURRENT_REQUESTS; 8). */
  maxConcurrentRequests?: number;
  dispatcher?: Dispatcher;
  retry?: RetryPolicy;
  log?: Logger;
  headersTimeoutMs?: number;
}

export type Operation = Record<string, unknown> & { action: string };
export type FtrackEntity = Record<string, unknown> & { __entity_type__?: string; id?: string };

/** Longest reply read (a query page is ≤ 100 entities; a download redirect is a few hundred bytes). */
const MAX_REPLY_BYTES = 64 * 1024 * 1024;
const PAGE_GUARD = 10_000;
/** Pages of one query asked in one batch after its first (see query). */
const PAGES_PER_CALL = 4;

/** One page of a query's reply: its entities, and where the next page starts (null: none; never backwards). */
function pageOf(reply: unknown, from: number): { data: FtrackEntity[]; next: number | null } {
  const { data, metadata } = (reply ?? {}) as { data?: unknown; metadata?: { next?: { offset?: unknown } } };
  if (!Array.isArray(data)) throw new FtrackError('protocol', 'ftrack answered a query without data');
  const next = metadata?.next?.offset;
  return { data: data as FtrackEntity[], next: typeof next === 'number' && next > from ? next : null };
}

export class FtrackApi {
  readonly serverUrl: string;
  readonly #options: FtrackApiOptions;
  readonly #dispatcher: Dispatcher;
  readonly #ownDispatcher: boolean;
  /** The server is the whole studio's: one user's zip of 2,000 components must not flood it. */
  readonly #limit: RequestLimit;
  /** One per service instance, as the JS client sends one per session (ftrack.md). */
  readonly #clientToken = `ami-transfer-${randomUUID()}`;

  constructor(options: FtrackApiOptions) {
    this.#options = options;
    this.serverUrl = new URL(options.serverUrl).origin;
    this.#ownDispatcher = options.dispatcher === undefined;
    this.#limit = new RequestLimit(options.maxConcurrentRequests ?? 8);
    this.#dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: 32 });
  }

  /**
   * One batch as `login` (null: the service's own user). Only a batch marked `idempotent` (queries) is sent again
   * after a failure that may have been processed: the server does not roll back a failing batch and refuses a
   * create with an id it already has (sandbox README), so a write is sent once, unless the site said "slow down"
   * (429: nothing was done).
   */
  async call(login: string | null, operations: readonly Operation[], options: { idempotent?: boolean } = {}): Promise<unknown[]> {
    return withRetries((attempt) => this.#send(login, operations, attempt), {
      policy: this.#options.retry ?? defaultRetryPolicy,
      classify: (error) => {
        if (!(error instanceof FtrackError)) return { retryable: false };
        if (error.kind === 'rate_limited') return { retryable: true, ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }) };
        return { retryable: options.idempotent === true && (error.kind === 'unavailable' || error.kind === 'network') };
      },
      onRetry: (error, attempt, delayMs) => {
        countRetry('site_api', (error as FtrackError).kind);
        this.#options.log?.warn({ attempt, delayMs, kind: (error as FtrackError).kind, actions: operations.map((operation) => operation.action) }, 'ftrack API call failed; trying again');
      },
    });
  }

  /** Every entity `expression` matches as `login`, page after page until `next.offset` is null. */
  async query(login: string | null, expression: string): Promise<FtrackEntity[]> {
    const first = pageOf((await this.call(login, [{ action: 'query', expression }], { idempotent: true }))[0], 0);
    const found: FtrackEntity[] = [...first.data];
    // The server's page size, as its first page shows; the rest is asked PAGES_PER_CALL pages to a batch, since a
    // remote server's round trips, not its pages, are what a long listing waits on (2,000 components: 5, not 20).
    const pageSize = first.data.length;
    let offset = first.next;
    for (let call = 0; offset !== null; call++) {
      if (call * PAGES_PER_CALL > PAGE_GUARD) throw new FtrackError('protocol', 'ftrack kept paging a query');
      const at = offset;
      const offsets = pageSize > 0 ? Array.from({ length: PAGES_PER_CALL }, (_, i) => at + i * pageSize) : [at];
      const operations = offsets.map((from) => ({ action: 'query', expression: pageSize > 0 ? `${expression} offset ${from} limit ${pageSize}` : `${expression} offset ${from}` }));
      const replies = await this.call(login, operations, { idempotent: true });
      offset = null;
      for (const [i, from] of offsets.entries()) {
        const page = pageOf(replies[i], from);
        found.push(...page.data);
        offset = page.next;
        // The query ran out within this batch (the pages asked beyond it are empty), or a page came back shorter
        // than the first one: the rest of the batch would skip entities, so paging goes on from where it says.
        if (offset === null || offset !== offsets[i + 1]) break;
      }
    }
    return found;
  }

  /**
   * Where the server location keeps a component's bytes, as `login` may read them: `/component/get` with the user
   * and key in its query (ftrack.md, "Download and thumbnails") answers a redirect to storage; the redirect's
   * target is returned, not followed, so the key never goes to another host and never leaves this function.
   */
  async componentUrl(login: string, componentId: string): Promise<string> {
    const url = new URL('/component/get', this.serverUrl);
    url.search = new URLSearchParams({ id: componentId, username: login, apiKey: this.#options.apiKey }).toString();
    let status: number;
    let location: string | string[] | undefined;
    try {
      ({ status, location } = await this.#limit.run(async () => {
        const response = await request(url, { method: 'GET', dispatcher: this.#dispatcher, headersTimeout: this.#options.headersTimeoutMs ?? 60_000 });
        await response.body.dump();
        return { status: response.statusCode, location: response.headers.location };
      }));
    } catch (error) {
      // undici's words only (never the URL), and no cause kept: nothing of the request's URL travels on.
      const code = (error as { code?: unknown }).code;
      throw new FtrackError(isNetworkError(error) ? 'network' : 'unavailable', `ftrack could not be reached for a download${typeof code === 'string' ? ` (${code})` : ''}`);
    }
    if (status === 404) throw new FtrackError('not_found', `ftrack has no data for component ${componentId} in its server location, or ${login} may not see it`, { status });
    if (status === 401 || status === 403) throw new FtrackError('auth', `ftrack refused to serve a download as ${login}`, { status });
    if (status === 429) throw new FtrackError('rate_limited', 'ftrack asks to slow down', { status });
    if (status >= 500) throw new FtrackError('unavailable', `ftrack answered ${status} to a download`, { status });
    if (status < 300 || status >= 400 || typeof location !== 'string') {
      // Streaming the bytes itself (UNCONFIRMED, ftrack.md) would need the URL with the key: not handed out.
      throw new FtrackError('protocol', `ftrack answered ${status} to a download instead of redirecting to storage`, { status });
    }
    const target = new URL(location, this.serverUrl);
    if ((target.protocol !== 'https:' && target.protocol !== 'http:') || location.includes(this.#options.apiKey) || target.searchParams.has('apiKey')) {
      throw new FtrackError('protocol', 'ftrack redirected a download somewhere the service does not send people');
    }
    return target.toString();
  }

  /** The service's own credentials, checked with a cheap call. */
  async checkReachable(): Promise<void> {
    await this.call(null, [{ action: 'query_server_information' }], { idempotent: true });
  }

  async close(): Promise<void> {
    if (this.#ownDispatcher) await this.#dispatcher.close();
  }

  async #send(login: string | null, operations: readonly Operation[], attempt: number): Promise<unknown[]> {
    let status: number;
    let text: string;
    let headers: Record<string, string | string[] | undefined>;
    try {
      ({ status, headers, text } = await this.#limit.run(async () => {
        const response = await request(new URL('/api', this.serverUrl), {
          method: 'POST',
          dispatcher: this.#dispatcher,
          headersTimeout: this.#options.headersTimeoutMs ?? 60_000,
          headers: {
            'content-type': 'application/json',
            accept: 'application/json',
            'ftrack-user': login ?? this.#options.apiUser,
            'ftrack-api-key': this.#options.apiKey,
            'ftrack-clienttoken': this.#clientToken,
          },
          body: JSON.stringify(operations),
        });
        return { status: response.statusCode, headers: response.headers, text: await readBounded(response.body) };
      }));
    } catch (error) {
      if (error instanceof FtrackError) throw error;
      const code = (error as { code?: unknown }).code;
      throw new FtrackError(isNetworkError(error) ? 'network' : 'unavailable', `ftrack could not be reached${typeof code === 'string' ? ` (${code})` : ''} (attempt ${attempt})`);
    }
    if (status === 429) throw new FtrackError('rate_limited', 'ftrack asks to slow down', { status, ...retryAfter(headers) });
    let reply: unknown;
    try {
      reply = JSON.parse(text);
    } catch {
      // A proxy's page (502/503 HTML) or a server in trouble: not the API's answer.
      throw new FtrackError(status >= 500 || status === 0 ? 'unavailable' : 'protocol', `ftrack answered ${status} with something that is not JSON`, { status });
    }
    if (reply !== null && typeof reply === 'object' && !Array.isArray(reply) && typeof (reply as { exception?: unknown }).exception === 'string') {
      throw errorFromException(reply as { exception: string; content?: unknown }, status);
    }
    if (status >= 500) throw new FtrackError('unavailable', `ftrack answered ${status}`, { status });
    if (!Array.isArray(reply) || reply.length !== operations.length) throw new FtrackError('protocol', 'ftrack answered a batch with another number of results');
    // Resolved over the whole batch: a server may write an entity in full once per response, not per operation.
    return withReferencesResolved(reply) as unknown[];
  }
}

/**
 * A reply with every mention of an entity made the entity in full: ftrack writes an entity in full once and after
 * that only as `{__entity_type__, id}` (ftrack.md, "Operations"; once per operation in the sandbox, possibly once
 * per response on a server, as @ftrack/api decodes a whole response with one identity map), so two versions of one
 * asset would otherwise leave the second without its asset's name. Mentions are merged into one object per entity
 * (which may then refer to itself through its relations: these objects never leave the adapter, never serialised).
 */
function withReferencesResolved(reply: unknown): unknown {
  const full = new Map<string, Record<string, unknown>>();
  const keyOf = (value: unknown): string | null => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
    const { __entity_type__: type, id } = value as { __entity_type__?: unknown; id?: unknown };
    return typeof type === 'string' && typeof id === 'string' ? `${type}\u0000${id}` : null;
  };
  const children = (value: unknown): unknown[] => (value !== null && typeof value === 'object' ? Object.values(value) : []);
  // Pass one: every attribute any mention carries, on the entity's first mention.
  const collect = (value: unknown, depth: number): void => {
    if (depth > 64) return;
    const key = keyOf(value);
    if (key !== null) {
      const first = full.get(key);
      if (first === undefined) full.set(key, value as Record<string, unknown>);
      else if (first !== value) for (const [name, attribute] of Object.entries(value as object)) if (!(name in first)) first[name] = attribute;
    }
    for (const child of children(value)) collect(child, depth + 1);
  };
  // Pass two: each mention replaced by that one object.
  const seen = new Set<unknown>();
  const replace = (value: unknown): unknown => {
    const key = keyOf(value);
    const resolved = key === null ? value : (full.get(key) ?? value);
    if (resolved === null || typeof resolved !== 'object' || seen.has(resolved)) return resolved;
    seen.add(resolved);
    const node = resolved as Record<string, unknown>;
    for (const name of Object.keys(node)) node[name] = replace(node[name]);
    return resolved;
  };
  collect(reply, 0);
  return replace(reply);
}

function retryAfter(headers: Record<string, string | string[] | undefined>): { retryAfterMs?: number } {
  const ms = parseRetryAfter(headers['retry-after']);
  return ms === undefined ? {} : { retryAfterMs: ms };
}

async function readBounded(body: AsyncIterable<Buffer | Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_REPLY_BYTES) throw new FtrackError('protocol', `ftrack answered more than ${MAX_REPLY_BYTES} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}
