import { randomUUID } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import Busboy from 'busboy';
import express, { type Request, type RequestHandler, type Router } from 'express';
import type { Dispatcher } from 'undici';
import type { Config } from '../config.ts';
import type { ByteBudget } from '../net/byte-budget.ts';
import type { ContextStore, ActionContext } from '../ami/context-store.ts';
import { actionOf, contextOf, pagePath } from '../ami/launch-routes.ts';
import { matchFilesByName } from '../shared/match-files.ts';
import type { EntityId, Tracker, UploadSlot, UploadTarget } from '../trackers/tracker.ts';
import { entityIdsOf } from './entity-ids.ts';
import { uploadHeld, type TargetOutcome } from '../transfer/held-upload.ts';
import { imageCheck } from '../transfer/image-check.ts';
import { MiB } from '../transfer/part-plan.ts';
import { cleanUploadName } from '../transfer/upload-name.ts';
import { UploadError, type UploadRecord, type UploadResult, type UploadSessions } from '../transfer/upload-session.ts';
import { HttpError } from '../web/errors.ts';
import { httpErrorFromSiteChange } from '../web/site-errors.ts';
import type { LaunchRecords, NewRecordEntry } from './launch-record.ts';
import { slotOf, uploadLimitFor } from './upload-limits.ts';

// The upload API the action pages drive (docs/decisions/0004-upload-protocol.md), under the launch's address:
//
//   POST   …/uploads                     announce a file and its targets → the upload (part size and count)
//   GET    …/uploads                     this launch's uploads, for a reloaded page to resume
//   GET    …/uploads/:id                 one upload: parts stored, status, results
//   PUT    …/uploads/:id/parts/:n        part n's bytes, streamed through to every target
//   POST   …/uploads/:id/complete        complete at the site → per-target results
//   DELETE …/uploads/:id                 cancel: abort at the site
//   POST   …/uploads/queued              files the page queued (or unqueued) before announcing them, for the record
//   POST   …/form-upload                 the no-JavaScript form: multipart/form-data, streamed by busboy
//
// `…` is /ami/<action>/<context id>. CSRF tokens are checked before any of these (launch routes, purpose
// "uploads" or "form-upload"); the context decides what may be uploaded where: the selection (upload-files,
// attach-files, set-thumbnail), or the Versions the launch created itself (submit-for-review).

export interface UploadRouteDeps {
  config: Pick<Config, 'publicPath'>;
  tracker: Tracker;
  contexts: ContextStore;
  uploads: UploadSessions;
  /** Parts the no-JavaScript form holds and sends at once. */
  formParallelParts?: number;
  /** The process's budget for held bytes (the form's parts), shared with launch forms. */
  heldBytes?: ByteBudget;
  /** How the form's parts reach storage (through the outbound proxy when one is set). */
  storageDispatcher?: Dispatcher;
  /** Largest file accepted (MAX_UPLOAD_BYTES), or null. */
  maxUploadBytes: number | null;
  /** Largest image set-thumbnail accepts (THUMBNAIL_MAX_BYTES). */
  thumbnailMaxBytes: number;
  /** submit-for-review: the Versions each launch created, the only targets its uploads may have. */
  createdVersions?: CreatedVersions;
  /** The user's record of what each action did (src/actions/launch-record.ts). */
  records?: LaunchRecords;
}

/** The Versions a submit-for-review launch created: what its uploads may target, kept or removed once each ends. */
export interface CreatedVersions {
  /** Ids of the launch's new Versions still waiting for their movie. */
  awaitingMovie(contextId: string): Promise<ReadonlySet<EntityId>>;
  /** After an upload completed or was cancelled: keeps the Versions whose movie landed, removes the others. */
  settle(context: ActionContext, record: UploadRecord): Promise<void>;
}

const UPLOAD_ACTIONS = new Set(['upload-files', 'attach-files', 'set-thumbnail', 'submit-for-review']);

/** What an action's uploads write, how big they may be, and what their bytes must be. */
interface UploadRules {
  /** What is written: a Version's review media, the thumbnail, or a new attachment. */
  slot: UploadSlot;
  maxBytes: number | null;
  expect: 'image' | null;
}

function rulesFor(context: ActionContext, deps: UploadRouteDeps): UploadRules {
  const maxBytes = uploadLimitFor(context.action, { maxUploadBytes: deps.maxUploadBytes, thumbnailMaxBytes: deps.thumbnailMaxBytes });
  const slot = slotOf(context.action);
  // A thumbnail: the site makes it from an image, or shows none when it cannot.
  return { slot, maxBytes, expect: slot === 'thumbnail' ? 'image' : null };
}

