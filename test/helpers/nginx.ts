import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Agent } from 'undici';
import { projectRoot } from '../../src/paths.ts';

// Debian's nginx in front of the service, as a studio runs it: TLS with a certificate made for the test, and the
// README's own example (the ```nginx block of its Deployment section) as the site configuration, so the documented
// configuration is the tested one. Only the listen address, the certificate paths and the upstream servers are
// changed; the rest of the file (pid, logs and temp folders in a throw-away folder) is what a test run needs.
// Without nginx installed the tests fail with what to install (CI installs it): a skipped proxy test would let the
// documented configuration rot unnoticed.

const NGINX = '/usr/sbin/nginx';
const execFileAsync = promisify(execFile);
const startTimeoutMs = 10_000;

/** The path prefix of the README's example, which the tests' PUBLIC_URL uses too. */
export const PUBLIC_PATH = '/ami-transfer';

export interface NginxProxy {
  /** Where the service is reached through the proxy: https://127.0.0.1:PORT/ami-transfer. */
  url: string;
  port: number;
  /** The test certificate (PEM), to trust in clients. */
  ca: string;
  /** An undici dispatcher that trusts the test certificate. */
  dispatcher: Agent;
  /** nginx's error log so far. */
  errorLog(): Promise<string>;
  /** Stops nginx (SIGTERM, then SIGKILL) and removes its folder. */
  stop(): Promise<void>;
}

export interface NginxOptions {
  /** The port nginx listens on (the services' PUBLIC_URL names it before nginx starts). */
  port: number;
  /** The instances, as host:port, round-robin in this order. */
  upstreams: readonly string[];
  /** false: plain HTTP on the port (the README's TLS left out), for the hosting bench's analysis only. */
  tls?: boolean;
}

/**
 * A port that is free now and stays free until it is bound, seconds later (nginx's, which the services are told
 * first in PUBLIC_URL; an instance's, which it is restarted on): one below the system's ephemeral range, which every
 * port-0 listener and every outbound connection's own port come from, so no other test can take it meanwhile.
 * `taken` are ports already handed out and not yet bound.
 */
