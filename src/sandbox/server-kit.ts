import type { Server } from 'node:http';
import express from 'express';
import { ZodError, z } from 'zod';
import type { FaultInjector } from './faults.ts';

// What both sandbox sites (ShotGrid's and ftrack's) need of their HTTP servers: the fault settings' admin routes,
// and a close that does not wait for kept-alive connections.

/** GET the fault settings, PUT to replace them, PATCH to change some, DELETE to turn every fault off. */
export function faultsAdminRouter(faults: FaultInjector): express.Router {
  const router = express.Router();
  router.use(express.json({ limit: '16kb' }));
  const answer = (res: express.Response, apply: () => unknown): void => {
    try {
      apply();
      res.json(faults.settings);
    } catch (error) {
      if (!(error instanceof ZodError)) throw error;
      res.status(400).json({ error: { code: 'invalid_faults', message: z.prettifyError(error) } });
    }
  };
  router.get('/faults', (_req, res) => void res.json(faults.settings));
  router.put('/faults', (req, res) => answer(res, () => faults.set(req.body)));
  router.patch('/faults', (req, res) => answer(res, () => faults.update(req.body)));
  router.delete('/faults', (_req, res) => answer(res, () => faults.reset()));
  return router;
}

/** Stops listening and closes every connection, idle or not. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}

/** A port from the environment variable `name` (0 for any), or `fallback` when unset; anything else stops the start. */
export function portFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new Error(`${name} must be a port number (0-65535), got ${JSON.stringify(raw)}`);
  return value;
}

/**
 * Storage's default host name: another name for the site's machine. Autodesk's Node client takes an upload link
 * on the site's own host for a local install's and rewrites its port (shotgrid-rest.md, "Upload (direct to
 * storage)"): S3 always has another host name, so the sandboxes' storage gets one too, where the machine has one.
 */
export function otherNameFor(siteHost: string): string {
  if (siteHost === 'localhost') return '127.0.0.1';
  if (['127.0.0.1', '::1', '0.0.0.0', '::'].includes(siteHost)) return 'localhost';
  return siteHost;
}
