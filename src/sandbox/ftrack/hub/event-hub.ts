import { compileExpression, type Matcher } from './expressions.ts';

// The event hub's routing, apart from its transport (socket-io.ts): endpoints (a WebSocket connection, or the
// sandbox itself for its menu page) hold subscribers; an event goes to every subscriber whose subscription matches
// it and, when the event has a target, whose metadata matches the target — the server routes targeted replies,
// the JS client does not look at `target` (ftrack.md). Events pass through unchanged: `source` is what the publisher
// wrote (see README).

export interface HubEvent {
  id: string;
  topic: string;
  data?: unknown;
  target?: string;
  inReplyToEvent?: string | null;
  source?: { id?: string; applicationId?: string; user?: { username?: string; id?: string } };
  [key: string]: unknown;
}

export interface Endpoint {
  /** Sends one event to this endpoint (one frame on a connection). */
  deliver(event: HubEvent): void;
}

export type Delivery = 'per-subscriber' | 'per-endpoint';

interface Subscriber {
  id: string;
  metadata: Record<string, unknown>;
  subscription: string;
  matches: Matcher;
}

/** Bounds per endpoint: a client cannot grow the hub's memory without limit. */
const maxSubscribersPerEndpoint = 1000;
const maxTopicLength = 256;
const historySize = 200;

export interface HubOptions {
  /**
   * 'per-subscriber' (default): an endpoint gets one copy of an event for each of its subscribers that matches,
   * so a JS client with two matching subscribers runs each handler twice (UNCONFIRMED, the pessimistic case);
   * 'per-endpoint': one copy per connection. A subscriber id subscribed twice is one subscriber either way.
   */
  delivery?: Delivery;
}

export class EventHub {
  readonly #endpoints = new Map<Endpoint, Map<string, Subscriber>>();
  readonly #delivery: Delivery;
  readonly #subscribeWaiters: { topic: string; count: number; resolve: () => void }[] = [];
  /** The last 200 events routed (not the meta events), oldest first: what tests look at. */
  readonly history: HubEvent[] = [];
  /** Subscriptions refused because the sandbox cannot parse them. */
  readonly refusedSubscriptions: string[] = [];

  constructor(options: HubOptions = {}) {
    this.#delivery = options.delivery ?? 'per-subscriber';
  }

  attach(endpoint: Endpoint): void {
    if (!this.#endpoints.has(endpoint)) this.#endpoints.set(endpoint, new Map());
  }

  detach(endpoint: Endpoint): void {
    this.#endpoints.delete(endpoint);
  }

  /**
   * An event from `from`. Meta events change `from`'s subscribers and go nowhere; others are routed. Answers how
   * many copies were delivered (0 for a malformed event, which is dropped).
   */
  publish(from: Endpoint, raw: unknown): number {
    if (!isHubEvent(raw)) return 0;
    if (raw.topic === 'ftrack.meta.subscribe') {
      this.#subscribe(from, raw.data);
      return 0;
    }
    if (raw.topic === 'ftrack.meta.unsubscribe') {
      const subscriberId = (raw.data as { subscriber?: { id?: unknown } } | undefined)?.subscriber?.id;
      if (typeof subscriberId === 'string') this.#endpoints.get(from)?.delete(subscriberId);
      return 0;
    }
    this.history.push(raw);
    if (this.history.length > historySize) this.history.shift();
    const target = typeof raw.target === 'string' && raw.target.trim() !== '' ? compileExpression(raw.target) : undefined;
    // A target the hub cannot read reaches no one rather than everyone.
    if (target === null) return 0;
    let copies = 0;
    for (const [endpoint, subscribers] of [...this.#endpoints]) {
      let matching = 0;
      for (const subscriber of subscribers.values()) {
        if (subscriber.matches(raw) && (!target || target(subscriber.metadata))) matching++;
      }
      const count = this.#delivery === 'per-endpoint' ? Math.min(matching, 1) : matching;
      for (let i = 0; i < count; i++) endpoint.deliver(raw);
      copies += count;
    }
    return copies;
  }

  /** How many subscribers (on every endpoint) an untargeted event of `topic` would reach. */
  subscriberCount(topic: string): number {
    let count = 0;
    for (const subscribers of this.#endpoints.values()) {
      for (const subscriber of subscribers.values()) if (subscriber.matches({ topic })) count++;
    }
    return count;
  }

  /** Resolves once at least `count` subscribers would receive an untargeted event of `topic` (tests, the menu). */
  whenSubscribed(topic: string, count = 1): Promise<void> {
    if (this.subscriberCount(topic) >= count) return Promise.resolve();
    return new Promise((resolve) => this.#subscribeWaiters.push({ topic, count, resolve }));
  }

  #subscribe(from: Endpoint, data: unknown): void {
    const subscribers = this.#endpoints.get(from);
    if (!subscribers || data === null || typeof data !== 'object') return;
    const { subscriber, subscription } = data as { subscriber?: unknown; subscription?: unknown };
    const metadata = subscriber !== null && typeof subscriber === 'object' ? (subscriber as Record<string, unknown>) : null;
    const id = metadata?.id;
    if (!metadata || typeof id !== 'string' || id === '' || id.length > 256) return;
    const matches = compileExpression(subscription);
    if (!matches) {
      if (this.refusedSubscriptions.length < 100) this.refusedSubscriptions.push(String(subscription).slice(0, 200));
      return;
    }
    // The JS client sends its reply subscription twice on connect (ftrack.md, strict): the same id is one subscriber.
    if (!subscribers.has(id) && subscribers.size >= maxSubscribersPerEndpoint) return;
    subscribers.set(id, { id, metadata: { ...metadata }, subscription: String(subscription), matches });
    for (const waiter of [...this.#subscribeWaiters]) {
      if (this.subscriberCount(waiter.topic) < waiter.count) continue;
      this.#subscribeWaiters.splice(this.#subscribeWaiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  }
}

function isHubEvent(raw: unknown): raw is HubEvent {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return false;
  const event = raw as Record<string, unknown>;
  return typeof event.id === 'string' && typeof event.topic === 'string' && event.topic !== '' && event.topic.length <= maxTopicLength;
}
