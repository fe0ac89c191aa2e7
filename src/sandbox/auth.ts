import { randomBytes, timingSafeEqual } from 'node:crypto';
import express, { type Request, type RequestHandler, type Router } from 'express';
import type { Viewer } from './access.ts';
import { ApiError, API_CODE, badRequest, unauthorized } from './api-errors.ts';
import type { FaultInjector } from './faults.ts';
import type { EntityRef, RecordStore } from './records.ts';

// OAuth as ShotGrid's REST API does it: POST /api/v1/auth/access_token with a grant (client_credentials,
// password, refresh_token) in the query string or a form body, `scope=sudo_as_login:<login>` to act as a user.
// Only client_credentials with that scope acts as a user: a refreshed token is the script again (withoutSudo).

export interface ScriptCredential {
  apiUserId: number;
  key: string;
  /** Whether this script may act as other users (ShotGrid's "sudo" permission on the script's group). */
  maySudo: boolean;
}

export interface Credentials {
  /** By script name (ApiUser.firstname). */
  scripts: Map<string, ScriptCredential>;
  /** By HumanUser login. */
  passwords: Map<string, string>;
}

interface Grant {
  viewer: Viewer;
  issuedAt: number;
  expiresAt: number;
}

const REFRESH_TOKEN_LIFETIME_MS = 24 * 3600 * 1000;

export interface AuthOptions {
  store: RecordStore;
  credentials: Credentials;
  faults: FaultInjector;
  /** Access token lifetime, the site preference (ShotGrid's default is 600 s). */
  tokenTtlSeconds: number;
}

export class TokenIssuer {
  readonly #options: AuthOptions;
  readonly #access = new Map<string, Grant>();
  readonly #refresh = new Map<string, Grant>();
  /** Every token issued, kept for tests (a few per user and hour: small). */
  readonly #issued: string[] = [];

  constructor(options: AuthOptions) {
    this.#options = options;
  }

  issue(viewer: Viewer): { token_type: 'Bearer'; access_token: string; expires_in: number; refresh_token: string } {
    const now = Date.now();
    const ttl = this.#options.tokenTtlSeconds;
    const accessToken = randomBytes(24).toString('base64url');
    const refreshToken = randomBytes(24).toString('base64url');
    this.#access.set(accessToken, { viewer, issuedAt: now, expiresAt: now + ttl * 1000 });
    this.#refresh.set(refreshToken, { viewer, issuedAt: now, expiresAt: now + REFRESH_TOKEN_LIFETIME_MS });
    this.#issued.push(accessToken, refreshToken);
    this.#sweep(now);
    return { token_type: 'Bearer', access_token: accessToken, expires_in: ttl, refresh_token: refreshToken };
  }

  /** The viewer behind a Bearer token; throws 401 for a missing, unknown (forged) or expired token. */
  authenticate(authorization: string | undefined): Viewer {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match?.[1]) throw unauthorized('Authorization header with a Bearer token is required');
    const grant = this.#access.get(match[1]);
    if (!grant) throw unauthorized('Invalid access token');
    if (this.#expired(grant)) throw unauthorized('Access token expired');
    return grant.viewer;
  }

  /** Every access and refresh token issued so far. */
  issued(): readonly string[] {
    return [...this.#issued];
  }

  /** Grants a new access token for a refresh token; the refresh token is used up, as OAuth rotation does. */
  refresh(refreshToken: string): Viewer {
    const grant = this.#refresh.get(refreshToken);
    if (!grant || Date.now() >= grant.expiresAt) throw badRequest('Invalid or expired refresh token');
    this.#refresh.delete(refreshToken);
    return grant.viewer;
  }

  #expired(grant: Grant): boolean {
    const now = Date.now();
    const early = this.#options.faults.settings.tokenTtlSeconds;
    if (early !== null && now >= grant.issuedAt + early * 1000) return true;
    return now >= grant.expiresAt;
  }

