// Transport failures (reset, refused, timeout), told apart from programming errors: what a retry may cure. Used by
// every outbound caller (the trackers' clients, storage PUTs, downloads), so it lives in neither.

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/**
 * undici's words when the outbound proxy answers a CONNECT with anything but 200 (src/net/outbound.ts). A 5xx means
 * the proxy could not reach the destination (or is overloaded): to us, the same as a refused connection. A 407 or
 * 403 is the proxy's settings, which no retry cures.
 */
const PROXY_TUNNEL_REFUSED = /^Proxy response \((\d{3})\) !== 200 when HTTP Tunneling$/;

/** Whether an exception (or one of its causes) is a transport failure rather than a programming error. */
export function isNetworkError(error: unknown): boolean {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
    if (Number(PROXY_TUNNEL_REFUSED.exec(current.message)?.[1]) >= 500) return true;
  }
  return false;
}
