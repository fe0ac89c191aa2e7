import { randomBytes } from 'node:crypto';
import express, { type RequestHandler, type Router } from 'express';
import type { KeyValueStore } from '../store/key-value-store.ts';
import { HttpError } from '../web/errors.ts';
import { pagePath } from './launch-routes.ts';
import type { ContextStore, NewActionContext } from './context-store.ts';

// A launch from ftrack's event hub (ftrack-listener.ts) becomes a one-time link: the hub's reply carries
// GET /ftrack/launch/<token>, and following it creates the action context, as a ShotGrid launch does, and 303s to
// the action's page. The token, not the context id, travels through the hub (whose events other listeners and the
// server's event log may see): it works once and for LAUNCH_TOKEN_SECONDS, so what the hub saw opens nothing
// afterwards. It names the user the launch was made for; nothing else about the request counts
// (docs/decisions/0012-ftrack-launch.md).
//
//   GET /ftrack/launch/:token    redeem: create the context, 303 to /ami/<action>/<context id>

/** How long a launch link works: the menu opens it at once; two minutes cover a slow page. */
export const LAUNCH_TOKEN_SECONDS = 120;

const tokenPattern = /^[A-Za-z0-9_-]{43}$/;

interface StoredLaunch {
  context: NewActionContext;
  /** ms since the epoch: the store's TTL removes it too, but its clock may run behind ours. */
  expiresAt: number;
}

export type Redeemed = { ok: true; context: NewActionContext } | { ok: false; reason: 'expired' | 'used' };

export class HubLaunches {
  readonly #store: KeyValueStore;
  readonly #ttlSeconds: number;
  readonly #now: () => number;

  constructor(store: KeyValueStore, options: { ttlSeconds?: number; now?: () => number } = {}) {
    this.#store = store;
    this.#ttlSeconds = options.ttlSeconds ?? LAUNCH_TOKEN_SECONDS;
    this.#now = options.now ?? Date.now;
  }

  /** A new one-time token for this launch: 256 random bits, base64url. */
  async issue(context: NewActionContext): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    const stored: StoredLaunch = { context, expiresAt: this.#now() + this.#ttlSeconds * 1000 };
    await this.#store.set(launchKey(token), JSON.stringify(stored), this.#ttlSeconds, { owner: context.user.login });
    return token;
  }

  /**
   * The launch behind the token, once. The record stays until it expires, so a second use is told it was used
   * (not that it expired); the claim is atomic, so two requests at once cannot both redeem it, on any instance.
   */
  async redeem(token: string): Promise<Redeemed> {
    if (!tokenPattern.test(token)) return { ok: false, reason: 'expired' };
    const raw = await this.#store.get(launchKey(token));
    const stored = raw === null ? null : parse(raw);
    if (stored === null || stored.expiresAt <= this.#now()) return { ok: false, reason: 'expired' };
    if (!(await this.#store.setIfAbsent(usedKey(token), '1', this.#ttlSeconds))) return { ok: false, reason: 'used' };
    return { ok: true, context: stored.context };
  }
}

function parse(raw: string): StoredLaunch | null {
  try {
    const value = JSON.parse(raw) as Partial<StoredLaunch>;
    return typeof value.expiresAt === 'number' && typeof value.context === 'object' && value.context !== null ? (value as StoredLaunch) : null;
  } catch {
    return null;
  }
}

const launchKey = (token: string): string => `hub-launch:${token}`;
const usedKey = (token: string): string => `hub-launch-used:${token}`;

export interface HubLaunchRouteDeps {
  launches: HubLaunches;
  contexts: ContextStore;
  /** The path prefix of links people follow (PUBLIC_URL's path). */
  publicPath: string;
  siteName: string;
}

export function hubLaunchRoutes(deps: HubLaunchRouteDeps): Router {
  const router = express.Router();
  router.get('/ftrack/launch/:token', maskTokenInLog, redeemLaunch(deps));
  return router;
}

function redeemLaunch(deps: HubLaunchRouteDeps): RequestHandler {
  return async (req, res) => {
    res.set('Cache-Control', 'no-store');
    const redeemed = await deps.launches.redeem(String(req.params['token']));
    const again = `Pick the action again from ${deps.siteName}'s Actions menu: each launch link opens its page once, within ${LAUNCH_TOKEN_SECONDS / 60} minutes.`;
    if (!redeemed.ok && redeemed.reason === 'used') {
      req.log.warn('ftrack launch link used again: refused');
      throw new HttpError(410, 'launch_link_used', 'This launch link was already used.', { hint: again });
    }
    if (!redeemed.ok) throw new HttpError(410, 'launch_link_expired', 'This launch link has expired.', { hint: again });
    const context = await deps.contexts.create(redeemed.context);
    req.log.info({ action: context.action, user: context.user.login, entityType: context.entityType, selected: context.selectedIds.length, via: 'ftrack' }, 'action launched');
    res.redirect(303, pagePath(deps.publicPath, context));
  };
}

/** The token is a capability while it lives: the request log writes its path without it. */
const maskTokenInLog: RequestHandler = (_req, res, next) => {
  res.locals.logPath = '/ftrack/launch/:token';
  next();
};
