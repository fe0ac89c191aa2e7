import { FileHeldBySite, type FileRef } from '../trackers/tracker.ts';
import { imageFormatOf } from '../shared/image-signature.ts';
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
  /**
   * Uploaded to the site (or a thumbnail): a signed URL from the tracker's `locateFile`. The one found while
   * planning is kept (`location`, with when it was asked) and used while still fresh, sparing the site a request.
   */
  | { readonly kind: 'tracker'; readonly location?: TrackedLocation }
  /** A web link that passed the policy: fetched through the policy's agent, redirects checked again. */
  | { readonly kind: 'web'; readonly url: string }
  /** A file under a LocalStorage mount, pinned when checked: read with `openLocalFile`. */
  | { readonly kind: 'local'; readonly file: LocalFile };

/** A signed location found while planning, and when (epoch ms). */
export interface TrackedLocation {
  readonly url: string;
  readonly at: number;
}

export type FileResolution =
  /** `name`: the name its bytes call for, where it differs from the site's (a thumbnail's extension). */
  | { readonly status: 'included'; readonly size: number; readonly origin: FileOrigin; readonly modified?: Date; readonly name?: string }
  | { readonly status: 'skipped'; readonly reason: string; readonly size: number | null };

export type ResolveFile = (file: FileRef) => Promise<FileResolution>;

export const skipReasons = {
  webHostNotAllowed: 'web link host not allowed',
  webNotAllowed: 'web link not allowed',
  sizeUnknown: 'size unknown',
  duplicate: 'same attachment already listed for this entity',
  scanning: 'still being scanned for malware by the site',
  quarantined: 'quarantined by the site (malware found)',
  unreachable: 'could not be fetched',
} as const;

/** What a probe of an uploaded file found: where its bytes are, how many, and the first of them. */
export interface TrackedProbe {
  location: TrackedLocation;
  /** Null when storage did not say. */
  size: number | null;
  /** The first bytes (up to 16), to tell an image's format by. */
  head: Uint8Array;
}

export interface FileResolverOptions {
  webLinks: WebLinkPolicy;
  /** LocalStorage code → where it is mounted here. */
  localMounts: ReadonlyMap<string, string>;
  /**
   * Locates an uploaded file or thumbnail at the site and asks storage for its size and first bytes. Throws
   * FileHeldBySite when the site keeps it back (malware scan).
   */
  probeTracked(file: FileRef): Promise<TrackedProbe>;
  /** How long a file under the site's malware scan is waited for before it goes in the manifest only. */
  scanWaitMs: number;
  /**
   * Told why a probe failed, for the log: the manifest only says the file could not be fetched, since a raw
   * network error ("connect ECONNREFUSED 10.1.2.3:8443") would let a user probe ports on allowed hosts.
   */
  onProbeFailure?(file: FileRef, error: unknown): void;
  /** Bytes behind a web link the policy allows (HEAD, each redirect checked); null if the server does not say. */
  probeWebSize(url: URL, file: FileRef): Promise<number | null>;
}

/** How each kind of file is sized and where it will be read from. */
export function createFileResolver(options: FileResolverOptions): ResolveFile {
  return async (file) => {
    const { link } = file;
    switch (link.type) {
      case 'upload':
        return resolveTracked(file, options);
      case 'web': {
        let url: URL;
        try {
          url = checkWebLink(options.webLinks, link.url);
        } catch (error) {
          return { status: 'skipped', reason: webRefusal(options.webLinks, link.url, error), size: file.size };
        }
        // The site cannot know what a web server holds: only the server's own answer sizes it.
        return sized(() => options.probeWebSize(url, file), { kind: 'web', url: url.toString() }, file.size, (error) => options.onProbeFailure?.(file, error));
      }
      case 'local': {
        const found = await resolveLocalFile(options.localMounts, link);
        if (!found.ok) return { status: 'skipped', reason: found.reason, size: file.size };
        return { status: 'included', size: found.file.size, origin: { kind: 'local', file: found.file }, modified: found.file.modified };
      }
    }
  };
}