/**
 * The plain form's parts. The form does not say a file's size, and what a client declares is never trusted:
 * parts are always this size, so memory is `formParallelParts` of them per upload whatever is sent, and a file
 * can be up to 10,000 of them (156 GiB) through the form.
 */
const FORM_PART_SIZE = 16 * MiB;

/** How long a refused part's remaining bytes are read before the connection is given up. */
const PART_DRAIN_TIMEOUT_MS = 30_000;

export function uploadRoutes(deps: UploadRouteDeps): Router {
  const router = express.Router();
  const base = '/ami/:action/:contextId';
  const json = express.json({ limit: '256kb' });

  router.post(`${base}/uploads`, json, async (req, res) => {
    const { context } = await uploadContext(req, deps);
    const request = announcedFile(req.body);
    const rules = rulesFor(context, deps);
    let record: UploadRecord;
    try {
      const targets = await targetsFor(context, request.targetIds, rules, deps);
      record = await sessionCall(context, () =>
        deps.uploads.begin(context.id, context.user.login, {
          name: request.name,
          size: request.size,
          targets,
          ...(request.displayName ? { displayName: request.displayName } : {}),
          ...(request.tagIds ? { tagIds: request.tagIds } : {}),
          ...(rules.expect ? { expect: rules.expect } : {}),
          ...(rules.maxBytes === null ? {} : { maxBytes: rules.maxBytes }),
        }),
        `begin the upload of “${request.name}”`,
      );
    } catch (error) {
      // Refused before it began: the file the page queued is recorded as failed, with the refusal's words.
      if (request.recordKey) {
        const note = error instanceof HttpError ? error.message : 'the upload could not begin';
        await deps.records?.update(context, request.recordKey, (entry) => ({ ...entry, state: 'failed', note }));
      }
      throw error;
    }
    req.log.info({ upload: record.id, size: record.size, parts: record.partCount, targets: record.uploads.length }, 'upload begun');
    if (request.recordKey) await deps.records?.drop(context, request.recordKey);
    await recordUpload(deps, context, record);
    res.status(201).json({ upload: await view(deps, record) });
  });

  router.get(`${base}/uploads`, async (req, res) => {
    const { context } = await uploadContext(req, deps);
    const records = await deps.uploads.list(context.id);
    res.set('Cache-Control', 'no-store').json({ uploads: await Promise.all(records.map((record) => view(deps, record))) });
  });

  router.get(`${base}/uploads/:uploadId`, async (req, res) => {
    const { record } = await uploadOf(req, deps);
    res.set('Cache-Control', 'no-store').json({ upload: await view(deps, record) });
  });

  router.put(`${base}/uploads/:uploadId/parts/:n`, async (req, res) => {
    const { context, record } = await uploadOf(req, deps);
    // Bytes are moving: the launch's lifetime slides, so an upload longer than it is not cut by it.
    await deps.contexts.keepAlive(context);
    const length = Number(req.get('content-length'));
    if (req.get('content-length') === undefined || !Number.isSafeInteger(length)) {
      throw new HttpError(411, 'length_required', 'A part must be sent with its Content-Length.');
    }
    const aborted = new AbortController();
    req.once('close', () => {
      if (!req.complete) aborted.abort(new Error('the page closed the connection'));
    });
    // Digits only: Number() would also take "1e0", "0x1" or " 1".
    const raw = String(req.params['n']);
    const n = /^[1-9][0-9]{0,4}$/.test(raw) ? Number(raw) : Number.NaN;
    try {
      const { sent } = await sessionCall(context, () => deps.uploads.receivePart(record, n, req, length, req.get('content-md5'), aborted.signal));
      res.json({ n, sent });
    } catch (error) {
      // Read what is left of the part before answering, so the page gets the answer (and sends the part again)
      // instead of a connection reset while it is still sending.
      await drain(req, PART_DRAIN_TIMEOUT_MS);
      throw error;
    }
  });

  router.post(`${base}/uploads/:uploadId/complete`, async (req, res) => {
    const { context, record } = await uploadOf(req, deps);
    await deps.contexts.keepAlive(context);
    const done = await sessionCall(context, () => deps.uploads.complete(record));
    const results = done.results ?? [];
    req.log.info({ upload: done.id, ok: results.filter((r) => r.ok).length, failed: results.filter((r) => !r.ok).length }, 'upload completed');
    await settleCreated(req, deps, context, done);
    await recordUpload(deps, context, done);
    res.json({ upload: await view(deps, done) });
  });

  router.delete(`${base}/uploads/:uploadId`, async (req, res) => {
    const { context, record } = await uploadOf(req, deps);
    const aborted = await sessionCall(context, () => deps.uploads.abort(record));
    req.log.info({ upload: aborted.id }, 'upload cancelled');
    await settleCreated(req, deps, context, aborted);
    await recordUpload(deps, context, aborted);
    res.json({ upload: await view(deps, aborted) });
  });

  router.post(`${base}/uploads/queued`, json, async (req, res) => {
    const { context } = await uploadContext(req, deps);
    const { queued, cancelled } = queuedFiles(req.body);
    if (context.action !== 'submit-for-review') {
      for (const file of queued) {
        await targetsFor(context, file.targetIds, rulesFor(context, deps), deps);
        await deps.records?.note(context, { key: file.key, kind: 'file', state: 'queued', name: file.name, size: file.size, targets: file.targetIds.map((id) => ({ type: context.entityType, id })) });
      }
      for (const key of cancelled) await deps.records?.update(context, key, (entry) => (entry.state === 'queued' ? { ...entry, state: 'stopped' } : entry));
    }
    res.status(204).end();
  });

  router.post(`${base}/form-upload`, formUpload(deps));
  return router;
}

