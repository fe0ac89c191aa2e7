import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';

// The layers' dependencies point one way — the HTTP layers (web, ami, actions: pages and routes, which share the
// error pages and CSRF) → transfer → trackers, with net/, store/ and shared/ beneath them all — and only the
// composition root (server.ts, trackers/create-tracker.ts) and the sandbox know a site adapter by name: everything
// else speaks the Tracker interface, so a second site kind is added in trackers/ alone. Read from the sources'
// import statements.

const src = resolve(import.meta.dirname, '..', 'src');

function sourcesUnder(folder: string): string[] {
  return readdirSync(join(src, folder), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => relative(src, join(entry.parentPath, entry.name)));
}

/** Each module's imports, as paths relative to src/ (folders of what it imports). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(src, file), 'utf8');
  const specifiers = [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'/gm)].map((match) => match[1]!);
  return specifiers.map((specifier) => relative(src, resolve(join(src, file, '..'), specifier)));
}

const layer = (path: string) => path.split('/')[0]!;

/** src/'s own root modules (settings, logging, paths) are for every layer. */
const ROOT_MODULES = new Set(['config.ts', 'log.ts', 'paths.ts']);
const HTTP = ['web', 'ami', 'actions'];
const BENEATH = ['net', 'shared', 'store'];

/** What each layer may import besides itself and the root modules. */
const allowed: Record<string, readonly string[]> = {
  // shared/ holds pure modules the pages run too (no imports at all): the bottom of everything.
  shared: [],
  net: ['shared'],
  store: ['net'],
  trackers: ['net', 'shared'],
  transfer: ['trackers', ...BENEATH],
  actions: [...HTTP, 'transfer', 'trackers', ...BENEATH],
  ami: [...HTTP, 'trackers', ...BENEATH],
  web: [...HTTP, 'trackers', ...BENEATH],
};

test('each layer imports only the layers beneath it', () => {
  const wrong: string[] = [];
  for (const [from, may] of Object.entries(allowed)) {
    for (const file of sourcesUnder(from)) {
      for (const target of importsOf(file)) {
        const to = layer(target);
        if (to === from || ROOT_MODULES.has(to) || may.includes(to)) continue;
        wrong.push(`${file} imports ${target}`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

test('no module outside trackers/ and the composition root names a site adapter', () => {
  const adapters = /^trackers\/(shotgrid|ftrack)\//;
  const offenders = ['transfer', 'actions', 'web', 'ami', 'store', 'net', 'shared']
    .flatMap((folder) => sourcesUnder(folder))
    .flatMap((file) => importsOf(file).filter((target) => adapters.test(target)).map((target) => `${file} imports ${target}`));
  assert.deepEqual(offenders, []);
});

test('the rules above see imports at all (a check that finds nothing proves nothing)', () => {
  assert.ok(importsOf('transfer/upload-session.ts').includes('trackers/tracker.ts'));
  assert.ok(sourcesUnder('transfer').length > 10);
});
