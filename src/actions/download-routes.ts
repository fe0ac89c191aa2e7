import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import express, { type Request, type Response, type Router } from 'express';
import { request, type Dispatcher } from 'undici';
import type { ContextStore, ActionContext } from '../ami/context-store.ts';
import { actionOf, contextOf, pagePath } from '../ami/launch-routes.ts';
import type { Config } from '../config.ts';
import type { KeyValueStore } from '../store/key-value-store.ts';
import type { FileKinds, FileRef, Tracker } from '../trackers/tracker.ts';
import type { Logger } from '../log.ts';
import type { Outbound } from '../net/outbound.ts';
import { IMAGE_SIGNATURE_BYTES } from '../shared/image-signature.ts';
import { settleWithin } from '../shared/settle-within.ts';
import { createFileResolver, mapInOrder, planDownload, planFromJson, planToJson, type DownloadEntry, type DownloadPlan, type TrackedProbe } from '../transfer/archive-plan.ts';
import { DownloadError, openDownload } from '../transfer/download-source.ts';
import { openLocalFile, resolveLocalFile } from '../transfer/local-files.ts';
import { prefetching } from '../transfer/prefetch.ts';
import { checkWebLink, createWebLinkAgent, resolveWebLink, type WebLinkPolicy } from '../transfer/web-link-policy.ts';
import { writeZipArchive } from '../transfer/zip/zip-writer.ts';
import { attachmentDisposition } from '../web/content-disposition.ts';
import { CSRF_FIELD, csrfToken } from '../web/csrf.ts';
import { HttpError } from '../web/errors.ts';
import { httpErrorFromSite } from '../web/site-errors.ts';
import type { LaunchRecords } from './launch-record.ts';
import { recordLists } from './record-view.ts';

// Flow 3, "Download as zip" (DESIGN.md):
//
//   GET  …                              the page: per selected entity, its files by kind, with sizes and totals
//   POST …/zip                          prepare a zip of the chosen kinds: answered at once (202 JSON, or 303 to
//                                       the waiting page for the plain form); the files are located and sized
//                                       in the background, which on a real site may take minutes
//   GET  …/zip/<id>                     the plain form's waiting page (it reloads itself, then starts the file)
//   GET  …/zip/<id>/status              how far preparing or sending got, and which file failed if one did;
//                                       with ?wait=1, held while this instance prepares it, up to STATUS_HOLD_MS,
//                                       so the page hears "ready" when it happens rather than at its next poll
//   GET  …/zip/<id>/file                the archive, streamed: exact Content-Length, entries stored, manifest last
//
// `…` is /ami/download-zip/<context id>. Preparing first keeps the file's GET from waiting minutes before its first
// byte (proxies cut idle responses after 60 s). The plan is kept in the store, so any instance streams it. A
// source that fails for good aborts the response (the browser marks the download failed), and the status says
// which file: a zip never looks complete when it is not.

export interface DownloadRouteDeps {
  config: Pick<Config, 'publicPath' | 'webLinkHosts' | 'webLinkPrivateRanges' | 'localStorageMounts' | 'session' | 'zipScanWaitSeconds'>;
  tracker: Tracker;
  contexts: ContextStore;
  store: KeyValueStore;
  /** Sources fetched ahead of the one being written. */
  prefetch?: number;
  /** Files located and sized at once while preparing (the site's own limit applies on top). */
  planConcurrency?: number;
  /** For tests: web links over plain http (never in production). */
  allowHttpWebLinks?: boolean;
  webLinkLookup?: Parameters<typeof createWebLinkAgent>[1];
  /** The user's record of what each action did (src/actions/launch-record.ts). */
  records?: LaunchRecords;
  /** How storage and web links are reached (the outbound proxy, when one is set); direct when absent. */
  outbound?: Pick<Outbound, 'storage' | 'webLinkRoute'>;
}

