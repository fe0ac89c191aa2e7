import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import express, { type Request, type Response, type Router } from 'express';
import { request, type Dispatcher } from 'undici';
import type { ContextStore, ActionContext } from '../ami/context-store.ts';
import { actionOf, contextOf, pagePath } from '../ami/launch-routes.ts';
import type { Config } from '../config.ts';
import { formatBytes } from '../shared/format-bytes.ts';
import type { KeyValueStore } from '../store/key-value-store.ts';
import type { FileKinds, FileRef, Tracker } from '../trackers/tracker.ts';
import { createFileResolver, planDownload, type DownloadEntry } from '../transfer/archive-plan.ts';
import { openDownload } from '../transfer/download-source.ts';
import { openLocalFile, resolveLocalFile } from '../transfer/local-files.ts';
import { prefetching } from '../transfer/prefetch.ts';
import { checkWebLink, createWebLinkAgent, resolveWebLink, type WebLinkPolicy } from '../transfer/web-link-policy.ts';
import { writeZipArchive } from '../transfer/zip/zip-writer.ts';
import { attachmentDisposition } from '../web/content-disposition.ts';
import { HttpError } from '../web/errors.ts';
import { httpErrorFromSite } from '../web/site-errors.ts';

// Flow 3, "Download as zip" (DESIGN.md):
//
//   GET …                                the page: per selected entity, its files by kind, with sizes and totals
//   GET …/zip?kinds=…&download=<id>     the archive, streamed: exact Content-Length, entries stored, manifest last
//   GET …/zip/<id>/status                how far that download got, and which file failed if one did
//
// `…` is /ami/download-zip/<context id>. A source that fails for good aborts the response (the browser marks the
// download failed), and the status says which file: a zip never looks complete when it is not.

export interface DownloadRouteDeps {
  config: Pick<Config, 'publicPath' | 'webLinkHosts' | 'webLinkPrivateRanges' | 'localStorageMounts'>;
  tracker: Tracker;
  contexts: ContextStore;
  store: KeyValueStore;
  /** Sources fetched ahead of the one being written. */
  prefetch?: number;
  /** For tests: web links over plain http (never in production). */
  allowHttpWebLinks?: boolean;
  webLinkLookup?: Parameters<typeof createWebLinkAgent>[1];
}

export const ALL_KINDS: FileKinds = { attachments: true, fields: true, thumbnails: true, noteAttachments: true };
const KIND_NAMES = { attachments: 'attachments', fields: 'fields', thumbnails: 'thumbnails', noteAttachments: 'notes' } as const;
const STATUS_TTL_SECONDS = 24 * 3600;

interface DownloadStatus {
  state: 'planning' | 'sending' | 'done' | 'failed';
  total: number | null;
  sent: number;
  files: number;
  /** The entry being written when it failed. */
  failedFile: string | null;
  message: string | null;
  /** Why it failed: a source (the archive cannot be made now), or the browser's connection (it may ask again). */
  failedBy?: 'source' | 'browser';
}

