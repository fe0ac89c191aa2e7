import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { request } from 'undici';
import { projectRoot } from '../../src/paths.ts';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { TEST_SESSION_SECRET } from '../helpers/service.ts';
import { siteEnvironment, spawnService, type ServiceProcess } from '../helpers/service-process.ts';

// The production bundle as the Dockerfile and the Procfile run it, since CI cannot build the image: `npm run
// build`'s compiler output in a folder of its own, beside views/, public/, package.json and the production
// dependencies alone (the dev ones cannot be reached from there), started with the Procfile's command in
// production mode; the Dockerfile's HEALTHCHECK command passes against it, and SIGTERM ends it cleanly.

const execFileAsync = promisify(execFile);
let folder: string;
let site: SandboxSite;
let service: ServiceProcess;
let environment: Record<string, string>;

/** The Dockerfile's exec-form instruction (`CMD ["node", …]`), as its argument list. */
function dockerfileCommand(dockerfile: string, instruction: 'CMD' | 'HEALTHCHECK'): string[] {
  const line = dockerfile.split('\n').find((text) => text.startsWith(`${instruction} `));
  const json = line === undefined ? undefined : /(\[.*\])\s*$/.exec(line)?.[1];
  assert.ok(json, `the Dockerfile has an exec-form ${instruction}`);
  return JSON.parse(json) as string[];
}

before(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ami-transfer-production-'));
  await execFileAsync(join(projectRoot, 'node_modules', '.bin', 'tsc'), ['-p', join(projectRoot, 'tsconfig.build.json'), '--outDir', join(folder, 'dist')], { cwd: projectRoot });
  for (const part of ['views', 'public', 'package.json']) await cp(join(projectRoot, part), join(folder, part), { recursive: true });
  // The production dependencies as npm installs them (`npm ci --omit=dev`), linked from this checkout's.
  // (npm ls exits 1 over an extraneous package in a working checkout; its list is still the tree.)
  const { stdout } = await execFileAsync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: projectRoot, maxBuffer: 16 * 1024 * 1024 }).catch(
    (error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }),
  );
  const topLevel = stdout
    .split('\n')
    .map((path) => relative(join(projectRoot, 'node_modules'), path))
    .filter((path) => path !== '' && !path.startsWith('..') && !path.split(sep).slice(path.startsWith('@') ? 2 : 1).includes('node_modules'));
  assert.ok(topLevel.includes('express') && !topLevel.includes('typescript'), `production packages: ${topLevel.join(', ')}`);
  for (const name of new Set(topLevel)) {
    await mkdir(dirname(join(folder, 'node_modules', name)), { recursive: true });
    await symlink(join(projectRoot, 'node_modules', name), join(folder, 'node_modules', name), 'dir');
  }
  site = await startSandboxSite({});
  environment = siteEnvironment(site, TEST_SESSION_SECRET, { NODE_ENV: 'production', SHUTDOWN_GRACE_SECONDS: '5' });
});
after(async () => {
  await service?.stop();
  await site?.close();
  if (folder) await rm(folder, { recursive: true, force: true });
});

test('the Dockerfile and the Procfile run the same command', async () => {
  const dockerfile = await readFile(join(projectRoot, 'Dockerfile'), 'utf8');
  const procfile = await readFile(join(projectRoot, 'Procfile'), 'utf8');
  const web = /^web: (.+)$/m.exec(procfile)?.[1];
  assert.deepEqual(dockerfileCommand(dockerfile, 'CMD'), web?.split(' '));
  assert.match(dockerfile, /^FROM node:24-slim$/m);
  assert.match(dockerfile, /^USER node$/m, 'not root');
  assert.match(dockerfile, /^STOPSIGNAL SIGTERM$/m);
});

test('the bundle with production dependencies only starts in production mode, is healthy by the Dockerfile\'s check, and stops on SIGTERM', async () => {
  const procfile = await readFile(join(projectRoot, 'Procfile'), 'utf8');
  const [node, ...args] = /^web: (.+)$/m.exec(procfile)![1]!.split(' ');
  assert.equal(node, 'node');
  const script = args.pop()!;
  service = await spawnService(environment, args, join(folder, script));

  const health = await request(`${service.url}/healthz`);
  assert.equal(health.statusCode, 200);
  assert.deepEqual(await health.body.json(), { status: 'ok' });
  const ready = await request(`${service.url}/readyz`);
  assert.equal(ready.statusCode, 200);
  assert.equal(((await ready.body.json()) as { status: string }).status, 'ok', 'the site answers the production build');
  const page = await request(`${service.url}/public/style.css`);
  await page.body.dump();
  assert.equal(page.statusCode, 200, 'its public files are found beside the bundle');

  // The image's HEALTHCHECK, run as Docker would inside it: same folder, same environment (the port it listens on).
  const [checkNode, ...checkArgs] = dockerfileCommand(await readFile(join(projectRoot, 'Dockerfile'), 'utf8'), 'HEALTHCHECK');
  assert.equal(checkNode, 'node');
  const healthcheck = (port: number) => execFileAsync(process.execPath, checkArgs, { cwd: folder, env: { PATH: process.env['PATH'] ?? '', ...environment, PORT: String(port) } });
  await healthcheck(service.port);
  await assert.rejects(healthcheck(1), 'and fails where nothing answers');

  service.child.kill('SIGTERM');
  assert.equal(await service.exited, 0);
});