/** What the record says of an upload; submit-for-review's are recorded as their Versions (review-submissions.ts). */
async function recordUpload(deps: UploadRouteDeps, context: ActionContext, record: UploadRecord): Promise<void> {
  if (!deps.records || context.action === 'submit-for-review') return;
  await deps.records.note(context, recordOfUpload(record.id, record.name, record.size, record.status === 'uploading' ? null : record.status === 'aborted' ? 'stopped' : (record.results ?? [])));
}

/** A file's record entry: still sending (null), stopped, or its outcome per target. */
function recordOfUpload(key: string, name: string, size: number | null, outcome: null | 'stopped' | readonly (UploadResult | TargetOutcome)[]): NewRecordEntry {
  if (outcome === null || outcome === 'stopped') return { key, kind: 'file', state: outcome ?? 'sending', name, size, targets: [] };
  const targets = outcome.map((result) => {
    const view = resultView(result);
    return view.ok ? { type: view.type, id: view.id, ok: true } : { type: view.type, id: view.id, ok: false, message: view.message };
  });
  const ok = targets.filter((target) => target.ok).length;
  return { key, kind: 'file', state: ok === targets.length && ok > 0 ? 'done' : ok > 0 ? 'partly' : 'failed', name, size, targets };
}

const RECORD_KEY = /^[A-Za-z0-9_-]{1,40}$/;
const MAX_QUEUED = 100;

function queuedFiles(body: unknown): { queued: { key: string; name: string; size: number; targetIds: EntityId[] }[]; cancelled: string[] } {
  const value = (body ?? {}) as Record<string, unknown>;
  const list = (field: string): unknown[] => {
    const items = value[field] ?? [];
    if (!Array.isArray(items) || items.length > MAX_QUEUED) throw HttpError.badRequest(`${field} must be a list of at most ${MAX_QUEUED} entries.`, { field });
    return items;
  };
  const queued = list('queued').map((item) => {
    const entry = (item ?? {}) as Record<string, unknown>;
    if (typeof entry.key !== 'string' || !RECORD_KEY.test(entry.key)) throw HttpError.badRequest('Each queued file needs a key of letters, digits, - or _ (at most 40).', { field: 'queued' });
    const file = announcedFile({ name: entry.name, size: entry.size, targets: entry.targets });
    let name: string;
    try {
      name = cleanUploadName(file.name);
    } catch (error) {
      throw HttpError.badRequest(`A queued file's name cannot be used: ${(error as Error).message}.`, { field: 'queued' });
    }
    return { key: entry.key, name, size: file.size, targetIds: file.targetIds };
  });
  const cancelled = list('cancelled').map((key) => {
    if (typeof key !== 'string' || !RECORD_KEY.test(key)) throw HttpError.badRequest('cancelled must list the keys of queued files.', { field: 'cancelled' });
    return key;
  });
  return { queued, cancelled };
}

async function uploadContext(req: Request, deps: UploadRouteDeps): Promise<{ context: ActionContext }> {
  const action = actionOf(req);
  if (!UPLOAD_ACTIONS.has(action.action)) throw HttpError.notFound('This action takes no uploads.');
  return { context: await contextOf(req, deps.contexts, action) };
}

