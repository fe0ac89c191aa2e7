import type { RequestHandler } from 'express';

// Cuts a connection that has stopped on the client's side: a request body that no longer comes while the service
// is reading it, or an answer the client no longer takes while the service has more to send. Only time spent
// waiting on the client counts: a part held back because storage is slow (the service paused the body), or a zip
// waiting for its next source (nothing to send), is not idle. Node's own socket timeout cannot tell these apart.

export function cutIdleClients(idleMs: number): RequestHandler {
  return (req, res, next) => {
    const socket = req.socket;
    let readAt = Date.now();
    let lastRead = socket.bytesRead;
    let writtenAt = Date.now();
    let lastWritten = socket.bytesWritten;
    const check = (): void => {
      const now = Date.now();
      if (socket.bytesRead !== lastRead || req.readableFlowing !== true || req.complete) {
        lastRead = socket.bytesRead;
        readAt = now;
      }
      if (socket.bytesWritten !== lastWritten || !res.writableNeedDrain) {
        lastWritten = socket.bytesWritten;
        writtenAt = now;
      }
      const stalled = now - readAt > idleMs ? 'request body' : now - writtenAt > idleMs ? 'response' : null;
      if (stalled === null) return;
      req.log.info({ idleSeconds: Math.round(idleMs / 1000), stalled }, 'client idle: connection closed');
      socket.destroy();
    };
    const timer = setInterval(check, Math.max(250, Math.min(5000, idleMs / 4))).unref();
    res.once('close', () => clearInterval(timer));
    next();
  };
}

/**
 * Requests in flight at once from one client address (req.ip: behind the studio's proxy, as TRUST_PROXY reads
 * X-Forwarded-For). Set high: remote artists may share a VPN's address. Past it: 503 with Retry-After.
 */
export function limitRequestsPerClient(max: number): RequestHandler {
  const inFlight = new Map<string, number>();
  return (req, res, next) => {
    const client = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const count = (inFlight.get(client) ?? 0) + 1;
    if (count > max) {
      res.status(503).set({ 'Retry-After': '5', 'Content-Type': 'text/plain; charset=utf-8' }).end(`Too many requests at once from ${client}; try again in a moment.\n`);
      return;
    }
    inFlight.set(client, count);
    res.once('close', () => {
      const left = (inFlight.get(client) ?? 1) - 1;
      if (left <= 0) inFlight.delete(client);
      else inFlight.set(client, left);
    });
    next();
  };
}