export function downloadRoutes(deps: DownloadRouteDeps): Router {
  const router = express.Router();
  const policy: WebLinkPolicy = {
    hosts: deps.config.webLinkHosts,
    allowedPrivateRanges: deps.config.webLinkPrivateRanges,
    ...(deps.allowHttpWebLinks ? { allowHttp: true } : {}),
  };
  const webAgent = createWebLinkAgent(policy, deps.webLinkLookup);
  const base = '/ami/:action/:contextId';

  router.get(base, async (req, res, next) => {
    const action = actionOf(req);
    if (action.page !== 'download') {
      next();
      return;
    }
    const context = await contextOf(req, deps.contexts, action);
    const kinds = kindsFrom(req.query.kinds);
    const files = await siteCall(context, () => deps.tracker.listFiles(context.user.login, context.entityType, context.selectedIds, ALL_KINDS));
    const listed = await Promise.all(files.map(async (file) => ({ file, ...(await pageStatus(file, policy, deps.config.localStorageMounts)) })));
    res.set('Cache-Control', 'no-store');
    res.render('actions/download', {
      title: `${action.title} · ami-transfer`,
      action,
      user: context.user,
      project: context.project,
      entityType: context.entityType,
      selectedCount: context.selectedIds.length,
      siteUrl: context.siteUrl,
      siteHost: new URL(context.siteUrl).host,
      groups: groupByEntity(listed),
      kinds,
      kindNames: KIND_NAMES,
      formatBytes,
      zipUrl: `${pagePath(deps.config.publicPath, context)}/zip`,
      // For the plain form (the page's script makes its own per click): the browser's silent re-requests of a
      // cut download carry it, so a download that failed on a source is not rebuilt up to the same failure.
      downloadId: randomUUID(),
    });
  });

  router.get(`${base}/zip`, async (req, res) => {
    const context = await downloadContext(req, deps);
    const kinds = kindsFrom(req.query.kinds);
    const downloadId = typeof req.query.download === 'string' && /^[A-Za-z0-9-]{8,64}$/.test(req.query.download) ? req.query.download : null;
    const statusKey = downloadId ? `zip-status:${context.id}:${downloadId}` : null;
    // A browser whose download was cut asks for the same URL again, from byte 0, up to five times (Chromium's
    // auto-resume): after a source failed for good that would rebuild the archive up to the same failure each time
    // and overwrite the status the page shows. So a download that failed on a source stays failed (the page offers
    // a new one); one the browser's connection cut may start over.
    if (statusKey) {
      const previous = await deps.store.get(statusKey);
      const earlier = previous === null ? null : (JSON.parse(previous) as DownloadStatus);
      if (earlier?.state === 'failed' && earlier.failedBy === 'source') {
        throw new HttpError(410, 'gone', `This download failed at ${earlier.failedFile ?? 'its start'}: ${earlier.message ?? 'a file could not be fetched'}.`, {
          hint: 'Start a new download from the page.',
        });
      }
    }
    const status: DownloadStatus = { state: 'planning', total: null, sent: 0, files: 0, failedFile: null, message: null };
    const saveStatus = async () => {
      if (statusKey) await deps.store.set(statusKey, JSON.stringify(status), STATUS_TTL_SECONDS);
    };
    await saveStatus();

    const login = context.user.login;
    let plan: Awaited<ReturnType<typeof planDownload>>;
    try {
      const files = await siteCall(context, () => deps.tracker.listFiles(login, context.entityType, context.selectedIds, kinds));
      const resolve = createFileResolver({
        webLinks: policy,
        localMounts: deps.config.localStorageMounts,
        probeTrackedSize: async (file) => signedSize(await deps.tracker.locateFile(login, file)),
        probeWebSize: async (url) => contentLength({ url: await resolveWebLink(policy, webAgent, url.toString()) }, webAgent),
      });
      plan = await planDownload(files, resolve);
    } catch (error) {
      // The page follows the status: it must hear that planning failed, not wait on "preparing" for ever.
      Object.assign(status, { state: 'failed', failedBy: 'source', message: error instanceof Error ? error.message : String(error) });
      await saveStatus().catch(() => undefined);
      throw error;
    }
    status.state = 'sending';
    status.total = plan.archive.totalSize;
    status.files = plan.includedFiles;
    await saveStatus();

    res.status(200).set({
      'Content-Type': 'application/zip',
      'Content-Length': String(plan.archive.totalSize),
      'Content-Disposition': attachmentDisposition(archiveName(context, new Date())),
      'Cache-Control': 'no-store',
    });
    req.log.info({ files: plan.includedFiles, skipped: plan.skippedFiles, bytes: plan.archive.totalSize }, 'zip download started');

    const aborted = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) aborted.abort(new Error('the browser stopped the download'));
    });
    const prefetcher = prefetching(plan.entries, (entry) => openEntry(entry, deps.tracker, login, webAgent, policy, aborted.signal), deps.prefetch ?? 4);
    let current: DownloadEntry | null = null;
    const fail = (error: unknown, by: 'source' | 'browser'): void => {
      status.state = 'failed';
      status.failedFile = (current as DownloadEntry | null)?.name ?? null;
      status.message = error instanceof Error ? error.message : String(error);
      status.failedBy = by;
    };
    const ticker = setInterval(() => void saveStatus().catch(() => undefined), 1000);
    const archive = writeZipArchive(plan.archive, (planned) => {
      current = plan.entries[planned.index]!;
      return prefetcher.open(current);
    });
    archive.on('data', (chunk: Buffer) => {
      status.sent += chunk.length;
    });
    try {
      await sendArchive(archive, res, async (error) => {
        // A source failed for good while the browser still listens: recorded before the response is cut, so the
        // browser's automatic retry of the cut download finds it (above).
        fail(error, 'source');
        await saveStatus().catch(() => undefined);
      });
      status.state = 'done';
      req.log.info({ bytes: status.sent }, 'zip download finished');
    } catch (error) {
      if (status.failedBy === undefined) fail(error, 'browser');
      req.log.warn({ file: status.failedFile, by: status.failedBy, err: error }, 'zip download failed: response aborted');
      // Cut the connection: with Content-Length announced, the browser sees a short download, never a whole one.
      res.destroy(error instanceof Error ? error : new Error(String(error)));
    } finally {
      clearInterval(ticker);
      archive.destroy();
      prefetcher.close();
      await saveStatus().catch(() => undefined);
    }
  });

  router.get(`${base}/zip/:downloadId/status`, async (req, res) => {
    const context = await downloadContext(req, deps);
    const json = await deps.store.get(`zip-status:${context.id}:${String(req.params['downloadId'])}`);
    if (json === null) throw HttpError.notFound('No download by that id for this launch.');
    res.set('Cache-Control', 'no-store').json(JSON.parse(json));
  });

  return router;
}

/**
 * Pipes the archive into the response. Resolves when the browser has it all; rejects when the browser goes away,
 * or when the archive fails, after `onSourceFailure` has run and before the response is touched.
 */