/**
 * Every uploaded file is located while planning, whatever size the site states: that is where the site says a
 * file is under its malware scan (waited for, up to `scanWaitMs`) or quarantined (left out), before the zip's
 * first byte, instead of failing it half-way. The location found is kept for the download.
 */
async function resolveTracked(file: FileRef, options: FileResolverOptions): Promise<FileResolution> {
  const deadline = Date.now() + options.scanWaitMs;
  for (let attempt = 0; ; attempt++) {
    let probe: TrackedProbe;
    try {
      probe = await options.probeTracked(file);
    } catch (error) {
      if (error instanceof FileHeldBySite && error.reason === 'quarantined') return { status: 'skipped', reason: skipReasons.quarantined, size: file.size };
      if (error instanceof FileHeldBySite) {
        const wait = Math.min(1000 * 2 ** attempt, 15_000);
        if (Date.now() + wait > deadline) return { status: 'skipped', reason: skipReasons.scanning, size: file.size };
        await new Promise((resolve) => setTimeout(resolve, wait));
        continue;
      }
      options.onProbeFailure?.(file, error);
      return { status: 'skipped', reason: `${skipReasons.sizeUnknown}: ${skipReasons.unreachable}`, size: file.size };
    }
    // Storage's answer is the truth about the bytes; the site's stated size is only a fallback.
    const size = isByteCount(probe.size) ? probe.size : file.size;
    if (!isByteCount(size)) return { status: 'skipped', reason: skipReasons.sizeUnknown, size: null };
    return { status: 'included', size, origin: { kind: 'tracker', location: probe.location }, ...namedByContent(file, probe.head) };
  }
}

const IMAGE_EXTENSIONS: Readonly<Record<string, string>> = { PNG: '.png', JPEG: '.jpg', GIF: '.gif', WebP: '.webp', TIFF: '.tif', BMP: '.bmp' };

/** A thumbnail's original may be a PNG, TIFF, EXR… whatever its URL says: its entry is named by its bytes. */
function namedByContent(file: FileRef, head: Uint8Array): { name?: string } {
  if (file.source !== 'thumbnail') return {};
  const format = imageFormatOf(head);
  const extension = format === null ? null : IMAGE_EXTENSIONS[format];
  if (!extension) return {};
  const stem = file.name.replace(/\.[^.]*$/, '');
  return `${stem}${extension}` === file.name ? {} : { name: `${stem}${extension}` };
}

