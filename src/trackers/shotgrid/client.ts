import { Agent, request, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { withRetries, type RetryPolicy, defaultRetryPolicy } from '../../net/retry-policy.ts';
import { countRetry } from '../../net/metrics.ts';
import { RequestLimit } from '../../net/request-limit.ts';
import { errorFromResponse, isNetworkError, ShotgridError } from './errors.ts';

// A client for ShotGrid's REST API (../shared/protocol/shotgrid-rest.md): script credentials, one token per
// acting user (sudo_as_login), refresh before expiry and once on 401, retries where they are safe, paged search,
// and the upload/download links. Links the site hands back are followed only on the site itself (no SSRF).

export interface ShotgridSite {
  /** https://studio.shotgrid.autodesk.com — no trailing slash needed. */
  siteUrl: string;
  scriptName: string;
  scriptKey: string;
}

export interface ShotgridClientOptions extends ShotgridSite {
  dispatcher?: Dispatcher;
  retry?: RetryPolicy;
  log?: Logger;
  /** Give up waiting for an API answer's headers after this long. */
  headersTimeoutMs?: number;
  /** API requests in flight at once (default 8); the rest wait their turn. */
  maxConcurrentRequests?: number;
}

/** A record as the python-api shapes it: attributes and relationship data side by side. */
export interface SgRecord {
  type: string;
  id: number;
  [field: string]: unknown;
}

export type SgFilters = unknown[] | { logical_operator: 'and' | 'or'; conditions: unknown[] };

export interface FindOptions {
  sort?: string;
  /** Stop after this many records. */
  limit?: number;
  pageSize?: number;
}

export interface UploadStart {
  /** The `data` object, to send back as upload_info (plus etags for multipart). */
  info: Record<string, unknown> & { multipart_upload?: boolean; upload_type?: string };
  /** Where the first (or only) part goes: a presigned storage URL. */
  uploadUrl: string;
  /** Path on the site that completes the upload. */
  completePath: string;
  /** Path on the site that gives part 2's link (multipart only). */
  nextPartPath: string | null;
}

const TOKEN_MARGIN_MS = 30_000;

interface Token {
  access: string;
  refresh: string | null;
  expiresAt: number;
}

/** Pages of a long _search asked at once, after the first (within the site's request cap). */
const PAGES_AHEAD = 3;

export class ShotgridClient {
  readonly siteUrl: string;
  readonly #options: ShotgridClientOptions;
  readonly #dispatcher: Dispatcher;
  readonly #tokens = new Map<string, Promise<Token>>();
  readonly #limit: RequestLimit;

  constructor(options: ShotgridClientOptions) {
    this.#options = options;
    this.#limit = new RequestLimit(options.maxConcurrentRequests ?? 8);
    this.siteUrl = new URL(options.siteUrl).origin;
    this.#dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: 32 });
  }

  /** The site as `login` sees it (sudo: their permissions, their name on what is created); null: the script. */
  as(login: string | null): ShotgridSession {
    return new ShotgridSession(this, login);
  }

  /**
   * The acting user's current access token, for the one request the service sends to the site outside the API:
   * a local install's upload PUT (to `links.upload`, on the site itself; the caller checks the origin).
   */
  async bearer(login: string | null): Promise<string> {
    return (await this.#token(login, false)).access;
  }

  /** Throws when the site cannot be reached or refuses the script's credentials (for /readyz). */
  async checkReachable(): Promise<void> {
    await this.#token(null, true);
  }

  async close(): Promise<void> {
    if (!this.#options.dispatcher) await this.#dispatcher.close();
  }

  /**
   * One API call with the acting user's token. `idempotent` calls are retried after any transient failure;
   * others only where the site cannot have acted (429, 503, connection refused).
   */
  async send(
    login: string | null,
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    options: { query?: Record<string, string>; body?: unknown; contentType?: string; idempotent: boolean; followRedirect?: false },
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: unknown }> {
    const url = this.#siteUrl(path, options.query);
    let refreshed = false;
    return withRetries(
      async () => {
        const token = await this.#token(login, false);
        // The token is got outside the limit: its own request may need a slot, and must not wait behind this one.
        return this.#limit.run(async () => {
          const response = await request(url, {
            method,
            dispatcher: this.#dispatcher,
            headersTimeout: this.#options.headersTimeoutMs ?? 30_000,
            headers: {
              authorization: `Bearer ${token.access}`,
              accept: 'application/json',
              ...(options.body === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' }),
            },
            body: options.body === undefined ? null : JSON.stringify(options.body),
          });
          const text = await response.body.text();
          if (response.statusCode === 401 && !refreshed) {
            // The token expired early or was revoked: get a new one once, then try again at once.
            refreshed = true;
            this.#forget(login, token);
            throw new TokenRefused();
          }
          if (response.statusCode >= 400) throw errorFromResponse(response.statusCode, response.headers, text);
          // A download answers 302 to signed storage: handed back unfollowed (and unparsed), never followed with the token.
          if (options.followRedirect === false && response.statusCode >= 300 && response.statusCode < 400) {
            return { status: response.statusCode, headers: response.headers, json: null };
          }
          return { status: response.statusCode, headers: response.headers, json: text.trim() === '' ? null : JSON.parse(text) };
        });
      },
      {
        policy: this.#options.retry ?? defaultRetryPolicy,
        classify: (error) => (error instanceof TokenRefused ? { retryable: true } : classify(error, options.idempotent)),
        onRetry: (error, attempt, delayMs) => {
          countRetry('site_api', retryCause(error));
          this.#options.log?.warn({ method, path: new URL(url).pathname, attempt, delayMs, err: describe(error) }, 'retrying ShotGrid API call');
        },
      },
    );
  }

  /** Resolves a path (or a link the site returned) on the site, refusing any other origin. */
  #siteUrl(path: string, query?: Record<string, string>): string {
    const url = new URL(path, this.siteUrl);
    if (url.origin !== this.siteUrl || !url.pathname.startsWith('/api/v1/')) {
      throw new ShotgridError('protocol', `Refusing to follow a link outside the site's API: ${url.origin}${url.pathname}`);
    }
    for (const [name, value] of Object.entries(query ?? {})) url.searchParams.set(name, value);
    return url.toString();
  }

  #token(login: string | null, fresh: boolean): Promise<Token> {
    const key = login ?? '';
    const cached = this.#tokens.get(key);
    if (cached && !fresh) {
      return cached.then((token) => (Date.now() < token.expiresAt - TOKEN_MARGIN_MS ? token : this.#renew(key, login, token)));
    }
    const pending = this.#grant(login, null);
    this.#tokens.set(key, pending);
    pending.catch(() => this.#tokens.delete(key));
    return pending;
  }

  #renew(key: string, login: string | null, old: Token): Promise<Token> {
    const current = this.#tokens.get(key);
    // Another call may already be renewing this token: share its answer.
    const renewing = current ? current.then((token) => (token === old ? this.#grant(login, old.refresh) : token)) : this.#grant(login, old.refresh);
    this.#tokens.set(key, renewing);
    renewing.catch(() => this.#tokens.delete(key));
    return renewing;
  }

  #forget(login: string | null, token: Token): void {
    const key = login ?? '';
    const current = this.#tokens.get(key);
    if (current) void current.then((cached) => cached === token && this.#tokens.get(key) === current && this.#tokens.delete(key), () => undefined);
  }

  /**
   * The script's own token by refresh when one is at hand (falling back to its credentials), else by credentials.
   * A user's (sudo) token is never refreshed, always minted again with its scope: nothing says a refreshed token
   * keeps `sudo_as_login`, and if it did not, every write after ten minutes would be the script's, with its rights
   * (shared/protocol/shotgrid-rest.md, "Authentication"; the sandbox plays that case).
   */
  async #grant(login: string | null, refreshToken: string | null): Promise<Token> {
    if (refreshToken && login === null) {
      try {
        return await this.#requestToken({ grant_type: 'refresh_token', refresh_token: refreshToken });
      } catch (error) {
        if (!(error instanceof ShotgridError) || (error.kind !== 'auth' && error.kind !== 'bad_request')) throw error;
      }
    }
    const params: Record<string, string> = {
      grant_type: 'client_credentials',
      client_id: this.#options.scriptName,
      client_secret: this.#options.scriptKey,
    };
    if (login !== null) params.scope = `sudo_as_login:${login}`;
    return this.#requestToken(params);
  }

  async #requestToken(params: Record<string, string>): Promise<Token> {
    const url = new URL('/api/v1/auth/access_token', this.siteUrl);
    return withRetries(
      async () => {
        // Parameters go in an urlencoded body (not the query string): secrets stay out of proxy access logs.
        const response = await request(url, {
          method: 'POST',
          dispatcher: this.#dispatcher,
          headersTimeout: this.#options.headersTimeoutMs ?? 30_000,
          headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(params).toString(),
        });
        const text = await response.body.text();
        if (response.statusCode >= 400) {
          const error = errorFromResponse(response.statusCode, response.headers, text);
          // ShotGrid answers a refused credential or sudo with 400 code 102.
          if (error.code === 102) throw new ShotgridError('auth', error.message, { status: response.statusCode, code: 102 });
          throw error;
        }
        const grant = JSON.parse(text) as { access_token?: unknown; refresh_token?: unknown; expires_in?: unknown };
        if (typeof grant.access_token !== 'string') throw new ShotgridError('protocol', 'The site answered the token request without an access_token');
        const lifetime = typeof grant.expires_in === 'number' ? grant.expires_in * 1000 : 600_000;
        return {
          access: grant.access_token,
          refresh: typeof grant.refresh_token === 'string' ? grant.refresh_token : null,
          expiresAt: Date.now() + lifetime,
        };
      },
      {
        policy: this.#options.retry ?? defaultRetryPolicy,
        classify: (error) => classify(error, true),
        onRetry: (error, attempt, delayMs) => {
          countRetry('site_api', retryCause(error));
          this.#options.log?.warn({ path: url.pathname, attempt, delayMs, err: describe(error) }, 'retrying ShotGrid token request');
        },
      },
    );
  }
}

/** A 401 on a token we thought valid: renewed once, then the call is tried again. */
class TokenRefused extends Error {}

function classify(error: unknown, idempotent: boolean): { retryable: boolean; retryAfterMs?: number } {
  if (error instanceof ShotgridError) {
    const after = error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs };
    if (error.kind === 'rate_limited' || error.status === 503) return { retryable: true, ...after };
    if (error.kind === 'unavailable' && (error.status === 502 || error.status === 504)) return { retryable: idempotent, ...after };
    return { retryable: false };
  }
  if (isNetworkError(error)) {
    const refused = (error as { code?: unknown }).code === 'ECONNREFUSED';
    return { retryable: idempotent || refused };
  }
  return { retryable: false };
}

/** Why an API call is sent again, as a metrics label: the site's status, the token, or the network. */
function retryCause(error: unknown): string {
  if (error instanceof TokenRefused) return 'token_refused';
  if (error instanceof ShotgridError && error.status !== null) return `HTTP${error.status}`;
  return isNetworkError(error) ? 'network' : 'other';
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Every field of a record: the string "*", as recorded live. A list holding "*" is unproven, and a site drops a
 * field name it does not know silently, so `["*"]` could read as no fields at all.
 */
export const ALL_FIELDS = '*';
export type Fields = readonly string[] | typeof ALL_FIELDS;

/** ShotGrid sessions: the API calls the service makes, as one acting user. */
export class ShotgridSession {
  readonly #client: ShotgridClient;
  readonly login: string | null;

  constructor(client: ShotgridClient, login: string | null) {
    this.#client = client;
    this.login = login;
  }

  async read(type: string, id: number, fields: Fields): Promise<SgRecord | null> {
    try {
      const reply = await this.#client.send(this.login, 'GET', `/api/v1/entity/${encodeURIComponent(type)}/${id}`, {
        query: { fields: fields === ALL_FIELDS ? ALL_FIELDS : fields.join(',') },
        idempotent: true,
      });
      return flatten((reply.json as { data: unknown }).data);
    } catch (error) {
      if (error instanceof ShotgridError && error.kind === 'not_found') return null;
      throw error;
    }
  }

  /** Every record that matches, page by page (ShotGrid's links.next is there even on the last page). */
  async find(type: string, filters: SgFilters, fields: Fields, options: FindOptions = {}): Promise<SgRecord[]> {
    const pageSize = Math.min(options.pageSize ?? 500, 500);
    const contentType = Array.isArray(filters) ? 'application/vnd+shotgun.api3_array+json' : 'application/vnd+shotgun.api3_hash+json';
    const ask = async (page: number): Promise<unknown[]> => {
      const reply = await this.#client.send(this.login, 'POST', `/api/v1/entity/${encodeURIComponent(type)}/_search`, {
        body: { filters, fields, ...(options.sort ? { sort: options.sort } : {}), page: { size: pageSize, number: page } },
        contentType,
        idempotent: true,
      });
      const data = (reply.json as { data?: unknown }).data;
      if (!Array.isArray(data)) throw new ShotgridError('protocol', 'A _search answer had no data list');
      return data;
    };
    const records: SgRecord[] = [];
    // Page 1 alone; after a full page, the next PAGES_AHEAD at once: a distant site answers each after a round
    // trip, and 2,000 attachments are four pages. The first short page ends the list (those after it are empty).
    for (let next = 1, window = 1; ; next += window, window = PAGES_AHEAD) {
      const pages = await Promise.all(Array.from({ length: window }, (_, i) => ask(next + i)));
      for (const data of pages) {
        records.push(...data.map(flatten));
        if (options.limit !== undefined && records.length >= options.limit) return records.slice(0, options.limit);
        if (data.length < pageSize) return records;
      }
    }
  }

  async create(type: string, data: Record<string, unknown>, fields: readonly string[] = []): Promise<SgRecord> {
    const reply = await this.#client.send(this.login, 'POST', `/api/v1/entity/${encodeURIComponent(type)}`, {
      body: data,
      ...(fields.length ? { query: { 'options[fields]': fields.join(',') } } : {}),
      idempotent: false,
    });
    return flatten((reply.json as { data: unknown }).data);
  }

  async update(type: string, id: number, data: Record<string, unknown>): Promise<SgRecord> {
    const reply = await this.#client.send(this.login, 'PUT', `/api/v1/entity/${encodeURIComponent(type)}/${id}`, { body: data, idempotent: true });
    return flatten((reply.json as { data: unknown }).data);
  }

  async delete(type: string, id: number): Promise<void> {
    await this.#client.send(this.login, 'DELETE', `/api/v1/entity/${encodeURIComponent(type)}/${id}`, { idempotent: true });
  }

  /** This session's access token (see ShotgridClient.bearer). */
  bearer(): Promise<string> {
    return this.#client.bearer(this.login);
  }

  /** Starts an upload: to a file/image field, or (field null) as a new Attachment linked to the record. */
  async beginUpload(target: { type: string; id: number; field: string | null }, filename: string, multipart: boolean): Promise<UploadStart> {
    const field = target.field === null ? '' : `/${encodeURIComponent(target.field)}`;
    const reply = await this.#client.send(this.login, 'GET', `/api/v1/entity/${encodeURIComponent(target.type)}/${target.id}${field}/_upload`, {
      query: { filename, ...(multipart ? { multipart_upload: 'true' } : {}) },
      idempotent: true,
    });
    const body = reply.json as { data?: Record<string, unknown>; links?: Record<string, unknown> };
    const links = body.links ?? {};
    if (!body.data || typeof links.upload !== 'string' || typeof links.complete_upload !== 'string') {
      throw new ShotgridError('protocol', 'The upload answer lacked data, links.upload or links.complete_upload');
    }
    return {
      info: body.data,
      uploadUrl: links.upload,
      completePath: links.complete_upload,
      nextPartPath: typeof links.get_next_part === 'string' ? links.get_next_part : null,
    };
  }

  /** The link for the next part of a multipart upload, and the path to the one after. */
  async nextPart(nextPartPath: string): Promise<{ uploadUrl: string; nextPartPath: string }> {
    const reply = await this.#client.send(this.login, 'GET', nextPartPath, { idempotent: true });
    const links = (reply.json as { links?: Record<string, unknown> }).links ?? {};
    if (typeof links.upload !== 'string' || typeof links.get_next_part !== 'string') {
      throw new ShotgridError('protocol', 'The next-part answer lacked links.upload or links.get_next_part');
    }
    return { uploadUrl: links.upload, nextPartPath: links.get_next_part };
  }

  /**
   * Where a download path on the site (`…/<field>?alt=original`) sends its bytes: the 302's Location, not
   * followed, so the Bearer token stays on the site. Only site API paths are asked (see send).
   */
  async locate(path: string, query: Record<string, string> = {}): Promise<string> {
    const reply = await this.#client.send(this.login, 'GET', path, { query, idempotent: true, followRedirect: false });
    const location = reply.headers.location;
    if (reply.status < 300 || reply.status >= 400 || typeof location !== 'string') {
      throw new ShotgridError('protocol', `A download link answered ${reply.status} without a redirect to storage`);
    }
    const url = new URL(location, this.#client.siteUrl);
    // A site on https never sends its files over plain http; other schemes (file:, data:) are never fetched.
    const allowed = new URL(this.#client.siteUrl).protocol === 'http:' ? ['https:', 'http:'] : ['https:'];
    if (!allowed.includes(url.protocol)) throw new ShotgridError('protocol', `A download link redirected to a ${url.protocol} URL`);
    return url.toString();
  }

  async completeUpload(completePath: string, info: Record<string, unknown>, data: { display_name?: string; tags?: { type: 'Tag'; id: number }[] } = {}): Promise<void> {
    await this.#client.send(this.login, 'POST', completePath, { body: { upload_info: info, upload_data: data }, idempotent: false });
  }

  async abortUpload(completePath: string, info: Record<string, unknown>): Promise<void> {
    await this.#client.send(this.login, 'POST', `${new URL(completePath, this.#client.siteUrl).pathname}/multipart_abort`, { body: info, idempotent: true });
  }
}

/** {type, id, attributes, relationships} → {type, id, ...attributes, ...relationship data}. */
export function flatten(resource: unknown): SgRecord {
  const { type, id, attributes, relationships } = (resource ?? {}) as {
    type?: unknown;
    id?: unknown;
    attributes?: Record<string, unknown>;
    relationships?: Record<string, { data?: unknown }>;
  };
  if (typeof type !== 'string' || typeof id !== 'number') throw new ShotgridError('protocol', 'A record without type and id');
  const record: SgRecord = { type, id, ...attributes };
  for (const [name, relation] of Object.entries(relationships ?? {})) record[name] = relation.data ?? null;
  return record;
}
