import { pino } from 'pino';
import { faultsFromEnv } from './faults.ts';
import { startSandboxSite } from './site.ts';
import { portFromEnv } from './server-kit.ts';

// `npm run sandbox`: the sandbox ShotGrid site on its own, for trying the service against it from another
// process or machine. The service starts the same site in-process when no real site is configured.

/** SANDBOX_STORAGE_ENCRYPTION=aws:kms plays a studio's SSE-KMS bucket (ETags that are not MD5s). */
function storageEncryption(): { storageEncryption?: 'aws:kms' } {
  const raw = process.env.SANDBOX_STORAGE_ENCRYPTION;
  if (raw === undefined || raw === '') return {};
  if (raw !== 'aws:kms') throw new Error(`SANDBOX_STORAGE_ENCRYPTION must be aws:kms (or unset), got ${JSON.stringify(raw)}`);
  return { storageEncryption: raw };
}

/** SANDBOX_STORAGE_SERVICE=sg plays a local install (uploads to the site itself); s3 (the default) ShotGrid's cloud. */
function storageService(): { storageService?: 's3' | 'sg' } {
  const raw = process.env.SANDBOX_STORAGE_SERVICE;
  if (raw === undefined || raw === '') return {};
  if (raw !== 's3' && raw !== 'sg') throw new Error(`SANDBOX_STORAGE_SERVICE must be s3 or sg, got ${JSON.stringify(raw)}`);
  return { storageService: raw };
}

/** SANDBOX_MALWARE_SCAN_SECONDS: how long the seeded attachment under scan answers 409 (default 20). */
function malwareScanSeconds(): { malwareScanSeconds?: number } {
  const raw = process.env.SANDBOX_MALWARE_SCAN_SECONDS;
  if (raw === undefined || raw === '') return {};
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`SANDBOX_MALWARE_SCAN_SECONDS must be 0 or more, got ${JSON.stringify(raw)}`);
  return { malwareScanSeconds: value };
}

const log = pino({ name: 'sandbox' });
try {
  const site = await startSandboxSite({
    port: portFromEnv('SANDBOX_PORT', 3001),
    storagePort: portFromEnv('SANDBOX_STORAGE_PORT', 3002),
    ...(process.env.SANDBOX_HOST ? { host: process.env.SANDBOX_HOST } : {}),
    ...(process.env.SANDBOX_STORAGE_HOST ? { storageHost: process.env.SANDBOX_STORAGE_HOST } : {}),
    ...storageEncryption(),
    ...storageService(),
    ...malwareScanSeconds(),
    ...(process.env.SANDBOX_DATA_DIR ? { dataDir: process.env.SANDBOX_DATA_DIR } : {}),
    serviceUrl: process.env.PUBLIC_URL ?? `http://localhost:${process.env.PORT ?? 3000}`,
    faults: faultsFromEnv(process.env.SANDBOX_FAULTS),
    log,
  });
  process.stdout.write(`\nSandbox ShotGrid site: ${site.url}\nRight-click menu:      ${site.menuUrl}\nScript: ${site.scriptName} / ${site.scriptKey}\n\n`);
  const stop = () => void site.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} catch (error) {
  process.stderr.write(`sandbox: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
