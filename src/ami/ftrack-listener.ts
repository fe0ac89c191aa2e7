import { Event, EventHub, type EventPayload } from '@ftrack/api';
import { z } from 'zod';
import type { Logger } from '../log.ts';
import { allActions, appliesTo, entityTypesText, findAction } from '../actions/registry.ts';
import type { KeyValueStore } from '../store/key-value-store.ts';
import type { SiteUsers } from '../trackers/site-users.ts';
import type { EntityRole, SelectedEntity, Tracker } from '../trackers/tracker.ts';
import type { HubLaunches } from './hub-launches.ts';
import { sharedProject } from './launch-routes.ts';

// ftrack's right-click actions (../shared/protocol/ftrack.md, "Right-click actions: the event hub"): a listener on
// the server's event hub, through @ftrack/api's own EventHub. It answers `ftrack.action.discover` with the actions
// that fit the selection's roles, and `ftrack.action.launch` for its own identifiers with a widget reply whose URL
// is a one-time launch link (hub-launches.ts). The JS client receives every launch, so others' are left alone.
//
// The package's traps, handled here: an async handler that rejects, and any publish (its own subscriptions and
// replies among them) that does not connect within 30 s, reject with nothing to catch them, and an unhandled
// rejection ends the process. Handlers therefore never reject, and every publish is caught (GuardedEventHub).

/** Identifiers this service's menu items carry: `ami-transfer.<action>`. */
export const ACTION_PREFIX = 'ami-transfer.';

/** The most entities one menu event may select; a bigger selection is offered nothing (the page would refuse it too). */
export const MAX_SELECTION = 1000;

/** How long an event's "answered by one instance" mark is kept: the menu waits seconds for replies. */
const ANSWERED_TTL_SECONDS = 120;

const selectionSchema = z
  .array(z.object({ entityId: z.string().min(1).max(64), entityType: z.string().min(1).max(64) }))
  .min(1)
  .max(MAX_SELECTION);

const menuEventSchema = z.object({
  id: z.string().min(1).max(128),
  data: z.object({ selection: z.unknown(), actionIdentifier: z.string().max(256).optional() }),
  source: z.object({ user: z.object({ username: z.string().min(1).max(256) }) }),
});

export interface FtrackListenerOptions {
  serverUrl: string;
  apiUser: string;
  /** The site's API key: handed to the EventHub only (it goes in the handshake's query), never logged. */
  apiKey: string;
  tracker: Tracker;
  users: SiteUsers;
  launches: HubLaunches;
  /** Marks each event answered, so that of several instances on the hub one answers. */
  store: KeyValueStore;
  /** Where people reach the service (PUBLIC_URL). */
  publicUrl: string;
  log: Logger;
}

type Reply = Record<string, unknown> | null;

/** @ftrack/api's EventHub with every publish's failure caught and logged (see the top of this file). */
class GuardedEventHub extends EventHub {
  onPublishFailure: (error: unknown) => void = () => {};

  override connect(): void {
    super.connect();
    quietSocket((this as unknown as { _socketIo: unknown })._socketIo);
  }

  /**
   * The package removes the WebSocket's error handler before closing it; a socket still connecting then emits an
   * error nothing listens to, which ws throws: one listener more keeps that from ending the process.
   */
  override disconnect(): void {
    const socket = (this as unknown as { _socketIo?: { webSocket?: { on?: unknown } } | null })._socketIo?.webSocket;
    if (socket && typeof socket.on === 'function') (socket.on as (event: string, listener: () => void) => void).call(socket, 'error', () => {});
    super.disconnect();
  }

  override publish(event: Event, options?: Parameters<EventHub['publish']>[1]): Promise<string> {
    const published = super.publish(event, options);
    published.catch((error: unknown) => this.onPublishFailure(error));
    return published;
  }
}

export class FtrackActionListener {
  readonly #options: FtrackListenerOptions;
  readonly #hub: GuardedEventHub;
  #started = false;

  constructor(options: FtrackListenerOptions) {
    this.#options = options;
    this.#hub = new GuardedEventHub(options.serverUrl, options.apiUser, options.apiKey, { applicationId: 'ami-transfer' });
    this.#hub.onPublishFailure = (error) =>
      options.log.warn({ err: { message: error instanceof Error ? error.message : 'publish failed' } }, 'ftrack event hub: an event could not be sent (not connected); the hub reconnects by itself');
  }

  /** Connects and subscribes; the EventHub reconnects by itself after a drop and subscribes again. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#hub.connect();
    // Each handler returns a promise that never rejects: the EventHub sends what it resolves to as the reply.
    this.#hub.subscribe('topic=ftrack.action.discover', (event) => this.#answer(event, () => this.#discover(event)));
    this.#hub.subscribe('topic=ftrack.action.launch', (event) => this.#answer(event, () => this.#launch(event)));
    this.#options.log.info({ serverUrl: this.#options.serverUrl, apiUser: this.#options.apiUser }, 'ftrack action listener started');
  }

  isConnected(): boolean {
    return this.#hub.isConnected();
  }

  /** For /readyz: throws while the hub connection is down (it comes back by itself). */
  async check(): Promise<void> {
    if (!this.#hub.isConnected()) throw new Error('not connected to the ftrack event hub');
  }

  close(): void {
    this.#hub.disconnect();
  }

  async #answer(event: EventPayload, handle: () => Promise<Reply>): Promise<Reply> {
    try {
      return await handle();
    } catch (error) {
      this.#options.log.warn({ err: error, topic: event.topic }, 'ftrack action event could not be answered');
      return event.topic === 'ftrack.action.launch'
        ? { success: false, message: `ami-transfer could not start the action (${this.#options.tracker.siteName} did not answer as expected). Try again in a moment.` }
        : null;
    }
  }