export const ALL_KINDS: FileKinds = { attachments: true, fields: true, thumbnails: true, noteAttachments: true };
const KIND_NAMES = { attachments: 'attachments', fields: 'fields', thumbnails: 'thumbnails', noteAttachments: 'notes' } as const;
const STATUS_TTL_SECONDS = 24 * 3600;
/** How long a status ask is held while its zip is being prepared (the page asks again at once after). */
const STATUS_HOLD_MS = 1000;
/** The CSRF purpose of the zip's POST (the path segment after the context id). */
const ZIP_PURPOSE = 'zip';
/** A location found while preparing is used this long: storage's signed GETs live 847–900 s (live). */
const LOCATION_REUSE_MS = 5 * 60_000;
const downloadIdPattern = /^[A-Za-z0-9-]{8,64}$/;
/**
 * Sources opened ahead of the one being written: up to 32 small ones (on a remote site each request waits tens of
 * milliseconds before its first byte, and 2,000 small files one after the other would be 2,000 such waits), fewer
 * once they add up to 64 MiB (big files are limited by bandwidth; one ahead hides the next one's start). Each holds
 * at most its first chunk until it is read.
 */
const PREFETCH_SOURCES = 32;
const PREFETCH_BYTES = 64 * 1024 * 1024;
/** Zips one launch may prepare (a page asks one per click). */
const MAX_ZIPS_PER_LAUNCH = 50;
/** How long the page's size measuring may take. */
const SIZES_BUDGET_MS = 20_000;
/** Selected entities a zip's record entry names (the rest are counted). */
const RECORDED_TARGETS = 20;

/** A zip's state is kept for the user who asked for it (the memory store evicts the heaviest user's first). */
const ownedBy = (context: ActionContext) => ({ owner: context.user.login });

/** Names one listed file on the page and in the sizes answer. */
function fileKey(file: FileRef): string {
  return `${file.entity.type}:${file.entity.id}:${file.source}:${file.attachmentId ?? file.field ?? ''}`;
}

interface DownloadStatus {
  state: 'preparing' | 'ready' | 'sending' | 'done' | 'failed';
  /** Files the site listed, and how many of them are located and sized so far. */
  listed: number | null;
  resolved: number;
  /** Files in the zip, and files in its manifest only. */
  files: number;
  skipped: number;
  /** Bytes of the whole zip, once prepared. */
  total: number | null;
  sent: number;
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
  const webAgent = createWebLinkAgent(policy, deps.webLinkLookup, deps.outbound?.webLinkRoute ?? null);
  const storage = deps.outbound?.storage;
  const csrfSecret = deps.config.session.secret.reveal();
  const base = '/ami/:action/:contextId';
  const statusKey = (context: ActionContext, id: string) => `zip-status:${context.id}:${id}`;
  const planKey = (context: ActionContext, id: string) => `zip-plan:${context.id}:${id}`;
  const readStatus = async (context: ActionContext, id: string): Promise<DownloadStatus | null> => {
    const json = await deps.store.get(statusKey(context, id));
    return json === null ? null : (JSON.parse(json) as DownloadStatus);
  };
  /** Preparations running on this instance, by download id (another instance's are not waited on). */
  const preparing = new Map<string, Promise<void>>();
  /** The status, once preparing ended or STATUS_HOLD_MS passed, whichever comes first. */
  const settledStatus = async (context: ActionContext, id: string): Promise<DownloadStatus | null> => {
    const running = preparing.get(id);
    if (running) await settleWithin(running, STATUS_HOLD_MS);
    return readStatus(context, id);
  };
  const saveStatus = (context: ActionContext, id: string, status: DownloadStatus) => deps.store.set(statusKey(context, id), JSON.stringify(status), STATUS_TTL_SECONDS, ownedBy(context));
  /** The user's record: a zip prepared, downloaded, or failed on a source (a cut connection may still resume). */
  const recordZip = async (context: ActionContext, id: string, status: DownloadStatus): Promise<void> => {
    if (status.state === 'preparing' || status.state === 'sending' || (status.state === 'failed' && status.failedBy !== 'source')) return;
    await deps.records?.note(context, {
      key: `zip-${id}`,
      kind: 'zip',
      state: status.state === 'done' ? 'downloaded' : status.state === 'failed' ? 'failed' : 'prepared',
      name: archiveName(context, deps.tracker.typeLabel(context.entityType), new Date()),
      size: status.total,
      targets: context.selectedIds.slice(0, RECORDED_TARGETS).map((entityId) => ({ type: context.entityType, id: entityId })),
      moreTargets: Math.max(0, context.selectedIds.length - RECORDED_TARGETS),
      note: status.state === 'failed' ? (status.message ?? 'a file could not be fetched') : `${status.files} ${status.files === 1 ? 'file' : 'files'}${status.skipped > 0 ? `, ${status.skipped} listed in its manifest only` : ''}`,
    });
  };

