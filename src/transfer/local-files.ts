import { constants, type Stats } from 'node:fs';
import { access, open, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { Readable } from 'node:stream';
import type { FileLink } from '../trackers/tracker.ts';

// Local file links point into a studio file system the tracker knows only as a LocalStorage (a code and a
// path per OS). The service reads such a file only from the folder the operator mounted for that storage, and
// only when the real path — every symlink followed — is still inside that folder: a link's relative path is
// anyone's text, and a symlink inside the mount may point anywhere. The file is pinned at planning time by its
// device and inode, so what is read later is the file that was checked, not one swapped in since.

export type LocalLink = Extract<FileLink, { type: 'local' }>;

/** A file found inside its mount, as it was when checked. */
export interface LocalFile {
  /** Real path: no symlinks, no `..`, inside the mount's real path. */
  readonly path: string;
  readonly size: number;
  readonly modified: Date;
  readonly device: number;
  readonly inode: number;
}

export type LocalFileResolution = { readonly ok: true; readonly file: LocalFile } | { readonly ok: false; readonly reason: string };

export const localFileReasons = {
  noStorage: 'local file on no LocalStorage',
  notMounted: 'local storage not mounted here',
  noPath: 'local path missing',
  outside: 'outside the mount',
  notFound: 'file not found',
  notRegular: 'not a regular file',
  notReadable: 'file not readable',
} as const;

const skip = (reason: string): LocalFileResolution => ({ ok: false, reason });

/** Finds the file a local link names under its storage's mount (LocalStorage code → path), or says why not. */
export async function resolveLocalFile(mounts: ReadonlyMap<string, string>, link: LocalLink): Promise<LocalFileResolution> {
  if (link.storageCode === null) return skip(localFileReasons.noStorage);
  const mount = mounts.get(link.storageCode);
  if (mount === undefined) return skip(localFileReasons.notMounted);
  if (link.relativePath === null || link.relativePath.includes('\0')) return skip(localFileReasons.noPath);

  // Links made on Windows may use backslashes. Any `..` is refused outright, even one that would stay inside:
  // the realpath check below would catch an escape, but a path that climbs has no business in a link.
  const parts = link.relativePath.split(/[\\/]/).filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) return skip(localFileReasons.outside);
  if (parts.length === 0) return skip(localFileReasons.noPath);

  let mountRoot: string;
  try {
    mountRoot = await realpath(mount);
    if (!(await stat(mountRoot)).isDirectory()) return skip(localFileReasons.notMounted);
  } catch {
    return skip(localFileReasons.notMounted);
  }

  let path: string;
  try {
    path = await realpath(join(mountRoot, ...parts));
  } catch (error) {
    return skip(reasonForFsError(error));
  }
  if (!isInside(mountRoot, path)) return skip(localFileReasons.outside);

  let stats: Stats;
  try {
    stats = await stat(path);
    // A FIFO or device would stall or never end the zip; a directory is not a file to put in it.
    if (!stats.isFile()) return skip(localFileReasons.notRegular);
    await access(path, constants.R_OK);
  } catch (error) {
    return skip(reasonForFsError(error));
  }
  return { ok: true, file: { path, size: stats.size, modified: stats.mtime, device: stats.dev, inode: stats.ino } };
}

function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

function reasonForFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return localFileReasons.notFound;
  if (code === 'EACCES' || code === 'EPERM') return localFileReasons.notReadable;
  // A symlink loop (ELOOP) or a name too long leads nowhere readable either.
  return `${localFileReasons.notReadable} (${code ?? 'error'})`;
}

/** The file changed between planning and reading: its bytes would not be the ones the plan sized. */
export class LocalFileChangedError extends Error {
  constructor(path: string, what: string) {
    super(`local file ${path} ${what} since the download was planned`);
    this.name = 'LocalFileChangedError';
  }
}

/**
 * The bytes of a planned local file. Opened without following a final symlink and checked to be the same file
 * (device, inode) with the same size as planned, else the stream fails rather than give other bytes.
 */
export function openLocalFile(file: LocalFile, options: { highWaterMark?: number } = {}): Readable {
  return Readable.from(readPinnedFile(file, options.highWaterMark ?? 1024 * 1024), { objectMode: false, highWaterMark: 1 });
}

async function* readPinnedFile(file: LocalFile, highWaterMark: number): AsyncGenerator<Buffer> {
  const handle = await open(file.path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const now = await handle.stat();
    if (now.dev !== file.device || now.ino !== file.inode) throw new LocalFileChangedError(file.path, 'was replaced');
    if (now.size !== file.size) throw new LocalFileChangedError(file.path, `changed size (${file.size} → ${now.size} bytes)`);
    for await (const chunk of handle.createReadStream({ autoClose: false, highWaterMark })) yield chunk as Buffer;
  } finally {
    await handle.close();
  }
}
