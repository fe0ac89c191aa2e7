import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { steadyPort } from './nginx.ts';

// Debian's tinyproxy as a studio's outbound proxy, started by the test as the current user with a configuration it
// writes: it listens on loopback, takes only clients from 127.0.0.1 that give its Basic credentials, and connects
// onward FROM its own address (`Bind`, 127.0.0.2), so a server can tell what came through it from what came direct.
// Without tinyproxy installed the tests fail with what to install (CI installs it), never skip.

const TINYPROXY = '/usr/bin/tinyproxy';

/** The address tinyproxy connects onward from: what arrives from it came through the proxy. */
export const PROXY_SOURCE_ADDRESS = '127.0.0.2';

export interface Tinyproxy {
  port: number;
  user: string;
  password: string;
  /** http://user:password@127.0.0.1:PORT */
  url: string;
  /** The same without credentials. */
  address: string;
  /** Its log so far (connections, CONNECT requests, refusals). */
  log(): Promise<string>;
  /** The `host:port` of every tunnel it opened (one per connection it made onward). */
  tunnels(): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startTinyproxy(credentials: { user: string; password: string }): Promise<Tinyproxy> {
  const probe = spawnSync(TINYPROXY, ['-v'], { encoding: 'utf8' });
  if (probe.error) {
    throw new Error(`These tests send the service's requests through Debian's tinyproxy, but ${TINYPROXY} is not installed: apt-get install tinyproxy (CI installs it). (${probe.error.message})`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'ami-transfer-tinyproxy-'));
  const port = await steadyPort();
  const logPath = join(dir, 'tinyproxy.log');
  const conf = join(dir, 'tinyproxy.conf');
  await writeFile(
    conf,
    [
      `Port ${port}`,
      'Listen 127.0.0.1',
      `Bind ${PROXY_SOURCE_ADDRESS}`,
      'Allow 127.0.0.1',
      'Timeout 600',
      'MaxClients 200',
      `LogFile "${logPath}"`,
      // Connect: one line per connection and per CONNECT, with its destination (never a header's value).
      'LogLevel Connect',
      `PidFile "${join(dir, 'tinyproxy.pid')}"`,
      `BasicAuth ${credentials.user} ${credentials.password}`,
      // No ConnectPort line: tunnels to any port (the sandbox's are ephemeral). A studio's proxy lists 443.
      '',
    ].join('\n'),
  );
  // -d: stays in the foreground, so it is this process's child and ends with it.
  const child = spawn(TINYPROXY, ['-d', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    process.removeListener('exit', killOnExit);
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`tinyproxy did not start on port ${port}: ${stderr}`);
    }
    await sleep(20);
  }
  const log = () => readFile(logPath, 'utf8').catch(() => '');
  return {
    port,
    ...credentials,
    url: `http://${encodeURIComponent(credentials.user)}:${encodeURIComponent(credentials.password)}@127.0.0.1:${port}`,
    address: `http://127.0.0.1:${port}`,
    log,
    tunnels: async () => [...(await log()).matchAll(/Request \(file descriptor \d+\): CONNECT (\S+) HTTP/g)].map((match) => match[1]!),
    stop,
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}