  router.get(base, async (req, res, next) => {
    const action = actionOf(req);
    if (action.page !== 'download') {
      next();
      return;
    }
    const context = await contextOf(req, deps.contexts, action);
    const kinds = kindsFrom(req.query.kinds);
    const [files, selection] = await siteCall(context, () =>
      Promise.all([
        deps.tracker.listFiles(context.user.login, context.entityType, context.selectedIds, ALL_KINDS),
        deps.tracker.lookupSelection(context.user.login, context.entityType, context.selectedIds),
      ]),
    );
    const listed = await Promise.all(files.map(async (file) => ({ file, ...(await pageStatus(file, policy, deps.config.localStorageMounts)) })));
    // Said, not left out: the selected entities the user can see that have no file at all.
    const withFiles = new Set(files.map((file) => `${file.entity.type}:${file.entity.id}`));
    const withoutFiles = selection.visible.filter((entity) => !withFiles.has(`${entity.type}:${entity.id}`)).map((entity) => entity.name);
    res.set('Cache-Control', 'no-store');
    res.render('actions/download', {
      title: `${action.title} · ami-transfer`,
      action,
      user: context.user,
      project: context.project,
      entityType: deps.tracker.typeLabel(context.entityType),
      selectedCount: context.selectedIds.length,
      hiddenCount: selection.hiddenIds.length,
      withoutFiles,
      siteUrl: context.siteUrl,
      siteHost: new URL(context.siteUrl).host,
      groups: groupByEntity(listed),
      kinds,
      kindNames: KIND_NAMES,
      zipUrl: `${pagePath(deps.config.publicPath, context)}/${ZIP_PURPOSE}`,
      csrfField: CSRF_FIELD,
      zipToken: csrfToken(csrfSecret, context.id, ZIP_PURPOSE),
      sizesUrl: `${pagePath(deps.config.publicPath, context)}/sizes`,
      fileKey,
      record: await recordLists(deps.records, deps.tracker, context, selection.visible),
    });
  });

  // The sizes the site does not state (every file since 2025), asked of storage after the page has shown: the
  // page fills them in, instead of waiting for them before its first byte. Bounded in time: what is not measured
  // by then stays "measured when the zip is made".
  router.get(`${base}/sizes`, async (req, res) => {
    const context = await downloadContext(req, deps);
    const login = context.user.login;
    const files = await siteCall(context, () => deps.tracker.listFiles(login, context.entityType, context.selectedIds, ALL_KINDS));
    const unsized = files.filter((file) => file.link.type === 'upload' && file.size === null);
    const deadline = Date.now() + SIZES_BUDGET_MS;
    const sizes = await mapInOrder(unsized, deps.planConcurrency ?? 32, async (file) => {
      if (Date.now() > deadline) return { key: fileKey(file), size: null };
      try {
        return { key: fileKey(file), size: (await probeTracked(deps.tracker, login, file, storage)).size };
      } catch {
        // Held by the site (malware scan) or not reachable now: the zip's preparation says which.
        return { key: fileKey(file), size: null };
      }
    });
    res.set('Cache-Control', 'no-store').json({ sizes });
  });

