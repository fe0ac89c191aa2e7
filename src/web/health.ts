import { Router } from 'express';

// Probes for load balancers and orchestrators. /healthz says the process answers; /readyz says it can do its job,
// which needs the tracking site to answer AND accept the service's credentials. Both always answer JSON and are
// never cached.

/** A probe that waits longer than this is answered "unavailable": orchestrators give up on slow probes anyway. */
const READINESS_TIMEOUT_MS = 5000;

export function healthRoutes(checkSite: () => Promise<void>, timeoutMs = READINESS_TIMEOUT_MS): Router {
  const router = Router();

  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });

  router.get('/readyz', async (req, res) => {
    res.set('Cache-Control', 'no-store');
    try {
      await withTimeout(checkSite(), timeoutMs);
      res.json({ status: 'ok' });
    } catch (error) {
      req.log.warn({ err: error }, 'readiness: site unreachable or refusing the credentials');
      res.status(503).json({
        status: 'unavailable',
        error: { code: 'site_unreachable', message: "The ShotGrid site did not answer, or refused the service's credentials." },
      });
    }
  });

  return router;
}

function withTimeout(check: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([check, timeout]).finally(() => clearTimeout(timer));
}