export async function steadyPort(taken: readonly number[] = []): Promise<number> {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768 60999');
  const ephemeralFrom = Number(range.trim().split(/\s+/)[0]) || 32768;
  const low = Math.max(1024, ephemeralFrom - 12_000);
  for (let attempt = 1; ; attempt++) {
    const port = low + Math.floor(Math.random() * (ephemeralFrom - low));
    if (!taken.includes(port) && (await bindable(port))) return port;
    if (attempt === 50) throw new Error(`no free port found below ${ephemeralFrom}`);
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The ```nginx block of the README's "Deployment" section, as written there. */
export async function readmeNginxExample(): Promise<string> {
  const readme = await readFile(join(projectRoot, 'README.md'), 'utf8');
  const section = readme.split(/^## Deployment$/m)[1]?.split(/^## /m)[0];
  const block = section === undefined ? undefined : /^```nginx\n([\s\S]*?)^```$/m.exec(section)?.[1];
  if (block === undefined) throw new Error('README.md has no ```nginx block in its "## Deployment" section');
  return block;
}

/** Starts nginx with the README's example on `port`, proxying to `upstreams`; resolves once it accepts connections. */
export async function startNginx(options: NginxOptions): Promise<NginxProxy> {
  requireNginx();
  const dir = await mkdtemp(join(tmpdir(), 'ami-transfer-nginx-'));
  try {
    // Run as root (as CI does), nginx's workers drop to `nobody`: they must reach their temp folders in here.
    await chmod(dir, 0o711);
    const cert = await makeCertificate(dir);
    const site = adapt(await readmeNginxExample(), { port: options.port, upstreams: options.upstreams, cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem'), tls: options.tls ?? true });
    const conf = join(dir, 'nginx.conf');
    await writeFile(conf, mainConfig(dir, site));
    const errorLogPath = join(dir, 'error.log');
    const child = spawn(NGINX, ['-p', dir, '-c', conf, '-e', errorLogPath, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const exited = once(child, 'exit');
    // If the test process ends without its `after` hooks, nginx must not outlive it.
    const killOnExit = (): void => void child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const errorLog = async (): Promise<string> => `${output}${await readFile(errorLogPath, 'utf8').catch(() => '')}`;

    const deadline = Date.now() + startTimeoutMs;
    while (!(await accepts(options.port))) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        await stopChild(child, exited);
        process.removeListener('exit', killOnExit);
        throw new Error(`nginx did not start on port ${options.port}:\n${await errorLog()}`);
      }
      await sleep(25);
    }
    return {
      url: `${options.tls === false ? 'http' : 'https'}://127.0.0.1:${options.port}${PUBLIC_PATH}`,
      port: options.port,
      ca: cert,
      dispatcher: new Agent({ connect: { ca: cert } }),
      errorLog,
      async stop() {
        await stopChild(child, exited);
        process.removeListener('exit', killOnExit);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function requireNginx(): void {
  const probe = spawnSync(NGINX, ['-v'], { encoding: 'utf8' });
  if (probe.error) {
    throw new Error(
      `These tests put Debian's nginx in front of the service, but ${NGINX} is not installed: apt-get install nginx ` +
        `(CI installs it). (${probe.error.message})`,
    );
  }
}

/** A self-signed certificate for 127.0.0.1 and localhost, made with openssl for this run only; answers its PEM. */
async function makeCertificate(dir: string): Promise<string> {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  try {
    await execFileAsync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', keyPath, '-out', certPath,
    ]);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(missing ? 'The nginx tests make their TLS certificate with openssl, which is not installed: apt-get install openssl (CI installs it).' : `openssl could not make the test certificate: ${String(error)}`);
  }
  return readFile(certPath, 'utf8');
}

/**
 * The README's block with this run's listen address, certificate and instances. Each change must find what it
 * replaces exactly where the README has it, so an edit to the example that the tests no longer follow fails here.
 */
function adapt(block: string, run: { port: number; upstreams: readonly string[]; cert: string; key: string; tls: boolean }): string {
  let text = block;
  const replace = (pattern: RegExp, by: string, what: string): void => {
    const found = text.match(new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`))?.length ?? 0;
    if (found !== 1) throw new Error(`The README's nginx example should have one ${what}; found ${found}`);
    text = text.replace(pattern, by);
  };
  replace(/^(\s*)listen 443 ssl;$/m, `$1listen 127.0.0.1:${run.port}${run.tls ? ' ssl' : ''};`, '"listen 443 ssl;"');
  replace(/^(\s*)ssl_certificate\s+\S+;$/m, `$1ssl_certificate ${run.cert};`, 'ssl_certificate');
  replace(/^(\s*)ssl_certificate_key\s+\S+;$/m, `$1ssl_certificate_key ${run.key};`, 'ssl_certificate_key');
  // The instances: the README's server lines, each with its own address, keeping their parameters.
  const servers = /^(\s*)server \d+\.\d+\.\d+\.\d+:\d+((?: [a-z_]+=\w+)*);\n/gm;
  const first = servers.exec(text);
  if (first === null) throw new Error("The README's nginx example has no upstream server lines");
  const [, indent, parameters] = first;
  text = text.replace(servers, '');
  const upstream = /^\s*upstream ami_transfer \{\n/m;
  if (!upstream.test(text)) throw new Error("The README's nginx example has no `upstream ami_transfer` block");
  text = text.replace(upstream, (line) => line + run.upstreams.map((address) => `${indent}server ${address}${parameters};\n`).join(''));
  return text;
}

/** What wraps the README's block: one worker (so round-robin is strictly in turn), everything in `dir`. */
function mainConfig(dir: string, site: string): string {
  return `worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} notice;
events { worker_connections 1024; }
http {
    access_log ${join(dir, 'access.log')};
    client_body_temp_path ${join(dir, 'client_body')};
    proxy_temp_path ${join(dir, 'proxy')};
    fastcgi_temp_path ${join(dir, 'fastcgi')};
    uwsgi_temp_path ${join(dir, 'uwsgi')};
    scgi_temp_path ${join(dir, 'scgi')};
    # Which instance answered, for the tests' assertions (not part of the README's example).
    add_header X-Upstream-Addr $upstream_addr always;

${site}
}
`;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (answer: boolean): void => {
      socket.destroy();
      resolve(answer);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