  router.post(`${base}/${ZIP_PURPOSE}`, express.json({ limit: '16kb' }), async (req, res) => {
    const context = await downloadContext(req, deps);
    const body = (req.body ?? {}) as { kinds?: unknown };
    const kinds = kindsFrom(body.kinds);
    // Each prepared zip keeps its plan in the store for a day: one launch cannot pile them up. Counted atomically
    // (requests at once cannot all slip under the cap), over a day from the launch's first zip, as long as a plan lives.
    if ((await deps.store.increment(`launch-zip-count:${context.id}`, STATUS_TTL_SECONDS, ownedBy(context))) > MAX_ZIPS_PER_LAUNCH) {
      throw new HttpError(429, 'too_many_zips', `This launch has prepared ${MAX_ZIPS_PER_LAUNCH} zips in a day, the most one launch may; run the action again from {site} for more.`);
    }
    const id = randomUUID();
    const status: DownloadStatus = { state: 'preparing', listed: null, resolved: 0, files: 0, skipped: 0, total: null, sent: 0, failedFile: null, message: null };
    await saveStatus(context, id, status);
    // Not tied to this request: the page polls the status. Every failure ends in the status, none escapes.
    const log = req.log.child({ download: id });
    const slide = slidingLifetime(deps.contexts, context);
    const running = prepareZip(context, kinds, deps, policy, webAgent, log, {
      progress: async () => {
        await saveStatus(context, id, status);
        await slide();
      },
      status,
      keep: (plan) => deps.store.set(planKey(context, id), planToJson(plan), STATUS_TTL_SECONDS, ownedBy(context)),
      record: () => recordZip(context, id, status),
    });
    preparing.set(id, running);
    void running.finally(() => preparing.delete(id));
    const zipPath = `${pagePath(deps.config.publicPath, context)}/${ZIP_PURPOSE}/${id}`;
    if (req.accepts(['html', 'json']) === 'json') {
      res.status(202).json({ download: { id, statusUrl: `${zipPath}/status`, fileUrl: `${zipPath}/file` } });
    } else {
      res.redirect(303, zipPath);
    }
  });

  router.get(`${base}/${ZIP_PURPOSE}/:downloadId`, async (req, res) => {
    const { context, id } = await downloadOf(req, deps);
    // The plain form's page reloads every 2 s: held, a zip ready sooner starts sooner.
    const status = await settledStatus(context, id);
    if (status === null) throw HttpError.notFound('No download by that id for this launch.');
    res.set('Cache-Control', 'no-store');
    res.render('actions/zip-progress', {
      title: 'Download as zip · ami-transfer',
      status,
      pageUrl: pagePath(deps.config.publicPath, context),
      fileUrl: `${pagePath(deps.config.publicPath, context)}/${ZIP_PURPOSE}/${id}/file`,
    });
  });

  router.get(`${base}/${ZIP_PURPOSE}/:downloadId/status`, async (req, res) => {
    const { context, id } = await downloadOf(req, deps);
    const status = req.query.wait === '1' ? await settledStatus(context, id) : await readStatus(context, id);
    if (status === null) throw HttpError.notFound('No download by that id for this launch.');
    res.set('Cache-Control', 'no-store').json(status);
  });