async function sized(probe: () => Promise<number | null>, origin: FileOrigin, statedSize: number | null, onFailure: (error: unknown) => void): Promise<FileResolution> {
  let size: number | null;
  try {
    size = await probe();
  } catch (error) {
    // A redirect to a refused host shows up here, at the probe that followed it.
    if (error instanceof WebLinkRefused) return { status: 'skipped', reason: `${skipReasons.webNotAllowed}: ${error.message}`, size: statedSize };
    onFailure(error);
    return { status: 'skipped', reason: `${skipReasons.sizeUnknown}: ${skipReasons.unreachable}`, size: statedSize };
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
  readonly modified: Date;
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
  /** After each file is resolved: how many are, of how many. */
  onProgress?(resolved: number, total: number): void;
}

/**
 * Resolves every file, names the included ones (in the tracker's order, so the layout is stable), writes the
 * manifest and plans the archive. The manifest's size is known because every status is decided here.
 */
export async function planDownload(files: readonly FileRef[], resolve: ResolveFile, options: PlanDownloadOptions = {}): Promise<DownloadPlan> {
  const modified = options.modified ?? new Date();
  const firstOfAttachment = new Set<string>();
  let resolved = 0;
  const resolutions = await mapInOrder(files, options.concurrency ?? 16, async (file) => {
    const resolution = await resolveOnce(file);
    options.onProgress?.(++resolved, files.length);
    return resolution;
  });
  function resolveOnce(file: FileRef): Promise<FileResolution> {
    // One Attachment reached twice for the same entity (linked to it and to one of its Notes) is one file.
    if (file.attachmentId !== null) {
      const key = `${file.entity.type}\u0000${file.entity.id}\u0000${file.attachmentId}`;
      if (firstOfAttachment.has(key)) return Promise.resolve<FileResolution>({ status: 'skipped', reason: skipReasons.duplicate, size: file.size });
      firstOfAttachment.add(key);
    }
    return resolve(file);
  }

  const namer = new EntryNamer();
  const entries: DownloadEntry[] = [];
  const rows: ManifestRow[] = [];
  let includedBytes = 0;
  for (const [index, file] of files.entries()) {
    const resolution = resolutions[index]!;
    let entryName: string | null = null;
    if (resolution.status === 'included') {
      entryName = namer.name({ entityType: file.entity.type, entityId: file.entity.id, entityName: file.entity.name, fileName: resolution.name ?? file.name });
      entries.push({ name: entryName, size: resolution.size, modified: resolution.modified ?? modified, file, origin: resolution.origin });
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
  entries.push({ name: MANIFEST_ENTRY_NAME, size: manifest.length, modified, file: null, origin: { kind: 'manifest', bytes: manifest } });
  const includedFiles = entries.length - 1;
  return { entries, rows, manifest, archive: archiveOf(entries), includedFiles, skippedFiles: files.length - includedFiles, includedBytes };
}

function archiveOf(entries: readonly DownloadEntry[]): ArchivePlan {
  return planArchive(entries.map((entry) => ({ name: entry.name, size: entry.size, modified: entry.modified })));
}

/**
 * A plan as JSON, for the shared store: the zip is prepared by one request (on any instance) and streamed by
 * another, the same bytes every time it is asked for. The manifest rows are not kept (the manifest's bytes are).
 */
export function planToJson(plan: DownloadPlan): string {
  return JSON.stringify({
    entries: plan.entries.map((entry) => ({
      name: entry.name,
      size: entry.size,
      modified: entry.modified.toISOString(),
      file: entry.file,
      origin: entry.origin.kind === 'manifest' ? { kind: 'manifest', bytes: entry.origin.bytes.toString('base64') } : entry.origin,
    })),
    includedFiles: plan.includedFiles,
    skippedFiles: plan.skippedFiles,
    includedBytes: plan.includedBytes,
  });
}

export function planFromJson(json: string): DownloadPlan {
  const stored = JSON.parse(json) as {
    entries: { name: string; size: number; modified: string; file: FileRef | null; origin: FileOrigin | { kind: 'manifest'; bytes: string } }[];
    includedFiles: number;
    skippedFiles: number;
    includedBytes: number;
  };
  const entries: DownloadEntry[] = stored.entries.map((entry) => ({
    name: entry.name,
    size: entry.size,
    modified: new Date(entry.modified),
    file: entry.file,
    origin: entry.origin.kind === 'manifest' ? { kind: 'manifest', bytes: Buffer.from(entry.origin.bytes, 'base64') } : revived(entry.origin),
  }));
  const manifest = entries.at(-1)!.origin as { kind: 'manifest'; bytes: Buffer };
  return { entries, rows: [], manifest: manifest.bytes, archive: archiveOf(entries), includedFiles: stored.includedFiles, skippedFiles: stored.skippedFiles, includedBytes: stored.includedBytes };
}

/** A local file's times come back from JSON as strings. */
function revived(origin: FileOrigin): FileOrigin {
  return origin.kind === 'local' ? { kind: 'local', file: { ...origin.file, modified: new Date(origin.file.modified) } } : origin;
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


/** `map` with at most `limit` calls in flight; results in input order. Stops starting new calls after a failure. */
export async function mapInOrder<T, R>(items: readonly T[], limit: number, map: (item: T) => Promise<R>): Promise<R[]> {
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
