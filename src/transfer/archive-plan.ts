import type { FileRef } from '../trackers/tracker.ts';
import { resolveLocalFile, type LocalFile } from './local-files.ts';
import { checkWebLink, hostAllowed, WebLinkRefused, type WebLinkPolicy } from './web-link-policy.ts';
import { EntryNamer } from './zip/entry-names.ts';
import { MANIFEST_ENTRY_NAME, manifestCsv, type ManifestRow } from './zip/manifest.ts';
import { planArchive, type ArchivePlan } from './zip/zip-plan.ts';

// Plans a download zip before a byte of it is sent: every file the tracker listed is either included — with
// its exact size and where its bytes come from — or skipped with a reason. Exact sizes are what let the
// response announce its Content-Length and the browser show time left; a file whose size cannot be known up
// front cannot be in the archive, so it goes in the manifest instead. Anything that needs the network or the
// disk is injected (or, for local files, confined to local-files.ts), so this module is tested without either.

/** Where an included file's bytes come from when the writer reaches it. */
export type FileOrigin =
  /** Uploaded to the site (or a thumbnail): a fresh signed URL from the tracker's `locateFile`. */
  | { readonly kind: 'tracker' }
  /** A web link that passed the policy: fetched through the policy's agent, redirects checked again. */
  | { readonly kind: 'web'; readonly url: string }
  /** A file under a LocalStorage mount, pinned when checked: read with `openLocalFile`. */
  | { readonly kind: 'local'; readonly file: LocalFile };

export type FileResolution =
  | { readonly status: 'included'; readonly size: number; readonly origin: FileOrigin; readonly modified?: Date }
  | { readonly status: 'skipped'; readonly reason: string; readonly size: number | null };

export type ResolveFile = (file: FileRef) => Promise<FileResolution>;

export const skipReasons = {
  webHostNotAllowed: 'web link host not allowed',
  webNotAllowed: 'web link not allowed',
  sizeUnknown: 'size unknown',
  duplicate: 'same attachment already listed for this entity',
} as const;

export interface FileResolverOptions {
  webLinks: WebLinkPolicy;
  /** LocalStorage code → where it is mounted here. */
  localMounts: ReadonlyMap<string, string>;
  /** Bytes of an uploaded file or thumbnail the site gave no size for (e.g. HEAD on its signed URL); null if unknown. */
  probeTrackedSize(file: FileRef): Promise<number | null>;
  /** Bytes behind a web link the policy allows (HEAD, each redirect checked); null if the server does not say. */
  probeWebSize(url: URL, file: FileRef): Promise<number | null>;
}

/** How each kind of file is sized and where it will be read from. */
export function createFileResolver(options: FileResolverOptions): ResolveFile {
  return async (file) => {
    const { link } = file;
    switch (link.type) {
      case 'upload': {
        if (isByteCount(file.size)) return { status: 'included', size: file.size, origin: { kind: 'tracker' } };
        return sized(() => options.probeTrackedSize(file), { kind: 'tracker' }, null);
      }
      case 'web': {
        let url: URL;
        try {
          url = checkWebLink(options.webLinks, link.url);
        } catch (error) {
          return { status: 'skipped', reason: webRefusal(options.webLinks, link.url, error), size: file.size };
        }
        // The site cannot know what a web server holds: only the server's own answer sizes it.
        return sized(() => options.probeWebSize(url, file), { kind: 'web', url: url.toString() }, file.size);
      }
      case 'local': {
        const found = await resolveLocalFile(options.localMounts, link);
        if (!found.ok) return { status: 'skipped', reason: found.reason, size: file.size };
        return { status: 'included', size: found.file.size, origin: { kind: 'local', file: found.file }, modified: found.file.modified };
      }
    }
  };
}

async function sized(probe: () => Promise<number | null>, origin: FileOrigin, statedSize: number | null): Promise<FileResolution> {
  let size: number | null;
  try {
    size = await probe();
  } catch (error) {
    // A redirect to a refused host shows up here, at the probe that followed it.
    if (error instanceof WebLinkRefused) return { status: 'skipped', reason: `${skipReasons.webNotAllowed}: ${error.message}`, size: statedSize };
    return { status: 'skipped', reason: `${skipReasons.sizeUnknown}: ${errorMessage(error)}`, size: statedSize };
  }
  if (!isByteCount(size)) return { status: 'skipped', reason: skipReasons.sizeUnknown, size: statedSize };
  return { status: 'included', size, origin };
}

function webRefusal(policy: WebLinkPolicy, raw: string, error: unknown): string {
  if (!(error instanceof WebLinkRefused)) throw error;
  // The common case gets its plain reason; the rest (a scheme, credentials, a private address) say what it was.
  const url = URL.parse(raw);
  const webAddress = url !== null && (url.protocol === 'https:' || url.protocol === 'http:');
  if (webAddress && !hostAllowed(policy, url.hostname.replace(/^\[|\]$/g, ''))) return skipReasons.webHostNotAllowed;
  return `${skipReasons.webNotAllowed}: ${error.message}`;
}