  router.get(`${base}/${ZIP_PURPOSE}/:downloadId/file`, async (req, res) => {
    const { context, id } = await downloadOf(req, deps);
    const status = await readStatus(context, id);
    if (status === null) throw HttpError.notFound('No download by that id for this launch.');
    if (status.state === 'preparing') throw new HttpError(409, 'zip_not_ready', 'The zip is still being prepared.', { hint: 'Wait for the page to say it is ready.' });
    // A browser whose download was cut asks for the same URL again (Chromium's auto-resume): after a source failed
    // for good that would rebuild the archive up to the same failure each time and overwrite the status the page
    // shows. So a download that failed on a source stays failed (the page offers a new one); one the browser's
    // connection cut may start over.
    if (status.state === 'failed' && status.failedBy === 'source') {
      throw new HttpError(410, 'gone', `This download failed at ${status.failedFile ?? 'its start'}: ${status.message ?? 'a file could not be fetched'}.`, {
        hint: 'Start a new download from the page.',
      });
    }
    const json = await deps.store.get(planKey(context, id));
    if (json === null) throw new HttpError(410, 'gone', 'This download is no longer kept.', { hint: 'Start a new download from the page.' });
    const plan = planFromJson(json);
    const total = plan.archive.totalSize;
    // The plan fixes every byte, so a cut download resumes (a browser's Range with If-Range) where it stopped.
    const etag = `"zip-${id}-${total}"`;
    const from = resumeFrom(req, etag, total);
    if (from === 'unsatisfiable') {
      res.status(416).set({ 'Content-Range': `bytes */${total}`, 'Cache-Control': 'no-store' }).end();
      return;
    }
    const crcKey = `zip-crc:${context.id}:${id}`;
    const knownCrcs = new Map(Object.entries(from > 0 ? await deps.store.hashGetAll(crcKey) : {}).map(([index, crc]) => [Number(index), Number(crc)]));
    const newCrcs: [number, number][] = [];
    const slide = slidingLifetime(deps.contexts, context);
    const save = async () => {
      await saveStatus(context, id, status);
      // Each entry's CRC-32, for a resume that need not read the entries before its first byte again.
      await Promise.all(newCrcs.splice(0).map(([index, crc]) => deps.store.hashSet(crcKey, String(index), String(crc), STATUS_TTL_SECONDS, ownedBy(context))));
      await slide();
    };
    Object.assign(status, { state: 'sending', sent: from, failedFile: null, message: null });
    delete status.failedBy;
    await save();

    res.status(from > 0 ? 206 : 200).set({
      'Content-Type': 'application/zip',
      'Content-Length': String(total - from),
      ...(from > 0 ? { 'Content-Range': `bytes ${from}-${total - 1}/${total}` } : {}),
      'Accept-Ranges': 'bytes',
      ETag: etag,
      'Content-Disposition': attachmentDisposition(archiveName(context, deps.tracker.typeLabel(context.entityType), new Date())),
      'Cache-Control': 'no-store',
    });
    req.log.info({ files: plan.includedFiles, skipped: plan.skippedFiles, bytes: total, ...(from > 0 ? { resumedAt: from } : {}) }, from > 0 ? 'zip download resumed' : 'zip download started');

    const login = context.user.login;
    const aborted = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) aborted.abort(new Error('the browser stopped the download'));
    });
    const prefetcher = prefetching(plan.entries, (entry) => openEntry(entry, deps.tracker, login, { web: webAgent, storage }, policy, aborted.signal), deps.prefetch ?? PREFETCH_SOURCES, {
      bytes: PREFETCH_BYTES,
      sizeOf: (entry) => entry.size,
    });
    let current: DownloadEntry | null = null;
    const fail = (error: unknown, by: 'source' | 'browser'): void => {
      status.state = 'failed';
      status.failedFile = (current as DownloadEntry | null)?.name ?? null;
      // Our own words (what storage answered) are shown; a raw network error would let a user probe ports on
      // allowed web-link hosts, so it is only logged (below).
      status.message = error instanceof DownloadError ? error.message : by === 'browser' ? 'the browser stopped the download' : 'the file could not be fetched';
      status.failedBy = by;
    };
    const ticker = setInterval(() => void save().catch(() => undefined), 1000);
    const archive = writeZipArchive(
      plan.archive,
      (planned) => {
        current = plan.entries[planned.index]!;
        return prefetcher.open(current);
      },
      { from, knownCrcs, onEntryCrc: (index, crc) => newCrcs.push([index, crc]) },
    );
    archive.on('data', (chunk: Buffer) => {
      status.sent += chunk.length;
    });
    try {
      await sendArchive(archive, res, async (error) => {
        // A source failed for good while the browser still listens: recorded before the response is cut, so the
        // browser's automatic retry of the cut download finds it (above).
        fail(error, 'source');
        await save().catch(() => undefined);
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
      await save().catch(() => undefined);
      await recordZip(context, id, status);
    }
  });

  return router;
}

interface Preparation {
  status: DownloadStatus;
  /** Saves the status (throttled by the caller's ticker). */
  progress(): Promise<void>;
  keep(plan: DownloadPlan): Promise<void>;
  /** Notes the outcome in the user's record. */
  record(): Promise<void>;
}

/**
 * Lists the chosen files as the user sees them, locates and sizes each (a file under the site's malware scan is
 * waited for, up to ZIP_SCAN_WAIT_SECONDS), plans the archive and keeps the plan. Never throws: the outcome is
 * in the status, which the page follows.
 */
