import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';

// The HTTP server both pass-throughs run their one handler in. Kept apart from bench-kit.ts, which loads the
// ShotGrid client: a pass-through's heap holds only what it needs, or the reference would be slower than it must.
//
// Env: PASS_THROUGH_PORT (0 = any), PASS_THROUGH_HOST (127.0.0.1). Prints "listening <port>" when ready; closes on
// SIGTERM or SIGINT.

export function servePassThrough(handler: RequestListener): void {
  const server = createServer({ requestTimeout: 0 }, handler);
  server.listen(Number(process.env.PASS_THROUGH_PORT ?? 0), process.env.PASS_THROUGH_HOST ?? '127.0.0.1', () => {
    process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
  });
  const stop = (): void => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