async function uploadOf(req: Request, deps: UploadRouteDeps): Promise<{ context: ActionContext; record: UploadRecord }> {
  const { context } = await uploadContext(req, deps);
  const record = await deps.uploads.get(context.id, String(req.params['uploadId']));
  if (!record) throw HttpError.notFound('There is no such upload for this launch (it may have expired).');
  return { context, record };
}

interface AnnouncedFile {
  name: string;
  size: number;
  targetIds: EntityId[];
  displayName?: string;
  tagIds?: EntityId[];
  /** The key under which the page recorded this file as queued (replaced by the upload's own entry). */
  recordKey?: string;
}

/**
 * Bounds of what one announced file may carry: everything here is kept in the store for as long as the upload's
 * state, so each is bounded before it is stored (a 256 kB display name once filled the heap).
 */
export const UPLOAD_LIMITS = {
  /** Characters of a display name (ShotGrid's own text fields take far more; a name is a line). */
  displayNameLength: 255,
  tags: 50,
  /** Entities one file goes to at once (each is one storage PUT per part). */
  targets: 200,
} as const;

function announcedFile(body: unknown): AnnouncedFile {
  const value = (body ?? {}) as Record<string, unknown>;
  const fail = (field: string, message: string): never => {
    throw HttpError.badRequest(message, { field });
  };
  const name = typeof value.name === 'string' ? value.name : fail('name', 'name must be the file name.');
  const size = typeof value.size === 'number' ? value.size : fail('size', 'size must be the file size in bytes.');
  const targetIds = entityIdsOf(value.targets, UPLOAD_LIMITS.targets) ?? fail('targets', `targets must be a list of at most ${UPLOAD_LIMITS.targets} of the selected entities’ ids.`);
  const displayName =
    value.displayName === undefined
      ? undefined
      : typeof value.displayName === 'string' && [...value.displayName].length <= UPLOAD_LIMITS.displayNameLength
        ? value.displayName
        : fail('displayName', `displayName must be text of at most ${UPLOAD_LIMITS.displayNameLength} characters.`);
  const tagIds = value.tagIds === undefined ? undefined : (entityIdsOf(value.tagIds, UPLOAD_LIMITS.tags) ?? fail('tagIds', `tagIds must be a list of at most ${UPLOAD_LIMITS.tags} Tag ids.`));
  const recordKey = value.recordKey === undefined ? undefined : typeof value.recordKey === 'string' && RECORD_KEY.test(value.recordKey) ? value.recordKey : fail('recordKey', 'recordKey must be the key the file was queued under.');
  return { name, size, targetIds, ...(displayName === undefined ? {} : { displayName }), ...(tagIds === undefined ? {} : { tagIds }), ...(recordKey === undefined ? {} : { recordKey }) };
}

/**
 * Targets must be in the launch's selection, or for submit-for-review among the Versions it created and that
 * still wait for their movie: a page cannot send files anywhere else.
 */
async function targetsFor(context: ActionContext, ids: readonly EntityId[], rules: UploadRules, deps: UploadRouteDeps): Promise<UploadTarget[]> {
  if (context.action === 'submit-for-review') {
    const created = (await deps.createdVersions?.awaitingMovie(context.id)) ?? new Set<EntityId>();
    const outside = ids.filter((id) => !created.has(id));
    if (outside.length > 0) {
      throw new HttpError(403, 'target_not_created_here', `${outside.length === 1 ? 'One target is' : `${outside.length} targets are`} not a new Version of this launch waiting for its movie: nothing was uploaded.`, { field: 'targets' });
    }
    return [...new Set(ids)].map((id) => ({ type: deps.tracker.versionType, id, slot: rules.slot }));
  }
  const selected = new Set(context.selectedIds);
  const outside = ids.filter((id) => !selected.has(id));
  if (outside.length > 0) {
    throw new HttpError(403, 'target_outside_selection', `${outside.length === 1 ? 'One target is' : `${outside.length} targets are`} not part of this launch's selection: nothing was uploaded.`, { field: 'targets' });
  }
  return [...new Set(ids)].map((id) => ({ type: context.entityType, id, slot: rules.slot }));
}

/**
 * submit-for-review: once an upload is over (completed, cancelled, refused), its new Versions are kept or removed.
 * A failure here is logged, not thrown: the upload's own answer stands, and the page removes what is left.
 */
