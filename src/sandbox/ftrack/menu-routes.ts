import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import ejs from 'ejs';
import express, { type Router } from 'express';
import { z } from 'zod';
import { publicDir, viewsDir } from '../../paths.ts';
import type { Accounts } from './access.ts';
import type { Endpoint, EventHub, HubEvent } from './hub/event-hub.ts';
import type { Entity, EntityStore } from './store.ts';

// The page that plays ftrack's action menu (ftrack.md, "Right-click actions"): pick a user, an entity type and
// entities; the sandbox — it is the hub — publishes `ftrack.action.discover` with data.selection
// [{entityId, entityType}], lists the items the listeners reply, and on a click publishes `ftrack.action.launch`
// (the item plus the selection) and answers the first reply; a `{type: "widget", url}` reply opens the URL.
// How long the web UI waits for discover replies is UNCONFIRMED: the sandbox waits `discoverWaitMs`, or less once
// every subscriber reached has replied (see README).

/** What the menu offers, and the entityType ftrack's web UI puts in a selection for it (ftrack.md). */
const menuTypes = [
  { type: 'Project', title: 'Projects', entityType: 'show' },
  { type: 'Shot', title: 'Shots', entityType: 'task' },
  { type: 'Task', title: 'Tasks', entityType: 'task' },
  { type: 'AssetVersion', title: 'Versions', entityType: 'assetversion' },
  { type: 'FileComponent', title: 'Components', entityType: 'Component' },
] as const;
type MenuType = (typeof menuTypes)[number];

export interface MenuDeps {
  store: EntityStore;
  accounts: Accounts;
  hub: EventHub;
  siteUrl(): string;
  discoverWaitMs: number;
  launchWaitMs: number;
}

const selectionRequest = z.strictObject({
  login: z.string().min(1).max(256),
  type: z.string().max(64),
  ids: z.array(z.uuid()).max(1000),
});
const launchRequest = selectionRequest.extend({
  // The item as discover answered it, sent back whole (ftrack's UI does the same).
  item: z.record(z.string().max(64), z.union([z.string().max(4096), z.number(), z.boolean(), z.null()])).refine((item) => typeof item.actionIdentifier === 'string', {
    message: 'item.actionIdentifier is required',
  }),
});

export function menuRouter(deps: MenuDeps): Router {
  const router = express.Router();
  const replies = new ReplyCollector(deps.hub);
  router.use('/public/sandbox/ftrack', express.static(join(publicDir, 'sandbox', 'ftrack'), { index: false, redirect: false }));

  router.get('/sandbox/menu', async (req, res) => {
    const people = menuPeople(deps);
    const login = typeof req.query.login === 'string' && people.some((p) => p.username === req.query.login) ? req.query.login : (people[0]?.username ?? '');
    const menuType = menuTypes.find((candidate) => candidate.type === req.query.type) ?? menuTypes[1];
    const actor = deps.accounts.actorFor(login);
    const rows = actor ? deps.store.all(menuType.type).filter((entity) => actor.canRead(entity)).map((entity) => row(deps.store, entity)) : [];
    const html = await ejs.renderFile(join(viewsDir, 'sandbox', 'ftrack', 'menu.ejs'), {
      siteHost: new URL(deps.siteUrl()).host,
      people,
      login,
      menuTypes,
      menuType,
      rows,
      listeners: deps.hub.subscriberCount('ftrack.action.discover'),
    });
    res.set({ 'Cache-Control': 'no-store', 'Content-Security-Policy': contentSecurityPolicy() }).type('html').send(html);
  });

  router.post('/sandbox/menu/discover', express.json({ limit: '256kb' }), async (req, res) => {
    const parsed = selectionRequest.safeParse(req.body);
    if (!parsed.success) return void res.status(400).json({ error: z.prettifyError(parsed.error) });
    const selection = checkedSelection(deps, parsed.data);
    if ('error' in selection) return void res.status(400).json(selection);
    const event = menuEvent(selection.user, 'ftrack.action.discover', { selection: selection.items }, replies.sourceId);
    const answers = await replies.publish(event, { waitMs: deps.discoverWaitMs, enough: (count, reached) => count >= reached });
    const items = answers.flatMap((reply) => {
      const list = (reply.data as { items?: unknown } | undefined)?.items;
      return Array.isArray(list) ? list.filter((item) => item !== null && typeof item === 'object' && typeof item.actionIdentifier === 'string') : [];
    });
    res.set('Cache-Control', 'no-store').json({ items, replies: answers.length });
  });

  router.post('/sandbox/menu/launch', express.json({ limit: '256kb' }), async (req, res) => {
    const parsed = launchRequest.safeParse(req.body);
    if (!parsed.success) return void res.status(400).json({ error: z.prettifyError(parsed.error) });
    const selection = checkedSelection(deps, parsed.data);
    if ('error' in selection) return void res.status(400).json(selection);
    const event = menuEvent(selection.user, 'ftrack.action.launch', { ...parsed.data.item, selection: selection.items }, replies.sourceId);
    const [first] = await replies.publish(event, { waitMs: deps.launchWaitMs, enough: (count) => count >= 1 });
    res.set('Cache-Control', 'no-store').json(first ? { reply: first.data ?? null } : { reply: null, timedOut: true });
  });
  return router;
}

