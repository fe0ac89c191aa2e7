import { pino } from 'pino';
import { faultsFromEnv } from '../faults.ts';
import { startFtrackSandbox } from './site.ts';
import { portFromEnv } from '../server-kit.ts';

// `node src/sandbox/ftrack/main.ts`: the sandbox ftrack server on its own, for trying a client against it from
// another process. FTRACK_SANDBOX_PORT (default 3003), FTRACK_SANDBOX_STORAGE_PORT (default 3004),
// FTRACK_SANDBOX_HOST, FTRACK_SANDBOX_DATA_DIR, and SANDBOX_FAULTS (the same JSON as the ShotGrid sandbox's).

const log = pino({ name: 'ftrack-sandbox' });
try {
  const sandbox = await startFtrackSandbox({
    port: portFromEnv('FTRACK_SANDBOX_PORT', 3003),
    storagePort: portFromEnv('FTRACK_SANDBOX_STORAGE_PORT', 3004),
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
