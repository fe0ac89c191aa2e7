import { pino } from 'pino';
import { faultsFromEnv } from '../faults.ts';
import { startFtrackSandbox } from './site.ts';

// `node src/sandbox/ftrack/main.ts`: the sandbox ftrack server on its own, for trying a client against it from
// another process. FTRACK_SANDBOX_PORT (default 3003), FTRACK_SANDBOX_STORAGE_PORT (default 3004),
// FTRACK_SANDBOX_HOST, FTRACK_SANDBOX_DATA_DIR, and SANDBOX_FAULTS (the same JSON as the ShotGrid sandbox's).

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new Error(`${name} must be a port number (0-65535), got ${JSON.stringify(raw)}`);
  return value;
}

const log = pino({ name: 'ftrack-sandbox' });
try {
  const sandbox = await startFtrackSandbox({
    port: port('FTRACK_SANDBOX_PORT', 3003),
    storagePort: port('FTRACK_SANDBOX_STORAGE_PORT', 3004),
    ...(process.env.FTRACK_SANDBOX_HOST ? { host: process.env.FTRACK_SANDBOX_HOST } : {}),
    ...(process.env.FTRACK_SANDBOX_DATA_DIR ? { dataDir: process.env.FTRACK_SANDBOX_DATA_DIR } : {}),
    faults: faultsFromEnv(process.env.SANDBOX_FAULTS),
    log,
  });
  const keys = Object.entries(sandbox.apiKeys).map(([user, key]) => `  ${user.padEnd(13)} ${key}`).join('\n');
  process.stdout.write(
    `\nSandbox ftrack server: ${sandbox.url}\nAction menu:           ${sandbox.menuUrl}\n` +
      `Service user / key:    ${sandbox.apiUser} / ${sandbox.apiKey} (the site's key: names any user)\nPersonal keys:\n${keys}\n\n`,
  );
  const stop = () => void sandbox.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} catch (error) {
  process.stderr.write(`ftrack sandbox: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