/** The sandbox's own place on the hub: one subscriber for replies, and the replies each published event gets. */
class ReplyCollector {
  readonly sourceId = randomUUID();
  readonly #hub: EventHub;
  readonly #endpoint: Endpoint;
  readonly #waiting = new Map<string, (reply: HubEvent) => void>();

  constructor(hub: EventHub) {
    this.#hub = hub;
    this.#endpoint = { deliver: (event) => this.#waiting.get(String(event.inReplyToEvent))?.(event) };
    hub.attach(this.#endpoint);
    hub.publish(this.#endpoint, {
      id: randomUUID(),
      topic: 'ftrack.meta.subscribe',
      data: { subscriber: { id: this.sourceId, applicationId: 'ftrack.client.web' }, subscription: 'topic=ftrack.meta.reply' },
    });
  }

  /** Publishes and collects replies until `enough` (given the replies so far and the subscribers reached) or `waitMs`. */
  publish(event: HubEvent, options: { waitMs: number; enough: (count: number, reached: number) => boolean }): Promise<HubEvent[]> {
    return new Promise((resolve) => {
      const collected: HubEvent[] = [];
      let reached = Number.POSITIVE_INFINITY;
      const finish = (): void => {
        clearTimeout(timer);
        this.#waiting.delete(event.id);
        resolve(collected);
      };
      const timer = setTimeout(finish, options.waitMs);
      this.#waiting.set(event.id, (reply) => {
        if (collected.length >= 100) return;
        collected.push(reply);
        if (options.enough(collected.length, reached)) finish();
      });
      reached = this.#hub.publish(this.#endpoint, event);
      if (reached === 0 || options.enough(collected.length, reached)) finish();
    });
  }
}

function menuEvent(user: Entity, topic: string, data: Record<string, unknown>, sourceId: string): HubEvent {
  return {
    id: randomUUID(),
    topic,
    data,
    target: '',
    inReplyToEvent: null,
    source: { id: sourceId, applicationId: 'ftrack.client.web', user: { username: String(user.attrs.username), id: String(user.attrs.id) } },
  };
}

function checkedSelection(
  deps: MenuDeps,
  input: { login: string; type: string; ids: string[] },
): { user: Entity; items: { entityId: string; entityType: string }[] } | { error: string } {
  const actor = deps.accounts.actorFor(input.login);
  if (!actor) return { error: `No active user "${input.login}"` };
  const menuType: MenuType | undefined = menuTypes.find((candidate) => candidate.type === input.type);
  if (!menuType) return { error: `The menu does not offer ${input.type}` };
  for (const id of input.ids) {
    const entity = deps.store.find(menuType.type, [id]);
    if (!entity || !actor.canRead(entity)) return { error: `${menuType.type} ${id} is not visible to ${input.login}` };
  }
  return { user: actor.user, items: input.ids.map((entityId) => ({ entityId, entityType: menuType.entityType })) };
}

function menuPeople(deps: MenuDeps): { username: string; name: string }[] {
  return deps.store
    .all('User')
    .filter((user) => user.attrs.username !== 'ami-transfer' && deps.accounts.actorFor(String(user.attrs.username)))
    .map((user) => ({ username: String(user.attrs.username), name: `${String(user.attrs.first_name)} ${String(user.attrs.last_name)}` }));
}

function row(store: EntityStore, entity: Entity): { id: string; name: string; path: string } {
  const name = (e: Entity | undefined): string => {
    if (!e) return '';
    if (e.type === 'AssetVersion') return `${name(byId(store, e.attrs.asset_id))} v${String(e.attrs.version).padStart(3, '0')}`;
    if (e.type === 'FileComponent') return `${String(e.attrs.name)}${String(e.attrs.file_type ?? '')}`;
    return String(e.attrs.name ?? e.attrs.id);
  };
  const path: string[] = [];
  let at = entity.type === 'FileComponent' ? byId(store, entity.attrs.version_id) : entity.type === 'AssetVersion' ? byId(store, byId(store, entity.attrs.asset_id)?.attrs.context_id) : byId(store, entity.attrs.parent_id);
  if (entity.type === 'FileComponent' && at) path.push(name(at));
  if (entity.type === 'FileComponent') at = byId(store, byId(store, at?.attrs.asset_id)?.attrs.context_id);
  for (let depth = 0; at && depth < 16; depth++) {
    path.unshift(name(at));
    at = byId(store, at.attrs.parent_id);
  }
  return { id: String(entity.attrs.id), name: name(entity), path: path.join(' / ') };
}

function byId(store: EntityStore, id: unknown): Entity | undefined {
  return typeof id === 'string' ? store.byId(id) : undefined;
}

/** Script and style from this site; the widget URL may open anywhere (the service), in a frame or a new tab. */
function contentSecurityPolicy(): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    'frame-src http: https:',
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}