  #sweep(now: number): void {
    for (const [token, grant] of this.#access) if (grant.expiresAt <= now) this.#access.delete(token);
    for (const [token, grant] of this.#refresh) if (grant.expiresAt <= now) this.#refresh.delete(token);
  }
}

/** The access-token endpoint. */
export function accessTokenRouter(options: AuthOptions, tokens: TokenIssuer): Router {
  const router = express.Router();
  router.post('/api/v1/auth/access_token', express.urlencoded({ extended: false, limit: '16kb' }), (req, res) => {
    const param = grantParams(req);
    const grantType = param('grant_type');
    let viewer: Viewer;
    switch (grantType) {
      case 'client_credentials':
        viewer = scriptViewer(options, param('client_id'), param('client_secret'));
        break;
      case 'password':
        viewer = passwordViewer(options, param('username'), param('password'));
        break;
      case 'refresh_token':
        res.json(tokens.issue(withoutSudo(tokens.refresh(param('refresh_token') ?? ''))));
        return;
      case 'session_token':
        throw badRequest('session_token grants are not supported by the sandbox site');
      default:
        throw badRequest(`Unsupported grant_type ${JSON.stringify(grantType ?? '')}`);
    }
    const scope = param('scope');
    if (scope !== undefined && scope !== '') viewer = applySudo(options, viewer, scope);
    res.json(tokens.issue(viewer));
  });
  return router;
}

/** Express middleware: authenticates the Bearer token and stores the viewer in res.locals.viewer. */
export function requireViewer(tokens: TokenIssuer): RequestHandler {
  return (req, res, next) => {
    res.locals.viewer = tokens.authenticate(req.get('authorization'));
    next();
  };
}

function grantParams(req: Request): (name: string) => string | undefined {
  const body: unknown = req.body;
  return (name) => {
    const fromQuery = req.query[name];
    if (typeof fromQuery === 'string') return fromQuery;
    if (typeof body === 'object' && body !== null && name in body) {
      const value = (body as Record<string, unknown>)[name];
      if (typeof value === 'string') return value;
    }
    return undefined;
  };
}

function scriptViewer(options: AuthOptions, name: string | undefined, key: string | undefined): Viewer {
  const script = name === undefined ? undefined : options.credentials.scripts.get(name);
  if (!script || key === undefined || !sameSecret(script.key, key)) {
    throw new ApiError(400, API_CODE.auth, `Can't authenticate script '${name ?? ''}'`);
  }
  const ref: EntityRef = { type: 'ApiUser', id: script.apiUserId };
  return { user: ref, principal: ref };
}

function passwordViewer(options: AuthOptions, login: string | undefined, password: string | undefined): Viewer {
  const expected = login === undefined ? undefined : options.credentials.passwords.get(login);
  const user = login === undefined ? undefined : activeUser(options.store, login);
  if (expected === undefined || password === undefined || !sameSecret(expected, password) || !user) {
    throw new ApiError(400, API_CODE.auth, "Can't authenticate user");
  }
  return { user, principal: user };
}

function applySudo(options: AuthOptions, viewer: Viewer, scope: string): Viewer {
  const match = /^sudo_as_login:(.+)$/.exec(scope);
  if (!match?.[1]) throw badRequest(`Unsupported scope ${JSON.stringify(scope)}`);
  const login = match[1];
  const script = [...options.credentials.scripts.values()].find((s) => s.apiUserId === viewer.principal.id);
  if (viewer.principal.type !== 'ApiUser' || !script?.maySudo) {
    throw new ApiError(400, API_CODE.auth, `This user is not allowed to sudo as ${login}`);
  }
  const user = activeUser(options.store, login);
  if (!user) throw new ApiError(400, API_CODE.auth, `Can't sudo as '${login}': no active user with this login`);
  return { user, principal: viewer.principal };
}

/**
 * What a refreshed token acts as. No source says a token from `grant_type=refresh_token` keeps the
 * `sudo_as_login` of the grant it came from (shotgrid-rest.md, Authentication): the sandbox plays the pessimistic
 * case, in which it does not, and the token acts as the script that signed in. A client that refreshes a sudo
 * token then writes as the script here as it might on a real site, and the wrong author shows in tests.
 */
function withoutSudo(viewer: Viewer): Viewer {
  return { user: viewer.principal, principal: viewer.principal };
}

function activeUser(store: RecordStore, login: string): EntityRef | undefined {
  const record = store.all('HumanUser').find((user) => user.fields.login === login);
  if (!record || record.fields.sg_status_list !== 'act') return undefined;
  return { type: 'HumanUser', id: record.id };
}

function sameSecret(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
