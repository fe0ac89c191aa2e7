import { Agent, EnvHttpProxyAgent, type Dispatcher } from 'undici';
import { Secret } from '../config.ts';

// Every request the service sends out (the site's API, its storage, allowed web links) goes through a dispatcher
// made here, so a studio whose way out is an HTTP proxy sets HTTPS_PROXY / HTTP_PROXY / NO_PROXY as it does for
// curl or the official Python client, and nothing goes around it. The settings are read once, at start, and
// checked: a proxy URL is secret (it may carry credentials) and is never shown; logs get `describe` instead.
//
// Conventions (those of curl, Go and Python's requests): HTTPS_PROXY is for https:// destinations and HTTP_PROXY
// for http:// ones, neither standing in for the other; lower-case names win over upper-case ones; NO_PROXY lists
// host names, domains (`.example.com` or `example.com`: the domain and every name under it), IP addresses, each
// optionally with `:port`, or `*` for everything. Requests through the proxy are tunnelled (CONNECT), so the proxy
// sees where they go, never what they carry: signed URLs, tokens and bodies stay end to end.

export interface OutboundProxy {
  /** The proxy for http:// destinations, with any credentials (secret); null: they go direct. */
  http: Secret | null;
  /** The proxy for https:// destinations (secret); null: they go direct. */
  https: Secret | null;
  /** Destinations that go direct, as NO_PROXY lists them (checked, lower-case). */
  noProxy: readonly string[];
  /** Where requests go, for the start-up log: proxies without their credentials. */
  describe: string;
}

export interface ProxyProblem {
  variable: string;
  message: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Reads the proxy variables (lower-case first). Null when no proxy is set; problems name their variable. */
export function readOutboundProxy(env: Env): { proxy: OutboundProxy | null; problems: ProxyProblem[] } {
  const problems: ProxyProblem[] = [];
  const pick = (name: string): { variable: string; value: string } | null => {
    for (const variable of [name.toLowerCase(), name]) {
      const value = env[variable]?.trim();
      if (value) return { variable, value };
    }
    return null;
  };
  const proxyUrl = (name: string): Secret | null => {
    const found = pick(name);
    if (found === null) return null;
    const url = parseProxyUrl(found.value);
    if (url === null) {
      // The value itself is not repeated: it may hold a password.
      problems.push({ variable: found.variable, message: `${found.variable} must be the proxy's http:// or https:// URL, with credentials if it needs them, e.g. http://user:password@proxy.studio.lan:3128 (no path or query).` });
      return null;
    }
    return new Secret(url.href);
  };
  const http = proxyUrl('HTTP_PROXY');
  const https = proxyUrl('HTTPS_PROXY');
  const noProxyFound = pick('NO_PROXY');
  const noProxy: string[] = [];
  for (const entry of noProxyFound?.value.split(/[\s,]+/).filter((item) => item !== '') ?? []) {
    const problem = noProxyEntryProblem(entry);
    if (problem === null) noProxy.push(entry.toLowerCase());
    else problems.push({ variable: noProxyFound!.variable, message: `${noProxyFound!.variable}: "${entry}" ${problem}` });
  }
  if (http === null && https === null) return { proxy: null, problems };
  const shown = (secret: Secret | null): string => (secret === null ? 'direct' : withoutCredentials(secret.reveal()));
  const describe = `https:// via ${shown(https)}, http:// via ${shown(http)}${noProxy.length > 0 ? `, direct for ${noProxy.join(',')}` : ''}`;
  return { proxy: { http, https, noProxy, describe }, problems };
}

function parseProxyUrl(raw: string): URL | null {
  // A bare host:port is an http proxy (curl's reading).
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return null;
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) return null;
  return url;
}

/** Why a NO_PROXY entry cannot be used as written, or null. */
function noProxyEntryProblem(entry: string): string | null {
  if (entry === '*') return null;
  if (entry.includes('/')) return 'is an address range; NO_PROXY takes host names, domains and single addresses here: list the hosts.';
  const [, host] = /^(\[[0-9a-f:.]+\]|[^:]+)(?::\d{1,5})?$/i.exec(entry) ?? [];
  if (host === undefined) return 'is not a host, domain or address with an optional :port (write an IPv6 address in brackets, e.g. [::1]).';
  if (!host.startsWith('[') && !/^(?:\*\.|\.)?[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?$/i.test(host)) return 'is not a host name, domain or address.';
  return null;
}

/** A proxy URL as it may be shown: its credentials left out. */
export function withoutCredentials(href: string): string {
  const url = new URL(href);
  url.username = '';
  url.password = '';
  return url.origin;
}

/** How undici is told where to send a request: explicit values, so nothing is read from the environment later. */
export interface ProxyRoute {
  httpProxy: string;
  httpsProxy: string;
  noProxy: string;
}

export function proxyRoute(proxy: OutboundProxy): ProxyRoute {
  // An empty string is "no proxy" to undici (undefined would make it read the environment itself).
  return { httpProxy: proxy.http?.reveal() ?? '', httpsProxy: proxy.https?.reveal() ?? '', noProxy: proxy.noProxy.join(',') };
}

/** A dispatcher with these connection options that sends each request through the proxy unless NO_PROXY says not. */
export function outboundDispatcher(route: ProxyRoute | null, options: Agent.Options = {}): Dispatcher {
  return route === null ? new Agent(options) : new EnvHttpProxyAgent({ ...options, ...route });
}

/** The service's ways out: one pool for the site's API, one for storage, and how web links may be proxied. */
export interface Outbound {
  /** The site's API (a bounded pool kept warm: the API is called in bursts). */
  readonly site: Dispatcher;
  /** Signed storage URLs for parts and files, and a local install's upload route (no connection cap). */
  readonly storage: Dispatcher;
  /** Web links go through the proxy only when WEB_LINKS_VIA_PROXY says so; null: direct, with the address guard. */
  readonly webLinkRoute: ProxyRoute | null;
  close(): Promise<void>;
}

export function createOutbound(proxy: OutboundProxy | null, options: { webLinksViaProxy?: boolean } = {}): Outbound {
  const route = proxy === null ? null : proxyRoute(proxy);
  const site = outboundDispatcher(route, { keepAliveTimeout: 30_000, connections: 32 });
  const storage = outboundDispatcher(route);
  return {
    site,
    storage,
    webLinkRoute: options.webLinksViaProxy ? route : null,
    close: async () => void (await Promise.all([site.close(), storage.close()])),
  };
}
