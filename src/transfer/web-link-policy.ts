import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { request, type Dispatcher } from 'undici';
import { outboundDispatcher, type ProxyRoute } from '../net/outbound.ts';

// Web links on the tracker are URLs nobody checked. The service fetches one only when its host is on the
// configured allow-list, over https, and never to a private, loopback or link-local address unless the operator
// allowed that: the check runs on the address actually connected to (so DNS rebinding cannot slip past it) and
// again on every redirect hop.

export interface WebLinkPolicy {
  /** Host names (`media.example.com`) or wildcard suffixes (`*.example.com`). */
  hosts: readonly string[];
  /** Private, loopback or link-local ranges that may be connected to after all (an intranet), as CIDRs. */
  allowedPrivateRanges: readonly string[];
  /** Allow plain http (tests, or an intranet without TLS). */
  allowHttp?: boolean;
}

export class WebLinkRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebLinkRefused';
  }
}

const privateRanges = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  privateRanges.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  // Addresses that carry an IPv4 address inside (IPv4-compatible, NAT64, 6to4): through them a "public" IPv6
  // address can reach a private IPv4 one. IPv4-mapped (::ffff:0:0/96) is unwrapped and checked as IPv4 above.
  ['::', 96],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  privateRanges.addSubnet(network, prefix, 'ipv6');
}

export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return privateRanges.check(mapped[1], 'ipv4');
  const family = isIP(address);
  if (family === 0) return true;
  return privateRanges.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** Whether the policy lets the service connect to this address. */
export function addressAllowed(policy: WebLinkPolicy, address: string): boolean {
  if (!isPrivateAddress(address)) return true;
  const plain = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? address;
  const family = isIP(plain) === 6 ? 'ipv6' : 'ipv4';
  return policy.allowedPrivateRanges.some((cidr) => {
    const [network, prefix] = cidr.split('/');
    if (!network || isIP(network) !== (family === 'ipv6' ? 6 : 4)) return false;
    const ranges = new BlockList();
    ranges.addSubnet(network, Number(prefix ?? (family === 'ipv6' ? 128 : 32)), family);
    return ranges.check(plain, family);
  });
}

export function hostAllowed(policy: WebLinkPolicy, hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return policy.hosts.some((entry) => {
    const rule = entry.toLowerCase();
    return rule.startsWith('*.') ? host.endsWith(rule.slice(1)) && host.length > rule.length - 1 : host === rule;
  });
}

/** Throws WebLinkRefused unless the URL may be fetched under the policy (before any connection). */
export function checkWebLink(policy: WebLinkPolicy, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebLinkRefused('not a URL');
  }
  if (url.protocol !== 'https:' && !(policy.allowHttp && url.protocol === 'http:')) {
    throw new WebLinkRefused(`${url.protocol.replace(':', '')} links are not fetched`);
  }
  if (url.username || url.password) throw new WebLinkRefused('links with credentials are not fetched');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!hostAllowed(policy, host)) throw new WebLinkRefused(`${host} is not on the allowed hosts list (WEB_LINK_HOSTS)`);
  if (isIP(host) && !addressAllowed(policy, host)) throw new WebLinkRefused(`${host} is a private address`);
  return url;
}

type Lookup = (hostname: string, options: { all: true }, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

/**
 * An undici dispatcher whose every direct connection goes only to allowed addresses: the resolver's answers are
 * filtered before the socket connects. With a proxy route (WEB_LINKS_VIA_PROXY), links go through the proxy
 * instead, except those NO_PROXY exempts, which stay direct and guarded: through the proxy the service never
 * learns the address a name resolves to, so there the host allow-list (checkWebLink, on every hop) is the guard,
 * and the proxy's own rules are the studio's (docs/decisions/0010-outbound-proxy.md).
 */
export function createWebLinkAgent(policy: WebLinkPolicy, lookup: Lookup = dnsLookup as unknown as Lookup, proxy: ProxyRoute | null = null): Dispatcher {
  return outboundDispatcher(proxy, {
    connect: {
      lookup: (hostname, options, callback) => {
        lookup(hostname, { all: true }, (error, addresses) => {
          if (error) return callback(error, '', 0);
          const usable = addresses.filter((entry) => addressAllowed(policy, entry.address));
          const first = usable[0];
          if (!first) return callback(new WebLinkRefused(`${hostname} resolves only to private addresses`), '', 0);
          if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
          return callback(null, first.address, first.family);
        });
      },
    },
  });
}

/**
 * Follows a web link's redirects by hand, checking every hop against the policy, and returns the final URL
 * (where the bytes are) without reading its body.
 */
export async function resolveWebLink(policy: WebLinkPolicy, dispatcher: Dispatcher, raw: string, maxRedirects = 5, signal?: AbortSignal): Promise<string> {
  let url = checkWebLink(policy, raw);
  for (let hop = 0; hop <= maxRedirects; hop++) {
    const response = await request(url, { method: 'HEAD', dispatcher, ...(signal ? { signal } : {}) });
    await response.body.dump();
    if (response.statusCode >= 300 && response.statusCode < 400 && response.headers.location) {
      url = checkWebLink(policy, new URL(String(response.headers.location), url).toString());
      continue;
    }
    return url.toString();
  }
  throw new WebLinkRefused(`more than ${maxRedirects} redirects`);
}