async function settleCreated(req: Request, deps: UploadRouteDeps, context: ActionContext, record: UploadRecord): Promise<void> {
  if (context.action !== 'submit-for-review' || !deps.createdVersions || record.status === 'uploading') return;
  try {
    await deps.createdVersions.settle(context, record);
  } catch (error) {
    req.log.warn({ upload: record.id, err: error }, 'new Versions could not be settled after their upload');
  }
}

/**
 * Runs a session call, turning its refusals and the site's into HTTP errors the page can show. A site that refuses
 * the change (the Version deleted meanwhile, no permission) is a 4xx the page stops on, not an outage it retries.
 */
async function sessionCall<T>(context: ActionContext, call: () => Promise<T>, what = 'take this upload'): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof UploadError) throw new HttpError(error.status, error.code, error.message);
    if (error instanceof HttpError) throw error;
    throw httpErrorFromSiteChange(error, context.user.login, what);
  }
}

interface UploadView {
  id: string;
  name: string;
  size: number;
  partSize: number;
  partCount: number;
  partsDone: number[];
  status: UploadRecord['status'];
  targets: { type: string; id: EntityId }[];
  results: ResultView[] | null;
}

type ResultView =
  | { type: string; id: EntityId; ok: true; name: string; attachmentId: EntityId | null; siteUrl: string }
  | { type: string; id: EntityId; ok: false; message: string };

async function view(deps: UploadRouteDeps, record: UploadRecord): Promise<UploadView> {
  return {
    id: record.id,
    name: record.name,
    size: record.size,
    partSize: record.partSize,
    partCount: record.partCount,
    partsDone: record.status === 'uploading' ? await deps.uploads.partsDone(record) : [],
    status: record.status,
    targets: record.uploads.map((upload) => ({ type: upload.target.type, id: upload.target.id })),
    results: record.results?.map(resultView) ?? null,
  };
}

function resultView(result: UploadResult | TargetOutcome): ResultView {
  const { type, id } = result.target;
  if (result.ok) return { type, id, ok: true, name: result.file.name, attachmentId: result.file.attachmentId, siteUrl: result.file.siteUrl };
  return { type, id, ok: false, message: 'message' in result ? result.message : result.error.message };
}

// ---- the no-JavaScript form ----

/**
 * multipart/form-data with fields `mode` ("match": each file to the entity of its name; "all": every file to
 * every selected entity) and `display_name` before the files. Each file streams through busboy into a held-part
 * upload (a bounded window of parts in memory, retried by the service); the results render as a page.
 */