async function prepareZip(
  context: ActionContext,
  kinds: FileKinds,
  deps: DownloadRouteDeps,
  policy: WebLinkPolicy,
  webAgent: Dispatcher,
  log: Logger,
  preparation: Preparation,
): Promise<void> {
  const { status } = preparation;
  const login = context.user.login;
  const ticker = setInterval(() => void preparation.progress().catch(() => undefined), 1000);
  const started = performance.now();
  try {
    const files = await siteCall(context, () => deps.tracker.listFiles(login, context.entityType, context.selectedIds, kinds));
    status.listed = files.length;
    // How long listing and locating took: a slow site shows here before users say so.
    const listedMs = Math.round(performance.now() - started);
    const resolve = createFileResolver({
      webLinks: policy,
      localMounts: deps.config.localStorageMounts,
      scanWaitMs: deps.config.zipScanWaitSeconds * 1000,
      probeTracked: (file) => probeTracked(deps.tracker, login, file, deps.outbound?.storage),
      probeWebSize: async (url) => contentLength({ url: await resolveWebLink(policy, webAgent, url.toString()) }, webAgent),
      onProbeFailure: (file, error) => log.info({ file: file.name, entity: `${file.entity.type} ${file.entity.id}`, err: error }, 'a file could not be sized: listed in the manifest only'),
    });
    const plan = await planDownload(files, resolve, {
      concurrency: deps.planConcurrency ?? 32,
      onProgress: (resolved) => {
        status.resolved = resolved;
      },
    });
    await preparation.keep(plan);
    Object.assign(status, { state: 'ready', files: plan.includedFiles, skipped: plan.skippedFiles, total: plan.archive.totalSize });
    log.info({ files: plan.includedFiles, skipped: plan.skippedFiles, bytes: plan.archive.totalSize, listedMs, preparedMs: Math.round(performance.now() - started) }, 'zip prepared');
  } catch (error) {
    // The page follows the status: it must hear that preparing failed, not wait on "preparing" for ever.
    Object.assign(status, { state: 'failed', failedBy: 'source', message: error instanceof Error ? error.message : String(error) });
    log.warn({ err: error }, 'zip could not be prepared');
  } finally {
    clearInterval(ticker);
    await preparation.progress().catch((error: unknown) => log.error({ err: error }, 'the zip status could not be saved'));
    await preparation.record();
  }
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

/**
 * Where a resumed download starts: `Range: bytes=N-` (or up to the end), honoured only when If-Range, if sent,
 * names this very archive. Any other range is answered with the whole zip, as HTTP allows.
 */
function resumeFrom(req: Request, etag: string, total: number): number | 'unsatisfiable' {
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.get('range') ?? '');
  const ifRange = req.get('if-range');
  if (range === null || (ifRange !== undefined && ifRange !== etag)) return 0;
  const start = Number(range[1]);
  const end = range[2] === '' ? total - 1 : Number(range[2]);
  if (!Number.isSafeInteger(start) || end < total - 1) return 0;
  return start >= total ? 'unsatisfiable' : start;
}

/**
 * A zip sends no request of its own while it is prepared or streams: each call slides the launch's lifetime with
 * it instead (ContextStore.keepAlive writes at most every 30 s).
 */
function slidingLifetime(contexts: ContextStore, context: ActionContext): () => Promise<void> {
  let live = context;
  return async () => {
    live = await contexts.keepAlive(live);
  };
}

async function downloadContext(req: Request, deps: DownloadRouteDeps): Promise<ActionContext> {
  const action = actionOf(req);
  if (action.page !== 'download') throw HttpError.notFound('This action has no download.');
  return contextOf(req, deps.contexts, action);
}

async function downloadOf(req: Request, deps: DownloadRouteDeps): Promise<{ context: ActionContext; id: string }> {
  const context = await downloadContext(req, deps);
  const id = String(req.params['downloadId']);
  if (!downloadIdPattern.test(id)) throw HttpError.notFound('No download by that id for this launch.');
  return { context, id };
}

/** `kinds=attachments,fields,thumbnails,notes` (or a list of them); all when absent. */
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

