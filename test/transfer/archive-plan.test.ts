import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FileHeldBySite } from '../../src/trackers/tracker.ts';
import {
  createFileResolver,
  planDownload,
  planFromJson,
  planToJson,
  skipReasons,
  type FileResolverOptions,
  type FileResolution,
} from '../../src/transfer/archive-plan.ts';
import { localFileReasons, openLocalFile, resolveLocalFile, LocalFileChangedError, type LocalLink } from '../../src/transfer/local-files.ts';
import { WebLinkRefused } from '../../src/transfer/web-link-policy.ts';
import { planArchive } from '../../src/transfer/zip/zip-plan.ts';
import { writeZipArchive } from '../../src/transfer/zip/zip-writer.ts';
import type { FileRef } from '../../src/trackers/tracker.ts';
import { checkWithAllReaders, patternBytes, sha256, withTempFolder, writeToFile } from './zip/archive-checks.ts';

// ---- fixtures ----

let root = '';
let mount = '';
let outside = '';

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ami-transfer-local-'));
  mount = join(root, 'projects');
  outside = join(root, 'outside');
  await mkdir(join(mount, 'demo', 'sh010'), { recursive: true });
  await mkdir(outside);
  await writeFile(join(mount, 'demo', 'sh010', 'plate.exr'), patternBytes(3000, 1));
  await writeFile(join(mount, 'demo', 'sh010', 'empty.txt'), '');
  await writeFile(join(outside, 'secret.txt'), 'not for download');
  await symlink(join(outside, 'secret.txt'), join(mount, 'demo', 'sh010', 'escape.txt'));
  await symlink(outside, join(mount, 'demo', 'outside-dir'));
  await symlink(join(mount, 'demo', 'sh010', 'plate.exr'), join(mount, 'demo', 'plate-link.exr'));
  // A mount configured through a symlink still works: containment is judged on real paths.
  await symlink(mount, join(root, 'projects-link'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const mounts = () =>
  new Map([
    ['primary', mount],
    ['linked', join(root, 'projects-link')],
    ['gone', join(root, 'no-such-mount')],
  ]);

const local = (storageCode: string | null, relativePath: string | null): LocalLink => ({ type: 'local', storageCode, relativePath, localPath: null });

let nextId = 1;
function fileRef(overrides: Partial<FileRef> & Pick<FileRef, 'link'>): FileRef {
  const id = nextId++;
  return {
    entity: { type: 'Shot', id: '10', name: 'sh010' },
    source: 'attachment',
    field: null,
    attachmentId: String(id),
    name: `file-${id}.mov`,
    size: null,
    contentType: null,
    ...overrides,
  };
}

const LOCATION = { url: 'https://storage.example.com/signed', at: 1_700_000_000_000 };
const PNG_HEAD = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);

interface Probes {
  tracked: string[];
  web: string[];
}

function resolverWith(overrides: Partial<FileResolverOptions> = {}): { resolve: ReturnType<typeof createFileResolver>; probes: Probes } {
  const probes: Probes = { tracked: [], web: [] };
  const resolve = createFileResolver({
    webLinks: { hosts: ['media.example.com', '*.cdn.example.com', '10.1.2.3'], allowedPrivateRanges: [] },
    localMounts: mounts(),
    probeTracked: async (file) => {
      probes.tracked.push(file.name);
      // Storage agrees with the site where the site states a size.
      return { location: LOCATION, size: file.size ?? 777, head: PNG_HEAD };
    },
    scanWaitMs: 0,
    probeWebSize: async (url) => {
      probes.web.push(url.toString());
      return 4096;
    },
    ...overrides,
  });
  return { resolve, probes };
}

// ---- local files ----

test('a file inside the mount resolves to its real path and size; so does one reached through a link inside', async () => {
  for (const [code, path] of [
    ['primary', 'demo/sh010/plate.exr'],
    ['primary', '/demo//sh010/./plate.exr'],
    ['primary', 'demo\\sh010\\plate.exr'],
    ['linked', 'demo/sh010/plate.exr'],
    ['primary', 'demo/plate-link.exr'],
  ] as const) {
    const found = await resolveLocalFile(mounts(), local(code, path));
    assert.ok(found.ok, `${code}:${path} ${JSON.stringify(found)}`);
    assert.equal(found.file.path, join(mount, 'demo', 'sh010', 'plate.exr'));
    assert.equal(found.file.size, 3000);
  }
});

test('a symlink out of the mount, `..`, a missing file, an unmounted storage: each skipped with its reason', async () => {
  const cases: [LocalLink, string][] = [
    [local('primary', 'demo/sh010/escape.txt'), localFileReasons.outside],
    [local('primary', 'demo/outside-dir/secret.txt'), localFileReasons.outside],
    [local('primary', '../outside/secret.txt'), localFileReasons.outside],
    [local('primary', 'demo/../../outside/secret.txt'), localFileReasons.outside],
    [local('primary', 'demo/sh010/../sh010/plate.exr'), localFileReasons.outside],
    [local('primary', '..\\outside\\secret.txt'), localFileReasons.outside],
    [local('primary', 'demo/sh010/missing.exr'), localFileReasons.notFound],
    [local('primary', 'demo/sh010/plate.exr/below'), localFileReasons.notFound],
    [local('primary', 'demo/sh010'), localFileReasons.notRegular],
    [local('primary', ''), localFileReasons.noPath],
    [local('primary', '/'), localFileReasons.noPath],
    [local('primary', null), localFileReasons.noPath],
    [local('primary', 'demo/\0/x'), localFileReasons.noPath],
    [local('renders', 'demo/sh010/plate.exr'), localFileReasons.notMounted],
    [local('gone', 'demo/sh010/plate.exr'), localFileReasons.notMounted],
    [local(null, 'demo/sh010/plate.exr'), localFileReasons.noStorage],
  ];
  for (const [link, reason] of cases) {
    const found = await resolveLocalFile(mounts(), link);
    assert.deepEqual(found, { ok: false, reason }, `${link.storageCode}:${link.relativePath}`);
  }
});

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

test('a planned local file reads back as it was; one replaced or resized since fails instead', async () => {
  const folder = join(mount, 'changing');
  await mkdir(folder);
  const path = join(folder, 'a.bin');
  await writeFile(path, patternBytes(5000, 2));
  const found = await resolveLocalFile(mounts(), local('primary', 'changing/a.bin'));
  assert.ok(found.ok);
  assert.equal(sha256(await readAll(openLocalFile(found.file, { highWaterMark: 1024 }))), sha256(patternBytes(5000, 2)));

  await appendFile(path, 'more');
  await assert.rejects(readAll(openLocalFile(found.file)), LocalFileChangedError);

  await writeFile(join(folder, 'b.bin'), patternBytes(5000, 2));
  await rename(join(folder, 'b.bin'), path);
  await assert.rejects(readAll(openLocalFile(found.file)), LocalFileChangedError);

  // Swapped for a symlink to a file outside: not opened at all.
  await rm(path);
  await symlink(join(outside, 'secret.txt'), path);
  await assert.rejects(readAll(openLocalFile(found.file)), { code: 'ELOOP' });
});

// ---- resolution rules ----

test('uploaded files are all located while planning: storage\'s size wins, the site\'s is the fallback, unknown is skipped', async () => {
  const probes: string[] = [];
  const { resolve } = resolverWith({
    probeTracked: async (file) => {
      probes.push(file.name);
      return { location: LOCATION, size: 777, head: new Uint8Array(0) };
    },
  });
  assert.deepEqual(await resolve(fileRef({ name: 'a.mov', size: 1234, link: { type: 'upload' } })), {
    status: 'included',
    size: 777,
    origin: { kind: 'tracker', location: LOCATION },
  });
  assert.deepEqual(probes, ['a.mov'], 'located even with a size stated: scan states show there');
  const statedOnly = resolverWith({ probeTracked: async () => ({ location: LOCATION, size: null, head: new Uint8Array(0) }) }).resolve;
  assert.deepEqual(await statedOnly(fileRef({ size: 1234, link: { type: 'upload' } })), { status: 'included', size: 1234, origin: { kind: 'tracker', location: LOCATION } });
  assert.deepEqual(await statedOnly(fileRef({ size: null, link: { type: 'upload' } })), { status: 'skipped', reason: skipReasons.sizeUnknown, size: null });
  const failing = resolverWith({
    probeTracked: async () => {
      throw new Error('storage answered 500');
    },
  }).resolve;
  assert.deepEqual(await failing(fileRef({ size: null, link: { type: 'upload' } })), { status: 'skipped', reason: 'size unknown: could not be fetched', size: null });
  const nonsense = resolverWith({ probeTracked: async () => ({ location: LOCATION, size: -1, head: new Uint8Array(0) }) }).resolve;
  assert.equal(((await nonsense(fileRef({ size: 1.5, link: { type: 'upload' } }))) as { reason: string }).reason, skipReasons.sizeUnknown);
});

test('a thumbnail\'s entry is named by its bytes, whatever its URL said', async () => {
  const { resolve } = resolverWith();
  const thumbnail = (name: string) => fileRef({ name, source: 'thumbnail', field: 'image', attachmentId: null, size: null, link: { type: 'upload' } });
  assert.equal(((await resolve(thumbnail('thumbnail.jpg'))) as { name?: string }).name, 'thumbnail.png');
  assert.equal(((await resolve(thumbnail('thumbnail.png'))) as { name?: string }).name, undefined, 'already right');
  assert.equal(((await resolve(fileRef({ name: 'notes.jpg', link: { type: 'upload' } }))) as { name?: string }).name, undefined, 'attachments keep their names');
});

test('the site\'s malware scan: a quarantined file is left out at once; one under scan is waited for, within a bound', async () => {
  const quarantined = resolverWith({
    probeTracked: async () => {
      throw new FileHeldBySite('quarantined', 'File scanning has detected malware and the file has been quarantined');
    },
  }).resolve;
  assert.deepEqual(await quarantined(fileRef({ size: 10, link: { type: 'upload' } })), { status: 'skipped', reason: skipReasons.quarantined, size: 10 });

  let calls = 0;
  const scannedThenClean = resolverWith({
    scanWaitMs: 10_000,
    probeTracked: async () => {
      if (++calls < 2) throw new FileHeldBySite('scanning', 'This file is undergoing a malware scan');
      return { location: LOCATION, size: 5, head: new Uint8Array(0) };
    },
  }).resolve;
  assert.equal((await scannedThenClean(fileRef({ link: { type: 'upload' } }))).status, 'included');
  assert.equal(calls, 2);

  const stillScanning = resolverWith({
    scanWaitMs: 1500,
    probeTracked: async () => {
      throw new FileHeldBySite('scanning', 'This file is undergoing a malware scan');
    },
  }).resolve;
  assert.deepEqual(await stillScanning(fileRef({ size: 3, link: { type: 'upload' } })), { status: 'skipped', reason: skipReasons.scanning, size: 3 });
});

test('web links: allowed hosts are probed; refused ones are skipped without any request', async () => {
  const { resolve, probes } = resolverWith();
  const web = (url: string) => resolve(fileRef({ link: { type: 'web', url } }));

  assert.deepEqual(await web('https://media.example.com/review/a.mov'), {
    status: 'included',
    size: 4096,
    origin: { kind: 'web', url: 'https://media.example.com/review/a.mov' },
  });
  assert.equal(((await web('https://eu.cdn.example.com/x.jpg')) as FileResolution).status, 'included');

  const refused: [string, string][] = [
    ['https://evil.example.net/a.mov', skipReasons.webHostNotAllowed],
    ['https://cdn.example.com/x', skipReasons.webHostNotAllowed],
    ['https://127.0.0.1/x', skipReasons.webHostNotAllowed],
    ['https://localhost/x', skipReasons.webHostNotAllowed],
    ['http://media.example.com/a.mov', `${skipReasons.webNotAllowed}: http links are not fetched`],
    ['file:///etc/passwd', `${skipReasons.webNotAllowed}: file links are not fetched`],
    ['https://user:pw@media.example.com/a.mov', `${skipReasons.webNotAllowed}: links with credentials are not fetched`],
    ['https://10.1.2.3/a.mov', `${skipReasons.webNotAllowed}: 10.1.2.3 is a private address`],
    ['not a url', `${skipReasons.webNotAllowed}: not a URL`],
  ];
  for (const [url, reason] of refused) {
    const result = await web(url);
    assert.deepEqual(result, { status: 'skipped', reason, size: null }, url);
  }
  assert.deepEqual(probes.web, ['https://media.example.com/review/a.mov', 'https://eu.cdn.example.com/x.jpg']);
});

test('web links whose probe is refused on a redirect, fails, or gives no size are skipped', async () => {
  const outcomes: Record<string, () => Promise<number | null>> = {
    '/redirect': async () => {
      throw new WebLinkRefused('127.0.0.2 is a private address');
    },
    '/down': async () => {
      throw new Error('connect ECONNREFUSED');
    },
    '/chunked': async () => null,
  };
  const logged: string[] = [];
  const { resolve } = resolverWith({ probeWebSize: (url) => outcomes[url.pathname]!(), onProbeFailure: (_file, error) => logged.push(String(error)) });
  const reasons = [];
  for (const path of Object.keys(outcomes)) {
    const result = await resolve(fileRef({ link: { type: 'web', url: `https://media.example.com${path}` } }));
    assert.equal(result.status, 'skipped');
    reasons.push((result as { reason: string }).reason);
  }
  // The network's own words would let a user probe ports on allowed hosts: the manifest says less, the log all.
  assert.deepEqual(reasons, [`${skipReasons.webNotAllowed}: 127.0.0.2 is a private address`, 'size unknown: could not be fetched', skipReasons.sizeUnknown]);
  assert.deepEqual(logged, ['Error: connect ECONNREFUSED']);
});

test('local links resolve through the mounts', async () => {
  const { resolve } = resolverWith();
  const included = await resolve(fileRef({ name: 'plate.exr', size: 1, link: local('primary', 'demo/sh010/plate.exr') }));
  assert.equal(included.status, 'included');
  assert.equal((included as { size: number }).size, 3000, 'the size on disk, not the one the site stated');
  assert.equal((included as { origin: { kind: string } }).origin.kind, 'local');
  assert.deepEqual(await resolve(fileRef({ size: 5, link: local('primary', 'demo/sh010/escape.txt') })), {
    status: 'skipped',
    reason: localFileReasons.outside,
    size: 5,
  });
});

// ---- the plan ----

function hostileSelection(): FileRef[] {
  const version = (id: number, name: string) => ({ type: 'Version', id: String(id), name });
  const shot = { type: 'Shot', id: '10', name: 'sh010' };
  return [
    fileRef({ entity: version(1, 'sh010_comp_v003'), source: 'field', field: 'sg_uploaded_movie', name: 'sh010_comp_v003.mov', size: 2048, link: { type: 'upload' } }),
    fileRef({ entity: version(1, 'sh010_comp_v003'), source: 'thumbnail', field: 'image', attachmentId: null, name: 'thumbnail.jpg', link: { type: 'upload' } }),
    fileRef({ entity: shot, name: '../../etc/passwd', size: 11, link: { type: 'upload' } }),
    fileRef({ entity: shot, name: 'C:\\x', size: 12, link: { type: 'upload' } }),
    fileRef({ entity: shot, name: 'CON.txt', size: 13, link: { type: 'upload' } }),
    fileRef({ entity: shot, name: `${'n'.repeat(300)}.mov`, size: 14, link: { type: 'upload' } }),
    fileRef({ entity: shot, name: '🎬 take 1 ✂️.mov', size: 15, link: { type: 'upload' } }),
    fileRef({ entity: shot, name: 'plate.mov', size: 16, link: { type: 'upload' } }),
    fileRef({ entity: shot, name: 'PLATE.mov', size: 17, link: { type: 'upload' } }),
    fileRef({ entity: shot, name: 'evil.mov', link: { type: 'web', url: 'https://evil.example.net/evil.mov' } }),
    fileRef({ entity: shot, name: 'review.mov', link: { type: 'web', url: 'https://media.example.com/review.mov' } }),
    fileRef({ entity: shot, name: 'plate.exr', size: 3000, link: local('primary', 'demo/sh010/plate.exr') }),
    fileRef({ entity: shot, name: 'empty.txt', size: 0, link: local('primary', 'demo/sh010/empty.txt') }),
    fileRef({ entity: shot, name: '=cmd|calc', size: 1, link: local('renders', 'x') }),
    fileRef({ entity: { type: 'Shot', id: '11', name: 'SH010' }, name: 'plate.mov', size: 18, link: { type: 'upload' } }),
  ];
}

test('the plan names included files in order, lists every file in the manifest, and puts the manifest last', async () => {
  const files = hostileSelection();
  const { resolve } = resolverWith();
  const when = new Date(2026, 10, 23, 12, 0, 0);
  const plan = await planDownload(files, resolve, { modified: when });

  assert.deepEqual(
    plan.entries.map((entry) => entry.name),
    [
      'Version/sh010_comp_v003/sh010_comp_v003.mov',
      'Version/sh010_comp_v003/thumbnail.png',
      'Shot/sh010/.._.._etc_passwd',
      'Shot/sh010/C__x',
      'Shot/sh010/_CON.txt',
      `Shot/sh010/${'n'.repeat(196)}.mov`,
      'Shot/sh010/🎬 take 1 ✂️.mov',
      'Shot/sh010/plate.mov',
      'Shot/sh010/PLATE (2).mov',
      'Shot/sh010/review.mov',
      'Shot/sh010/plate.exr',
      'Shot/sh010/empty.txt',
      'Shot/SH010 (2)/plate.mov',
      'manifest.csv',
    ],
  );
  assert.deepEqual(
    plan.entries.map((entry) => entry.size),
    [2048, 777, 11, 12, 13, 14, 15, 16, 17, 4096, 3000, 0, 18, plan.manifest.length],
  );
  assert.equal(plan.includedFiles, 13);
  assert.equal(plan.skippedFiles, 2);
  assert.equal(plan.includedBytes, 2048 + 777 + 11 + 12 + 13 + 14 + 15 + 16 + 17 + 4096 + 3000 + 0 + 18);

  // The archive is exactly what planArchive makes of these names and sizes, entry for entry.
  assert.deepEqual(
    plan.archive.entries.map((entry) => [entry.name, entry.size]),
    plan.entries.map((entry) => [entry.name, entry.size]),
  );
  assert.equal(plan.archive.totalSize, planArchive(plan.entries.map((entry) => ({ name: entry.name, size: entry.size, modified: when }))).totalSize);
  assert.deepEqual(plan.entries.at(-1)!.origin, { kind: 'manifest', bytes: plan.manifest });

  assert.equal(plan.rows.length, files.length);
  const skipped = plan.rows.filter((row) => row.status === 'skipped');
  assert.deepEqual(
    skipped.map((row) => [row.fileName, row.reason, row.entryName, row.link]),
    [
      ['evil.mov', skipReasons.webHostNotAllowed, null, 'https://evil.example.net/evil.mov'],
      ['=cmd|calc', localFileReasons.notMounted, null, 'renders:x'],
    ],
  );
  const manifestText = plan.manifest.toString('utf8');
  assert.ok(manifestText.includes(`'=cmd|calc`), 'the formula-looking name is defused in the manifest');
});

test('the same selection plans the same layout; resolution order does not matter', async () => {
  const files = hostileSelection();
  let calls = 0;
  const { resolve } = resolverWith();
  // Later files finish first: the plan must still follow the tracker's order.
  const slowFirst = async (file: FileRef) => {
    const delay = Math.max(0, 30 - calls++ * 2);
    await new Promise((done) => setTimeout(done, delay));
    return resolve(file);
  };
  const a = await planDownload(files, resolve, { modified: new Date(0) });
  const b = await planDownload(files, slowFirst, { modified: new Date(0), concurrency: 8 });
  assert.deepEqual(b.entries.map((entry) => entry.name), a.entries.map((entry) => entry.name));
  assert.deepEqual(b.manifest, a.manifest);
  assert.equal(b.archive.totalSize, a.archive.totalSize);
});

test('one attachment reached twice for the same entity is one entry; for two entities it is in both', async () => {
  const shot = { type: 'Shot', id: '10', name: 'sh010' };
  const files = [
    fileRef({ entity: shot, attachmentId: '500', name: 'notes.pdf', size: 10, link: { type: 'upload' } }),
    fileRef({ entity: shot, source: 'note-attachment', attachmentId: '500', name: 'notes.pdf', size: 10, link: { type: 'upload' } }),
    fileRef({ entity: { type: 'Shot', id: '11', name: 'sh020' }, attachmentId: '500', name: 'notes.pdf', size: 10, link: { type: 'upload' } }),
  ];
  const plan = await planDownload(files, resolverWith().resolve);
  assert.deepEqual(plan.entries.map((entry) => entry.name), ['Shot/sh010/notes.pdf', 'Shot/sh020/notes.pdf', 'manifest.csv']);
  assert.deepEqual(plan.rows.map((row) => row.reason), [null, skipReasons.duplicate, null]);
});

test('nothing to include still makes a valid plan: the manifest alone', async () => {
  const plan = await planDownload([fileRef({ link: { type: 'web', url: 'https://evil.example.net/' } })], resolverWith().resolve);
  assert.deepEqual(plan.entries.map((entry) => entry.name), ['manifest.csv']);
  assert.equal(plan.includedFiles, 0);
  assert.equal(plan.skippedFiles, 1);
});

test('the planned zip passes unzip, 7z and Python zipfile, with every entry equal to its source', async () => {
  const plan = await planDownload(hostileSelection(), resolverWith().resolve);
  // What each entry should hold: tracker and web bytes are made up here, local files are on disk.
  const expected = await Promise.all(
    plan.entries.map(async (entry) => {
      const origin = entry.origin;
      if (origin.kind === 'manifest') return origin.bytes;
      if (origin.kind === 'local') return readFile(origin.file.path);
      return patternBytes(entry.size, Number(entry.file!.attachmentId ?? 0));
    }),
  );
  await withTempFolder(async (folder) => {
    const path = join(folder, 'download.zip');
    const written = await writeToFile(
      writeZipArchive(plan.archive, (planned) => {
        const entry = plan.entries[planned.index]!;
        return entry.origin.kind === 'local' ? openLocalFile(entry.origin.file) : [expected[planned.index]!];
      }),
      path,
    );
    assert.equal(written, plan.archive.totalSize);
    const read = await checkWithAllReaders(path);
    assert.deepEqual(read.map((entry) => entry.name), plan.entries.map((entry) => entry.name));
    for (const [index, entry] of plan.entries.entries()) assert.equal(read[index]!.sha256, sha256(expected[index]!), entry.name);
  });
});

test('a plan kept as JSON comes back the same: the same archive, byte layout and all (any instance streams it)', async () => {
  const plan = await planDownload(hostileSelection(), resolverWith().resolve, { modified: new Date(2026, 10, 23, 12, 0, 0) });
  const back = planFromJson(planToJson(plan));
  assert.deepEqual(back.archive, plan.archive);
  assert.deepEqual(back.manifest, plan.manifest);
  assert.deepEqual(back.entries, plan.entries);
  assert.equal(back.includedBytes, plan.includedBytes);
});
