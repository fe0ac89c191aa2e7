import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// A real, throw-away redis-server for tests: its own port, its own empty folder, no persistence. Without
// redis-server installed the tests that need it fail with a message saying what to install (CI installs it):
// a skipped Redis test would let the Redis twin rot unnoticed.

export interface RedisServer {
  url: string;
  port: number;
  /** Freezes the process (SIGSTOP): connections stay open and nothing is answered, as with a Redis that hangs. */
  pause(): void;
  /** Lets a paused server go on (SIGCONT): it answers what it was sent meanwhile. */
  resume(): void;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its folder. */
  stop(): Promise<void>;
}

const startTimeoutMs = 10_000;

/** Starts redis-server on a free port (or the given one) and resolves once it answers PING. */
export async function startRedisServer(options: { port?: number } = {}): Promise<RedisServer> {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error) {
    throw new Error(
      'These tests run a real Redis, but redis-server is not installed: apt-get install redis-server ' +
        `(the Debian package; CI installs it). (${probe.error.message})`,
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'ami-transfer-redis-'));
  try {
    // A port found free can be taken before redis binds it: try again with another.
    for (let attempt = 1; ; attempt += 1) {
      const port = options.port ?? (await freePort());
      const started = await tryStart(port, dir);
      if (started) return started;
      if (options.port !== undefined || attempt === 3) throw new Error(`redis-server could not listen on port ${port}`);
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function tryStart(port: number, dir: string): Promise<RedisServer | null> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  let exited = false;
  child.once('exit', () => (exited = true));
  // If the test process ends without its `after` hooks, the server must not outlive it.
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const deadline = Date.now() + startTimeoutMs;
  while (!(await answersPing(port))) {
    if (exited) {
      process.removeListener('exit', killOnExit);
      if (/address already in use/i.test(output)) return null;
      throw new Error(`redis-server exited before answering:\n${output}`);
    }
    if (Date.now() > deadline) {
      await stopChild(child);
      process.removeListener('exit', killOnExit);
      throw new Error(`redis-server did not answer PING within ${startTimeoutMs} ms:\n${output}`);
    }
    await sleep(25);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    async stop() {
      // A paused server would keep a SIGTERM pending until it is let go.
      child.kill('SIGCONT');
      await stopChild(child);
      process.removeListener('exit', killOnExit);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** A port nothing listens on right now: bind to port 0, read the port the system chose, let it go. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Whether a Redis answers PING on the port, spoken in the protocol directly rather than through our client. */
async function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const done = (answer: boolean): void => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}