/** One entry of the archive, in archive order: a listed file, or the manifest (always last). */
export interface DownloadEntry {
  readonly name: string;
  readonly size: number;
  /** The tracker's file; null for the manifest. */
  readonly file: FileRef | null;
  readonly origin: FileOrigin | { readonly kind: 'manifest'; readonly bytes: Buffer };
}

export interface DownloadPlan {
  /** Same order and length as `archive.entries`; the manifest is the last. */
  readonly entries: readonly DownloadEntry[];
  /** One per listed file, in the tracker's order: what the manifest says. */
  readonly rows: readonly ManifestRow[];
  readonly manifest: Buffer;
  readonly archive: ArchivePlan;
  readonly includedFiles: number;
  readonly skippedFiles: number;
  /** Bytes of the included files alone (the archive adds headers and the manifest). */
  readonly includedBytes: number;
}

export interface PlanDownloadOptions {
  /** Files resolved at once (probes and stats); results keep the tracker's order whatever finishes first. */
  concurrency?: number;
  /** Modification time of entries without one of their own (and of the manifest); defaults to now. */
  modified?: Date;
}

/**
 * Resolves every file, names the included ones (in the tracker's order, so the layout is stable), writes the
 * manifest and plans the archive. The manifest's size is known because every status is decided here.
 */
export async function planDownload(files: readonly FileRef[], resolve: ResolveFile, options: PlanDownloadOptions = {}): Promise<DownloadPlan> {
  const modified = options.modified ?? new Date();
  const firstOfAttachment = new Set<string>();
  const resolutions = await mapInOrder(files, options.concurrency ?? 16, (file) => {
    // One Attachment reached twice for the same entity (linked to it and to one of its Notes) is one file.
    if (file.attachmentId !== null) {
      const key = `${file.entity.type}\u0000${file.entity.id}\u0000${file.attachmentId}`;
      if (firstOfAttachment.has(key)) return Promise.resolve<FileResolution>({ status: 'skipped', reason: skipReasons.duplicate, size: file.size });
      firstOfAttachment.add(key);
    }
    return resolve(file);
  });

  const namer = new EntryNamer();
  const entries: DownloadEntry[] = [];
  const rows: ManifestRow[] = [];
  const entryTimes: Date[] = [];
  let includedBytes = 0;
  for (const [index, file] of files.entries()) {
    const resolution = resolutions[index]!;
    let entryName: string | null = null;
    if (resolution.status === 'included') {
      entryName = namer.name({ entityType: file.entity.type, entityId: file.entity.id, entityName: file.entity.name, fileName: file.name });
      entries.push({ name: entryName, size: resolution.size, file, origin: resolution.origin });
      entryTimes.push(resolution.modified ?? modified);
      includedBytes += resolution.size;
    }
    rows.push({
      entityType: file.entity.type,
      entityId: file.entity.id,
      entityName: file.entity.name,
      source: file.source,
      field: file.field,
      linkType: file.link.type,
      link: describeLink(file),
      fileName: file.name,
      size: resolution.size,
      entryName,
      status: resolution.status,
      reason: resolution.status === 'skipped' ? resolution.reason : null,
    });
  }

  const manifest = manifestCsv(rows);
  entries.push({ name: MANIFEST_ENTRY_NAME, size: manifest.length, file: null, origin: { kind: 'manifest', bytes: manifest } });
  entryTimes.push(modified);
  const archive = planArchive(entries.map((entry, index) => ({ name: entry.name, size: entry.size, modified: entryTimes[index] })));
  const includedFiles = entries.length - 1;
  return { entries, rows, manifest, archive, includedFiles, skippedFiles: files.length - includedFiles, includedBytes };
}

/** What the manifest shows of a link: the web address (without any credentials in it) or the local path. */
function describeLink(file: FileRef): string | null {
  const { link } = file;
  if (link.type === 'web') {
    try {
      const url = new URL(link.url);
      url.username = '';
      url.password = '';
      return url.toString();
    } catch {
      return link.url;
    }
  }
  if (link.type === 'local') {
    if (link.storageCode !== null && link.relativePath !== null) return `${link.storageCode}:${link.relativePath}`;
    return link.localPath ?? link.relativePath;
  }
  return null;
}

function isByteCount(size: number | null): size is number {
  return size !== null && Number.isSafeInteger(size) && size >= 0;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `map` with at most `limit` calls in flight; results in input order. Stops starting new calls after a failure. */
async function mapInOrder<T, R>(items: readonly T[], limit: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await map(items[index]!);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
