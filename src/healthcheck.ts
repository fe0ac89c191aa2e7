import { get } from 'node:http';
import { loadConfig } from './config.ts';
import { reachableHost } from './net/addresses.ts';

// The container's HEALTHCHECK (Dockerfile): `node dist/healthcheck.js` asks this instance's /healthz, found from the
// same environment the service reads (PORT, HOST, BASE_PATH or PUBLIC_URL's path), and exits 0 when it answers 200,
// 1 otherwise. Plain node:http to the local port: never through an outbound proxy, nothing to install in the image.

const TIMEOUT_MS = 4000;

function check(): Promise<boolean> {
  let url: string;
  try {
    const config = loadConfig();
    url = `http://${reachableHost(config.host)}:${config.port}${config.basePath}/healthz`;
  } catch (error) {
    process.stderr.write(`healthcheck: ${error instanceof Error ? error.message : String(error)}\n`);
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const request = get(url, { timeout: TIMEOUT_MS }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.once('timeout', () => request.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    request.once('error', (error) => {
      process.stderr.write(`healthcheck: ${url}: ${error.message}\n`);
      resolve(false);
    });
  });
}

process.exitCode = (await check()) ? 0 : 1;
