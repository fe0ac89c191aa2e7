import { Router } from 'express';

// Probes for load balancers and orchestrators. /healthz says the process answers; /readyz says it can do its job,
// which needs the tracking site. Both always answer JSON and are never cached.

export function healthRoutes(checkSite: () => Promise<void>): Router {
  const router = Router();

  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });

  router.get('/readyz', async (req, res) => {
    res.set('Cache-Control', 'no-store');
    try {
      await checkSite();
      res.json({ status: 'ok' });
    } catch (error) {
      req.log.warn({ err: error }, 'readiness: site unreachable');
      res.status(503).json({
        status: 'unavailable',
        error: { code: 'site_unreachable', message: 'The ShotGrid site did not answer.' },
      });
    }
  });

  return router;
}