function formUpload(deps: UploadRouteDeps): RequestHandler {
  return async (req, res) => {
    const { context } = await uploadContext(req, deps);
    if (context.action === 'submit-for-review') {
      throw HttpError.badRequest('Submitting for review needs JavaScript: the page creates each Version before its movie goes up.', {
        hint: 'Allow JavaScript for this page and reload it.',
      });
    }
    if (!req.is('multipart/form-data')) throw new HttpError(415, 'unsupported_media_type', 'The upload form must be sent as multipart/form-data.');
    const selection = await sessionCall(context, () => deps.tracker.lookupSelection(context.user.login, context.entityType, context.selectedIds));
    const rules = rulesFor(context, deps);

    const fields: Record<string, string> = {};
    const files: { name: string; outcomes: TargetOutcome[]; refused?: string }[] = [];
    const work: Promise<void>[] = [];
    let busboy: Busboy.Busboy;
    try {
      // defParamCharset: browsers send file names as raw UTF-8, which busboy reads as latin1 unless told.
      busboy = Busboy({ headers: req.headers, defParamCharset: 'utf8', limits: { fields: 20, fieldSize: 4096, files: 100, parts: 130 } });
    } catch (error) {
      // busboy refuses a multipart Content-Type it cannot read (no boundary): the client's mistake, not ours.
      throw HttpError.badRequest(`The form's Content-Type cannot be read: ${error instanceof Error ? error.message : String(error)}.`);
    }
    await new Promise<void>((resolve, reject) => {
      busboy.on('field', (name, value) => {
        fields[name] = value;
      });
      busboy.on('file', (_name, stream, info) => {
        // A body that breaks off fails the file's stream too. Its reader (the held upload) meets the error there;
        // a file refused and only drained has no reader, and the error must not go unhandled (it would end the
        // process). The form's own error answers the request.
        stream.on('error', () => undefined);
        const entry: (typeof files)[number] = { name: info.filename ?? '', outcomes: [] };
        files.push(entry);
        let filename: string;
        try {
          filename = cleanUploadName(info.filename ?? '');
        } catch (error) {
          entry.refused = info.filename ? (error as Error).message : 'A file input was left empty.';
          stream.resume();
          return;
        }
        entry.name = filename;
        // attach-files sends every file to every selected entity; upload-files matches by name unless told "all".
        const mode = context.action === 'attach-files' || fields['mode'] === 'all' ? 'all' : 'match';
        const targets = formTargets(mode, filename, selection.visible, context.entityType, rules.slot);
        if (targets.length === 0) {
          entry.refused = 'No selected entity is named like this file.';
          stream.resume();
          return;
        }
        // Busboy reads the next file only once this one's stream has ended: the held window bounds memory.
        const job = uploadHeld(
          {
            tracker: deps.tracker,
            login: context.user.login,
            targets,
            filename,
            plan: { size: null, partSize: FORM_PART_SIZE },
            ...(fields['display_name']?.trim() ? { displayName: fields['display_name'].trim() } : {}),
          },
          checked(stream, rules, filename),
          { parallelParts: deps.formParallelParts ?? 4, ...(deps.heldBytes ? { budget: deps.heldBytes } : {}), ...(deps.storageDispatcher ? { dispatcher: deps.storageDispatcher } : {}) },
        ).then((outcomes) => {
          entry.outcomes = outcomes;
          // Whatever the upload did not read (it stopped when every target failed) is drained.
          stream.resume();
        });
        work.push(job);
      });
      busboy.on('close', () => resolve());
      // A body that breaks off or is not multipart as announced: the client's mistake, answered 400.
      busboy.on('error', (error: Error) => reject(HttpError.badRequest(`The form could not be read: ${error.message}.`)));
      req.pipe(busboy);
    });
    await Promise.all(work);
    const names = new Map(selection.visible.map((entity) => [entity.id, entity.name]));
    if (files.length === 0) throw HttpError.badRequest('Choose at least one file to upload.', { field: 'files' });
    for (const file of files) {
      if (file.refused || file.outcomes.length === 0) continue;
      await deps.records?.note(context, recordOfUpload(`form-${randomUUID()}`, file.name, null, file.outcomes));
    }
    res.status(files.every((file) => !file.refused && file.outcomes.every((o) => o.ok)) ? 200 : 207).render('actions/upload-results', {
      title: 'Upload results · ami-transfer',
      pageUrl: pagePath(deps.config.publicPath, context),
      files: files.map((file) => ({
        name: file.name,
        refused: file.refused ?? null,
        results: file.outcomes.map((outcome) => ({ ...resultView(outcome), targetName: names.get(outcome.target.id) ?? `${outcome.target.type} ${outcome.target.id}` })),
      })),
    });
  };
}

function formTargets(
  mode: 'match' | 'all',
  fileName: string,
  visible: readonly { type: string; id: EntityId; name: string }[],
  entityType: string,
  slot: UploadSlot,
): UploadTarget[] {
  const chosen = mode === 'all' ? visible : (matchFilesByName([fileName], visible).matches[0]?.targets ?? []);
  return chosen.map((entity) => ({ type: entityType, id: entity.id, slot }));
}

/** The form's file stream with the action's checks in front: its size limit, and for thumbnails its content. */
function checked(stream: Readable, rules: UploadRules, filename: string): Readable {
  const sized = rules.maxBytes === null ? stream : limited(stream, rules.maxBytes, filename);
  if (rules.expect !== 'image') return sized;
  const check = imageCheck(filename);
  sized.once('error', (error) => check.destroy(error));
  // It may fail before the held upload starts reading (that waits for the site to begin the upload): the error
  // stays on the stream, and the reader meets it there, so it must not count as unhandled meanwhile.
  check.on('error', () => undefined);
  return sized.pipe(check);
}

/** Fails the stream once it passes `max` bytes: the held upload then aborts at the site and nothing is created. */
function limited(source: Readable, max: number, name: string): Transform {
  let seen = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > max) done(new UploadError(413, 'file_too_large', `"${name}" is larger than ${max} bytes, the most a file may be.`));
      else done(null, chunk);
    },
  });
  source.once('error', (error) => limiter.destroy(error));
  return source.pipe(limiter);
}

/** Reads and discards the rest of a request body (up to a time limit); resolves either way. */
function drain(req: Request, timeoutMs: number): Promise<void> {
  if (req.complete || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      req.destroy();
      resolve();
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    req.once('end', done);
    req.once('close', done);
    req.unpipe();
    req.resume();
  });
}
