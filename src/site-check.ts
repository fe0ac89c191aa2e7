import { request } from 'undici';

// Readiness: can the service reach its tracking site? Any HTTP answer below 500 says the site is up (the probe
// carries no credentials, so 401/404 are expected); a 5xx (often a proxy in front of a site that is down),
// a network error or no answer in time says it is not.

export async function checkSiteReachable(siteUrl: string, timeoutMs = 5000): Promise<void> {
  const { statusCode, body } = await request(new URL('/api/v1/', siteUrl), {
    method: 'GET',
    // A fresh connection per probe: it tests that the site accepts connections, and leaves no pooled socket
    // behind to hold up a shutdown.
    headers: { accept: 'application/json', connection: 'close' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  await body.dump();
  if (statusCode >= 500) throw new Error(`the site answered ${statusCode}`);
}
