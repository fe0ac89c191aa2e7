import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { projectRoot } from '../../src/paths.ts';

// The service as its own process (`node src/server.ts`), as production runs it: for signals, shutdown, and tests
// whose question is whether the process survives. Its JSON log lines are kept and can be waited for.

export interface ServiceProcess {
  child: ChildProcessWithoutNullStreams;
  url: string;
  port: number;
  /** Every JSON log line so far. */
  lines: Record<string, unknown>[];
  /** Whatever the process wrote to stderr. */
  stderr(): string;
  /** Resolves with the first log line whose message matches. */
  logLine(message: RegExp): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
  /** SIGKILL if still running; resolves once it exited. */
  stop(): Promise<void>;
}

/** Starts `script` (relative to the project: the source by default, or the build's dist/server.js) with `env`. */
export async function spawnService(env: Record<string, string>, nodeArgs: readonly string[] = [], script = 'src/server.ts'): Promise<ServiceProcess> {
  const child = spawn(process.execPath, [...nodeArgs, script], {
    cwd: projectRoot,
    env: { PATH: process.env['PATH'] ?? '', ...env },
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });

  const lines: Record<string, unknown>[] = [];
  const waiting: { message: RegExp; resolve: (line: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stdout }).on('line', (text) => {
    if (!text.startsWith('{')) return;
    const line = JSON.parse(text) as Record<string, unknown>;
    lines.push(line);
    for (const waiter of [...waiting]) {
      if (waiter.message.test(String(line['msg']))) {
        waiting.splice(waiting.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  const logLine = (message: RegExp): Promise<Record<string, unknown>> => {
    const found = lines.find((line) => message.test(String(line['msg'])));
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      waiting.push({ message, resolve });
      void exited.then((code) => reject(new Error(`service exited (${code}) before logging ${message}: ${stderr}`)));
    });
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };

  let listening: Record<string, unknown>;
  try {
    listening = await logLine(/listening/);
  } catch (error) {
    await stop();
    throw error;
  }
  const url = String(listening['url']);
  return { child, url, port: Number(new URL(url).port), lines, stderr: () => stderr, logLine, exited, stop };
}

/** The process's environment for a sandbox site started by the test: its script, its AMI secret, our CSRF secret. */
export function siteEnvironment(site: { url: string; scriptName: string; scriptKey: string; amiSecret: string }, sessionSecret: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    SHOTGRID_URL: site.url,
    SHOTGRID_SCRIPT_NAME: site.scriptName,
    SHOTGRID_SCRIPT_KEY: site.scriptKey,
    AMI_SECRET_TOKEN: site.amiSecret,
    SESSION_SECRET: sessionSecret,
    ...extra,
  };
}