  async #discover(payload: EventPayload): Promise<Reply> {
    const event = menuEventSchema.safeParse(payload);
    const selection = event.success ? selectionSchema.safeParse(event.data.data.selection) : null;
    if (!event.success || !selection?.success) return null;
    const menuType = singleType(selection.data);
    if (menuType === null) return null;
    if (!(await this.#claim(event.data.id))) return null;
    const username = event.data.source.user.username;
    const roles = await this.#roles(username, menuType, selection.data.map((item) => item.entityId));
    if (roles === null) return null;
    const items = allActions()
      .filter((action) => roles.every((role) => appliesTo(action, role)))
      .map((action) => ({ label: action.title, actionIdentifier: `${ACTION_PREFIX}${action.action}`, description: action.description, variant: 'ami-transfer' }));
    return { items };
  }

  async #launch(payload: EventPayload): Promise<Reply> {
    const event = menuEventSchema.safeParse(payload);
    const identifier = event.success ? event.data.data.actionIdentifier : undefined;
    // Another tool's action: not ours to answer (the JS client gets every launch).
    if (!event.success || identifier === undefined || !identifier.startsWith(ACTION_PREFIX)) return null;
    const action = findAction(identifier.slice(ACTION_PREFIX.length));
    if (action === undefined) return null;
    if (!(await this.#claim(event.data.id))) return null;
    const { tracker, log } = this.#options;

    const selection = selectionSchema.safeParse(event.data.data.selection);
    const menuType = selection.success ? singleType(selection.data) : null;
    if (!selection.success || menuType === null) {
      return { success: false, message: `Select between 1 and ${MAX_SELECTION} entities of one kind, then pick “${action.title}” again.` };
    }
    const username = event.data.source.user.username;
    const user = await this.#options.users.findUser(username);
    if (user === null) {
      log.warn({ action: action.action, user: username }, 'ftrack launch refused: no active user by that name');
      return { success: false, message: `“${username}” is not an active ${tracker.siteName} user.` };
    }
    const ids = [...new Set(selection.data.map((item) => item.entityId))];
    const { visible } = await tracker.lookupSelection(username, menuType, ids);
    if (visible.length === 0) return { success: false, message: `None of the selected entities can be seen by “${username}” in ${tracker.siteName}.` };
    if (!visible.every((entity) => appliesTo(action, tracker.roleOf(entity.type)))) {
      return { success: false, message: `“${action.title}” works on ${entityTypesText(action)}.` };
    }

    const token = await this.#options.launches.issue({
      action: action.action,
      siteUrl: tracker.siteUrl,
      user,
      // Delivered only to the connection that launched (the hub routes the reply), once and briefly: the
      // decision record (0012) says what that binds and what it does not.
      signed: true,
      entityType: contextType(visible, menuType),
      selectedIds: ids,
      project: sharedProject(visible),
      title: null,
    });
    log.info({ action: action.action, user: username, entityType: menuType, selected: ids.length }, 'ftrack launch: link issued');
    return {
      success: true,
      type: 'widget',
      url: `${this.#options.publicUrl}/ftrack/launch/${token}`,
      title: action.title,
      message: `Opening “${action.title}”.`,
    };
  }

  /** The roles of the selected entities as `username` sees them (the menu's `task` is any context: looked up). */
  async #roles(username: string, menuType: string, ids: readonly string[]): Promise<EntityRole[] | null> {
    const { visible } = await this.#options.tracker.lookupSelection(username, menuType, [...new Set(ids)]);
    if (visible.length === 0) return null;
    return [...new Set(visible.map((entity) => this.#options.tracker.roleOf(entity.type)))];
  }

  /** True for the first instance to see this event: every instance on the hub receives it, one answers. */
  #claim(eventId: string): Promise<boolean> {
    return this.#options.store.setIfAbsent(`hub-event:${eventId}`, '1', ANSWERED_TTL_SECONDS);
  }
}

/**
 * The package's socket prints the WebSocket's error and "7" events with console.error/log, and those print the
 * socket, whose URL carries the API key in its query. Its handlers are replaced by the same steps without the
 * printing (1.11.2's handleError and handleMessage; left alone if the package no longer has them).
 */
function quietSocket(client: unknown): void {
  const socket = client as { handleError?: unknown; handleMessage?: unknown; handleClose?: unknown } | null;
  if (socket === null || typeof socket.handleError !== 'function' || typeof socket.handleMessage !== 'function' || typeof socket.handleClose !== 'function') return;
  const handleMessage = socket.handleMessage as (event: { data?: unknown }) => void;
  const handleClose = socket.handleClose as () => void;
  socket.handleError = function (this: unknown): void {
    handleClose.call(this);
  };
  socket.handleMessage = function (this: unknown, event: { data?: unknown }): void {
    if (typeof event?.data === 'string' && event.data.startsWith('7')) handleClose.call(this);
    else handleMessage.call(this, event);
  };
}

/** The selection's one menu type, or null for a mix (a menu offers actions for one kind of entity). */
function singleType(selection: readonly { entityType: string }[]): string | null {
  const types = new Set(selection.map((item) => item.entityType));
  return types.size === 1 ? [...types][0]! : null;
}

/** The launch's entity type as the adapter names it: the concrete type when all share one, else the menu's. */
function contextType(visible: readonly SelectedEntity[], menuType: string): string {
  const types = new Set(visible.map((entity) => entity.type));
  return types.size === 1 ? [...types][0]! : menuType;
}