function sendArchive(archive: Readable, res: Response, onSourceFailure: (error: Error) => Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    archive.once('error', (error) => {
      archive.unpipe(res);
      if (res.destroyed) reject(error);
      else void onSourceFailure(error).then(() => reject(error));
    });
    res.once('finish', () => resolve());
    res.once('close', () => {
      if (!res.writableFinished) reject(new Error('the browser stopped the download'));
    });
    archive.pipe(res);
  });
}

async function downloadContext(req: Request, deps: DownloadRouteDeps): Promise<ActionContext> {
  const action = actionOf(req);
  if (action.page !== 'download') throw HttpError.notFound('This action has no download.');
  return contextOf(req, deps.contexts, action);
}

/** `kinds=attachments,fields,thumbnails,notes`; all when absent. */
function kindsFrom(raw: unknown): FileKinds {
  if (raw === undefined || raw === '') return ALL_KINDS;
  const names = new Set((Array.isArray(raw) ? raw.join(',') : String(raw)).split(','));
  return {
    attachments: names.has(KIND_NAMES.attachments),
    fields: names.has(KIND_NAMES.fields),
    thumbnails: names.has(KIND_NAMES.thumbnails),
    noteAttachments: names.has(KIND_NAMES.noteAttachments),
  };
}

/** What the page can say of a file without fetching anything: its size if known, or why it will be skipped. */
async function pageStatus(file: FileRef, policy: WebLinkPolicy, mounts: ReadonlyMap<string, string>): Promise<{ skipped: string | null; size: number | null }> {
  if (file.link.type === 'web') {
    try {
      checkWebLink(policy, file.link.url);
    } catch (error) {
      return { skipped: `web link not fetched: ${(error as Error).message}`, size: file.size };
    }
    return { skipped: null, size: null };
  }
  if (file.link.type === 'local') {
    const found = await resolveLocalFile(mounts, file.link);
    return found.ok ? { skipped: null, size: found.file.size } : { skipped: found.reason, size: null };
  }
  return { skipped: null, size: file.size };
}

function groupByEntity(listed: { file: FileRef; skipped: string | null; size: number | null }[]) {
  const groups = new Map<string, { entity: FileRef['entity']; files: typeof listed }>();
  for (const item of listed) {
    const key = `${item.file.entity.type}:${item.file.entity.id}`;
    const group = groups.get(key) ?? { entity: item.file.entity, files: [] };
    group.files.push(item);
    groups.set(key, group);
  }
  return [...groups.values()];
}

function openEntry(entry: DownloadEntry, tracker: Tracker, login: string, webAgent: Dispatcher, policy: WebLinkPolicy, signal: AbortSignal): Readable {
  const { origin } = entry;
  switch (origin.kind) {
    case 'manifest':
      return Readable.from([origin.bytes]);
    case 'local':
      return openLocalFile(origin.file);
    case 'tracker':
      return openDownload({ locate: () => tracker.locateFile(login, entry.file!), size: entry.size, signal });
    case 'web':
      return openDownload({ locate: async () => ({ url: await resolveWebLink(policy, webAgent, origin.url, 5, signal) }), size: entry.size, dispatcher: webAgent, signal });
  }
}

/**
 * The size of what a signed storage URL serves, from a one-byte Range GET: a URL signed for GET refuses a HEAD
 * (S3 signs the method; the sandbox too), so a HEAD would leave every thumbnail "size unknown". Null when
 * storage does not say.
 */
async function signedSize(location: { url: string; headers?: Record<string, string> }): Promise<number | null> {
  const response = await request(location.url, { method: 'GET', headers: { ...location.headers, range: 'bytes=0-0' } });
  // At most a byte (a server ignoring Range sends it all: dump() stops reading after 128 KiB and closes).
  await response.body.dump();
  const range = /^bytes (?:\d+-\d+|\*)\/(\d+)$/.exec(String(response.headers['content-range'] ?? ''));
  if ((response.statusCode === 206 || response.statusCode === 416) && range) return Number(range[1]);
  const length = Number(response.headers['content-length']);
  return response.statusCode === 200 && Number.isSafeInteger(length) ? length : null;
}

/** The size a location answers a HEAD with (null when it does not say). */
async function contentLength(location: { url: string; headers?: Record<string, string> }, dispatcher?: Dispatcher): Promise<number | null> {
  const response = await request(location.url, { method: 'HEAD', headers: location.headers ?? {}, ...(dispatcher ? { dispatcher } : {}) });
  await response.body.dump();
  const length = Number(response.headers['content-length']);
  return response.statusCode === 200 && Number.isSafeInteger(length) ? length : null;
}


/** `Demo_Versions_2026-11-23.zip`: project, what was selected, the day. */
export function archiveName(context: ActionContext, date: Date): string {
  const plural = context.entityType.endsWith('s') ? context.entityType : `${context.entityType}s`;
  const parts = [context.project?.name ?? null, plural, date.toISOString().slice(0, 10)].filter((part): part is string => Boolean(part));
  return `${parts.join('_').replace(/[\s/\\]+/g, '_')}.zip`;
}

async function siteCall<T>(context: ActionContext, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw httpErrorFromSite(error, context.user.login);
  }
}