function openEntry(entry: DownloadEntry, tracker: Tracker, login: string, via: { web: Dispatcher; storage: Dispatcher | undefined }, policy: WebLinkPolicy, signal: AbortSignal): Readable {
  const { origin } = entry;
  switch (origin.kind) {
    case 'manifest':
      return Readable.from([origin.bytes]);
    case 'local':
      return openLocalFile(origin.file);
    case 'tracker': {
      // The location found while preparing serves once, while fresh; after that (or on its expiry) a new one.
      let kept = origin.location !== undefined && Date.now() - origin.location.at < LOCATION_REUSE_MS ? origin.location : null;
      const locate = async (): Promise<{ url: string }> => {
        const found = kept;
        kept = null;
        return found ?? tracker.locateFile(login, entry.file!);
      };
      return openDownload({ locate, size: entry.size, signal, ...(via.storage ? { dispatcher: via.storage } : {}) });
    }
    case 'web':
      return openDownload({ locate: async () => ({ url: await resolveWebLink(policy, via.web, origin.url, 5, signal) }), size: entry.size, dispatcher: via.web, signal });
  }
}

/** Where an uploaded file is now (from the site) and its size and first bytes (from storage). */
async function probeTracked(tracker: Tracker, login: string, file: FileRef, storage: Dispatcher | undefined): Promise<TrackedProbe> {
  const location = await tracker.locateFile(login, file);
  return { location: { url: location.url, at: Date.now() }, ...(await probeStorage(location, storage)) };
}

/**
 * The size of what a signed storage URL serves, and its first bytes (to tell an image by), from a 16-byte Range
 * GET: a URL signed for GET refuses a HEAD (S3 signs the method; the sandbox too). Size null when storage does
 * not say.
 */
async function probeStorage(location: { url: string; headers?: Record<string, string> }, dispatcher: Dispatcher | undefined): Promise<{ size: number | null; head: Uint8Array }> {
  const response = await request(location.url, { method: 'GET', headers: { ...location.headers, range: `bytes=0-${IMAGE_SIGNATURE_BYTES - 1}` }, ...(dispatcher ? { dispatcher } : {}) });
  if (response.statusCode === 409 || response.statusCode === 410 || response.statusCode >= 400) {
    await response.body.dump();
    throw new Error(`storage answered ${response.statusCode}`);
  }
  // A 206 holds the 16 bytes asked for. A server ignoring Range sends it all: that body is let go (dump reads at most
  // 128 KiB), and the head stays unknown. (Breaking out of an async iteration would cost an AbortError per file.)
  // The size is in the headers: a body cut short only leaves the head unknown.
  let head = new Uint8Array(0);
  if (response.statusCode === 206) {
    head = await response.body.arrayBuffer().then((bytes) => new Uint8Array(bytes).subarray(0, IMAGE_SIGNATURE_BYTES), () => head);
  } else {
    await response.body.dump().catch(() => undefined);
  }
  const range = /^bytes (?:\d+-\d+|\*)\/(\d+)$/.exec(String(response.headers['content-range'] ?? ''));
  if ((response.statusCode === 206 || response.statusCode === 416) && range) return { size: Number(range[1]), head };
  const length = Number(response.headers['content-length']);
  return { size: response.statusCode === 200 && Number.isSafeInteger(length) ? length : null, head };
}

/** The size a location answers a HEAD with (null when it does not say). */
async function contentLength(location: { url: string; headers?: Record<string, string> }, dispatcher?: Dispatcher): Promise<number | null> {
  const response = await request(location.url, { method: 'HEAD', headers: location.headers ?? {}, ...(dispatcher ? { dispatcher } : {}) });
  await response.body.dump();
  const length = Number(response.headers['content-length']);
  return response.statusCode === 200 && Number.isSafeInteger(length) ? length : null;
}


/** `Demo_Versions_2026-11-23.zip`: project, what was selected (as the site's users name it), the day. */
function archiveName(context: ActionContext, typeLabel: string, date: Date): string {
  const plural = typeLabel.endsWith('s') ? typeLabel : `${typeLabel}s`;
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

