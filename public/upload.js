// The upload page, enhanced: files are chosen or dropped, the mapping is shown and confirmed, then each file goes
// up in parts with progress, pause, cancel, retry and resume. Without this script the page's plain form posts the
// files instead. Everything shown is built with textContent (never HTML from data); status goes to a live region.

import { acceptFiles, el, formatDuration, plural } from './dom.js';
import { IMAGE_FORMATS_TEXT, IMAGE_SIGNATURE_BYTES, imageFormatOf } from './js/image-signature.js';
import { fileIsText } from './js/text-signature.js';
import { Md5Pool } from './md5-pool.js';
import { watchThumbnails } from './thumbnail-watch.js';
import { formatBytes, planUploads } from './upload-plan.js';
import { UploadEngine, UploadJob, callUploadApi, outcomeText, rememberedLastModified } from './upload-transfer.js';

/** "ShotGrid" or "ftrack", as the page names the site. */
const siteName = document.documentElement.dataset.siteName || 'the site';

const form = document.getElementById('upload-form');
if (form instanceof HTMLFormElement) enhance(form);

function enhance(form) {
  const config = {
    action: form.dataset.action,
    api: form.dataset.uploadApi,
    token: form.dataset.uploadToken,
    maxBytes: form.dataset.maxBytes ? Number(form.dataset.maxBytes) : null,
    parallelParts: Number(form.dataset.parallelParts) || 4,
    entityType: form.dataset.entityType,
    entityTypePlural: form.dataset.entityTypePlural,
    thumbnailsApi: form.dataset.thumbnailsApi || null,
  };
  const toVersions = config.action === 'upload-files';
  const toThumbnails = config.action === 'set-thumbnail';
  // One file per target, matched by name: a Version's movie, an entity's thumbnail.
  const byName = toVersions || toThumbnails;
  const targets = Array.from(document.querySelectorAll('#upload-targets .entity'), (item) => ({
    id: item.dataset.id,
    name: item.dataset.name,
    siteUrl: item.dataset.siteUrl,
    // What an upload would replace: the Version's movie now, the entity's thumbnail.
    fileName: item.dataset.fileName ?? null,
    hasThumbnail: item.hasAttribute('data-has-thumbnail'),
  }));
  const targetName = new Map(targets.map((target) => [target.id, target.name]));

  const input = form.querySelector('#upload-file-input');
  const dropZone = form.querySelector('#drop-zone');
  const displayName = form.querySelector('#upload-display-name');
  const panels = {
    unfinished: document.getElementById('upload-unfinished'),
    plan: document.getElementById('upload-plan'),
    progress: document.getElementById('upload-progress'),
  };
  const status = document.getElementById('upload-status');
  const announce = (text) => {
    status.textContent = text;
  };

  /** What the user has chosen and not yet confirmed, and what the service still holds from earlier visits. */
  const state = { chosen: [], excluded: new Set(), unfinished: [], plan: null, accepted: null };
  /** attach-files: each file's display name as typed (none: the site shows the file name). */
  const displayNames = new WeakMap();
  const perFileNames = config.action === 'attach-files';
  // The plain form's one name for every file gives way to one per file.
  if (perFileNames && displayName) displayName.closest('.field').hidden = true;

  // Hash on up to a few cores; the page's own thread stays free for progress.
  const hashers = Math.max(1, Math.min(config.parallelParts, (navigator.hardwareConcurrency || 2) - 1, 4));
  const jobViews = new Map();
  const engine = new UploadEngine({
    api: config.api,
    token: config.token,
    parallelParts: config.parallelParts,
    hasher: new Md5Pool(hashers),
    onChange: (job) => scheduleRender(job),
    onStatus: announce,
  });

  form.classList.add('js-enhanced');
  form.addEventListener('submit', (event) => {
    // The script sends the files itself; Enter in a field must not post the plain form.
    event.preventDefault();
    panels.plan.querySelector('.plan-confirm')?.focus();
  });

  // ---- choosing files ----

  acceptFiles(input, dropZone, (files) => void addFiles(files));

  for (const radio of form.querySelectorAll('input[name="mode"]')) radio.addEventListener('change', renderPlan);

  // set-thumbnail: each file's image format, read from its first bytes (null: no image, whatever its name).
  const imageFormats = new WeakMap();

  async function addFiles(files) {
    const same = (a, b) => a.name === b.name && a.size === b.size && a.lastModified === b.lastModified;
    const added = [];
    for (const file of files) if (![...state.chosen, ...added].some((chosen) => same(chosen, file))) added.push(file);
    if (toThumbnails) await Promise.all(added.map(async (file) => imageFormats.set(file, await sniffImage(file))));
    if (toVersions) await Promise.all(added.map(async (file) => textFiles.set(file, await fileIsText(file))));
    state.chosen.push(...added);
    renderPlan();
  }

  async function sniffImage(file) {
    try {
      return imageFormatOf(new Uint8Array(await file.slice(0, IMAGE_SIGNATURE_BYTES).arrayBuffer()));
    } catch {
      // Unreadable now (moved, deleted): the upload would fail anyway; refuse it here.
      return null;
    }
  }

  // upload-files: whether a "movie" is plain text (notes.txt chosen by mistake): a warning, never a refusal.
  const textFiles = new WeakMap();


  function contentWarning(file) {
    return textFiles.get(file) ? `This file is plain text, not a movie: ${siteName} will keep it but cannot play it.` : null;
  }

  function contentProblem(file) {
    if (!toThumbnails || file.size === 0 || imageFormats.get(file) !== null) return null;
    return `This is not an image: its content is not ${IMAGE_FORMATS_TEXT}, whatever its name says.`;
  }

  // ---- the mapping, shown before anything starts ----

  function currentPlan() {
    const mode = form.querySelector('input[name="mode"]:checked')?.value === 'all' ? 'all' : 'match';
    return planUploads({
      files: state.chosen,
      targets,
      action: config.action,
      mode,
      excluded: state.excluded,
      maxBytes: config.maxBytes,
      unfinished: state.unfinished,
      rememberedLastModified,
      contentProblem,
      contentWarning,
    });
  }

  function renderPlan() {
    const panel = panels.plan;
    if (state.chosen.length === 0) {
      panel.hidden = true;
      panel.replaceChildren();
      state.plan = null;
      return;
    }
    const plan = currentPlan();
    state.plan = plan;
    const refused = plan.files.filter((entry) => entry.refused !== null).length;
    const unmatched = plan.files.filter((entry) => entry.refused === null && entry.targets.length === 0).length;

    const rows = plan.files.map((entry, index) => {
      const { file } = entry;
      let where;
      if (entry.refused !== null) where = el('p', { class: 'plan-problem' }, entry.refused);
      else if (entry.targets.length === 0) where = el('p', { class: 'plan-problem' }, byName ? `No selected ${config.entityType} is named like this file: it will not be uploaded.` : `No ${config.entityType} is ticked: it will not be uploaded.`);
      else where = el('p', { class: 'plan-targets' }, el('span', { class: 'arrow', 'aria-hidden': 'true' }, '→ '), el('span', { class: 'visually-hidden' }, 'goes to '), entry.targets.map((target) => target.name).join(', '));
      return el(
        'li',
        { class: `plan-file${entry.refused !== null || entry.targets.length === 0 ? ' plan-file-refused' : ''}` },
        el('div', { class: 'plan-file-head' }, el('span', { class: 'file-name' }, file.name), el('span', { class: 'muted' }, formatBytes(file.size))),
        where,
        perFileNames && entry.refused === null ? displayNameField(file, index) : null,
        entry.skipped.map((skip) => el('p', { class: 'plan-note' }, skip.reason)),
        entry.refused === null ? entry.warnings.map((warning) => el('p', { class: 'plan-warning' }, warning)) : null,
        entry.resume ? el('p', { class: 'plan-note plan-resume' }, `Continues an earlier upload: ${entry.resume.partsDone.length} of ${plural(entry.resume.partCount, 'part')} already stored.`) : null,
        el('button', { type: 'button', class: 'link-button', 'aria-label': `Remove ${file.name}`, onclick: () => removeChosen(index) }, 'Remove'),
      );
    });

    const sending = plan.toSend.length;
    const summary = [
      plural(sending, 'file') + ' ready',
      refused > 0 ? `${refused} refused` : null,
      unmatched > 0 ? `${unmatched} without a target` : null,
    ].filter(Boolean);

    const sections = [
      el('h3', {}, 'Check before uploading'),
      el('ul', { class: 'plan-list' }, rows),
      byName && plan.unmatchedTargets.length > 0
        ? el('p', { class: 'plan-unmatched' }, el('strong', {}, toThumbnails ? 'No image for: ' : 'No file for: '), namesInBrief(plan.unmatchedTargets.map((target) => target.name)))
        : null,
      byName ? null : targetChooser(),
      acknowledgement(plan),
      el(
        'div',
        { class: 'plan-actions' },
        el('button', { type: 'button', class: 'plan-confirm', disabled: sending === 0 || !acknowledged(plan), onclick: confirmPlan }, sending === 0 ? 'Nothing to upload' : `Upload ${plural(sending, 'file')}`),
        el('button', { type: 'button', class: 'button-secondary', onclick: clearChosen }, 'Clear'),
      ),
    ];
    panel.replaceChildren(...sections.filter((section) => section !== null));
    panel.hidden = false;
    announce(`${summary.join(', ')}. Check the list, then confirm.`);
  }

  /** What the warnings above ask the user to accept, in one sentence; the same plan once accepted stays accepted. */
  function warningsOf(plan) {
    const said = [];
    if (plan.replacing > 0) said.push(`replace ${plural(plan.replacing, toThumbnails ? 'thumbnail' : 'movie')} ${plan.replacing === 1 ? 'it has' : 'they have'} now`);
    if (plan.odd > 0) said.push(`send ${plural(plan.odd, 'file')} that ${plan.odd === 1 ? 'is' : 'are'} not a movie`);
    return said.join(' and ');
  }

  function acknowledged(plan) {
    const asked = warningsOf(plan);
    return asked === '' || state.accepted === asked;
  }

  function acknowledgement(plan) {
    const asked = warningsOf(plan);
    if (asked === '' || plan.toSend.length === 0) return null;
    return el(
      'label',
      { class: 'choice-option plan-acknowledge' },
      el('input', {
        type: 'checkbox',
        checked: state.accepted === asked,
        onchange: (event) => {
          state.accepted = event.target.checked ? asked : null;
          renderPlan();
          panels.plan.querySelector('.plan-acknowledge input')?.focus();
        },
      }),
      ` Yes, ${asked}.`,
    );
  }

  /** A few names, then how many more: a list of 42 names is no sentence anyone reads. */
  function namesInBrief(names, shown = 8) {
    return names.length <= shown + 1 ? names.join(', ') : `${names.slice(0, shown).join(', ')} and ${names.length - shown} more`;
  }

  /** attach-files: the name ShotGrid shows for this file; the file's own name (and extension) is kept either way. */
  function displayNameField(file, index) {
    const id = `display-name-${index}`;
    return el(
      'div',
      { class: 'field plan-display-name' },
      el('label', { for: id }, 'Display name ', el('span', { class: 'muted' }, '(optional)')),
      el('input', {
        type: 'text',
        id,
        maxLength: 255,
        autocomplete: 'off',
        placeholder: file.name,
        value: displayNames.get(file) ?? '',
        oninput: (event) => displayNames.set(file, event.target.value),
      }),
    );
  }

  /** attach-files: every selected entity is ticked; unticking one keeps the files off it. */
  function targetChooser() {
    return el(
      'fieldset',
      { class: 'choice plan-targets-choice' },
      el('legend', {}, `Attach to these ${config.entityTypePlural}`),
      targets.map((target) =>
        el(
          'label',
          { class: 'choice-option' },
          el('input', {
            type: 'checkbox',
            checked: !state.excluded.has(target.id),
            onchange: (event) => {
              if (event.target.checked) state.excluded.delete(target.id);
              else state.excluded.add(target.id);
              renderPlan();
              panels.plan.querySelector(`input[data-target="${target.id}"]`)?.focus();
            },
            'data-target': target.id,
          }),
          ` ${target.name}`,
        ),
      ),
    );
  }

  function removeChosen(index) {
    state.chosen.splice(index, 1);
    renderPlan();
    (panels.plan.querySelector('.plan-file .link-button') ?? input).focus();
  }

  function clearChosen() {
    state.chosen = [];
    renderPlan();
    input.focus();
    announce('The chosen files were cleared.');
  }

  async function confirmPlan() {
    const plan = state.plan ?? currentPlan();
    const batchName = displayName?.value.trim() ?? '';
    const jobs = plan.toSend.map((entry) => {
      if (entry.resume) state.unfinished = state.unfinished.filter((upload) => upload.id !== entry.resume.id);
      const name = perFileNames ? (displayNames.get(entry.file) ?? '').trim() : batchName;
      return new UploadJob({ file: entry.file, targets: entry.targets, displayName: name, resume: entry.resume, recordKey: entry.resume ? null : queuedKey() });
    });
    state.chosen = [];
    renderPlan();
    renderUnfinished();
    announce(`Uploading ${plural(jobs.length, 'file')}.`);
    // The files waiting their turn go in the user's record first, so a reload (or a later launch) still lists them.
    const queued = jobs.filter((job) => job.recordKey).map((job) => ({ key: job.recordKey, name: job.file.name, size: job.file.size, targets: job.targets.map((target) => target.id) }));
    for (let from = 0; queued.length > 1 && from < queued.length; from += 100) {
      await callUploadApi(`${config.api}/queued`, { method: 'POST', token: config.token, body: { queued: queued.slice(from, from + 100) } }).catch(() => undefined);
    }
    for (const job of jobs) engine.add(job);
    showProgress();
    panels.progress.querySelector('.progress-pause')?.focus();
  }

  /** Unique enough within one user's record (crypto.randomUUID needs a secure context, which a LAN host may not be). */
  function queuedKey() {
    return `q-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
  }

  // ---- unfinished uploads of this launch (a reload, a closed tab, a lost connection) ----

  async function loadUnfinished() {
    try {
      const { uploads } = await callUploadApi(config.api);
      state.unfinished = uploads.filter((upload) => upload.status === 'uploading');
    } catch {
      state.unfinished = [];
    }
    renderUnfinished();
    if (state.chosen.length > 0) renderPlan();
  }

  function renderUnfinished() {
    const panel = panels.unfinished;
    if (state.unfinished.length === 0) {
      panel.hidden = true;
      panel.replaceChildren();
      return;
    }
    panel.replaceChildren(
      el('h3', {}, 'Unfinished uploads'),
      el('p', { class: 'muted' }, 'Choose the same file again to continue where it stopped, or cancel it.'),
      el(
        'ul',
        { class: 'plan-list' },
        state.unfinished.map((upload) =>
          el(
            'li',
            { class: 'plan-file' },
            el('div', { class: 'plan-file-head' }, el('span', { class: 'file-name' }, upload.name), el('span', { class: 'muted' }, formatBytes(upload.size))),
            el('p', { class: 'plan-note' }, `${upload.partsDone.length} of ${plural(upload.partCount, 'part')} stored · to ${upload.targets.map((target) => targetName.get(target.id) ?? `${target.type} ${target.id}`).join(', ')}`),
            el('button', { type: 'button', class: 'link-button', 'aria-label': `Cancel the unfinished upload of ${upload.name}`, onclick: () => cancelUnfinished(upload) }, 'Cancel'),
          ),
        ),
      ),
    );
    panel.hidden = false;
  }

  async function cancelUnfinished(upload) {
    state.unfinished = state.unfinished.filter((candidate) => candidate.id !== upload.id);
    renderUnfinished();
    if (state.chosen.length > 0) renderPlan();
    try {
      await callUploadApi(`${config.api}/${encodeURIComponent(upload.id)}`, { method: 'DELETE', token: config.token });
      announce(`The unfinished upload of ${upload.name} was cancelled.`);
    } catch (error) {
      announce(`The unfinished upload of ${upload.name} could not be cancelled: ${error.message}`);
    }
    input.focus();
  }

  // ---- progress and results ----

  let totalView = null;

  function showProgress() {
    if (totalView) {
      panels.progress.hidden = false;
      return;
    }
    const bar = el('progress', { class: 'total-bar', max: 1, value: 0, 'aria-label': 'All files' });
    const numbers = el('p', { class: 'total-numbers' });
    const pause = el('button', { type: 'button', class: 'button-secondary progress-pause', onclick: () => (engine.paused ? engine.resume() : engine.pause()) }, 'Pause');
    const cancelAll = el('button', { type: 'button', class: 'button-secondary', onclick: () => engine.cancelAll() }, 'Cancel all');
    const list = el('ul', { class: 'job-list' });
    panels.progress.replaceChildren(
      // Focus comes here when the control that had it goes away (see keepFocus).
      el('h3', { tabIndex: -1 }, 'Uploads'),
      el('div', { class: 'total' }, bar, numbers),
      el('div', { class: 'progress-actions' }, pause, cancelAll),
      list,
    );
    panels.progress.hidden = false;
    totalView = { bar, numbers, pause, cancelAll, list };
    setInterval(sampleSpeed, 500);
  }

  // Speed: bytes this page sent, smoothed (exponential moving average) so the numbers do not jump around. Only
  // while bytes move: after STALL_MS without a byte (a part retried, the site finishing) no speed or time left is
  // shown rather than a stale one.
  const STALL_MS = 3000;
  const speed = { lastAt: 0, lastSent: 0, bytesPerSecond: null, movedAt: 0 };
  function sampleSpeed() {
    const now = performance.now();
    const { sent, resumed } = engine.totals();
    const mine = sent - resumed;
    if (mine !== speed.lastSent) speed.movedAt = now;
    if (engine.paused || !engine.busy || now - speed.movedAt > STALL_MS) {
      speed.bytesPerSecond = null;
    } else if (speed.lastAt !== 0) {
      const rate = Math.max(0, ((mine - speed.lastSent) * 1000) / (now - speed.lastAt));
      speed.bytesPerSecond = speed.bytesPerSecond === null ? rate : 0.75 * speed.bytesPerSecond + 0.25 * rate;
    }
    speed.lastAt = now;
    speed.lastSent = mine;
    renderTotals();
  }

  function renderTotals() {
    if (!totalView) return;
    const { size, sent } = engine.totals();
    const outcomes = engine.outcomes();
    totalView.bar.max = Math.max(1, size);
    totalView.bar.value = sent;
    let parts;
    if (!engine.busy) {
      // Over: what became of the files, not bytes of the ones that made it ("0 B of 0 B" said nothing).
      parts = [`Finished: ${outcomeText(outcomes)}`, sent > 0 ? `${formatBytes(sent)} sent` : null];
    } else {
      parts = [`${formatBytes(sent)} of ${formatBytes(size)}`];
      if (engine.paused) parts.push('paused');
      else if (speed.bytesPerSecond !== null && speed.bytesPerSecond > 0) {
        parts.push(`${formatBytes(Math.round(speed.bytesPerSecond))}/s`, `${formatDuration((size - sent) / speed.bytesPerSecond)} left`);
      } else if (speed.lastAt !== 0 && performance.now() - speed.movedAt > STALL_MS) parts.push('waiting…');
      if (outcomes.failed > 0) parts.push(`${outcomes.failed} failed`);
    }
    totalView.numbers.textContent = parts.filter(Boolean).join(' · ');
    totalView.pause.textContent = engine.paused ? 'Resume' : 'Pause';
    keepFocus(totalView.cancelAll.parentElement, () => {
      totalView.pause.disabled = !engine.busy;
      totalView.cancelAll.disabled = !engine.busy;
    });
  }

  /**
   * Runs a change that may disable or remove the focused control (a file's Cancel once it ends, Pause once all
   * is over), and if it did, puts focus on what took its place in `near` (a Retry), else on the progress heading,
   * instead of letting it fall to the page's body.
   */
  function keepFocus(near, change) {
    const before = document.activeElement;
    change();
    const lost = before instanceof HTMLElement && before !== document.body && (!before.isConnected || before.disabled);
    if (lost) (near.querySelector('button:not([disabled])') ?? panels.progress.querySelector('h3'))?.focus();
  }

  // Progress events come many times a second: redraw once per frame.
  const dirty = new Set();
  let frame = 0;
  function scheduleRender(job) {
    dirty.add(job);
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      for (const changed of dirty) renderJob(changed);
      dirty.clear();
      renderTotals();
    });
  }

  function renderJob(job) {
    showProgress();
    let view = jobViews.get(job);
    if (!view) {
      const bar = el('progress', { class: 'job-bar', max: Math.max(1, job.file.size), value: 0, 'aria-label': job.file.name });
      const percent = el('span', { class: 'job-percent' });
      const state = el('p', { class: 'job-state' });
      const results = el('ul', { class: 'results' });
      const actions = el('div', { class: 'job-actions' });
      const item = el(
        'li',
        { class: 'job', 'data-job': job.key },
        el('div', { class: 'job-head' }, el('span', { class: 'file-name' }, job.file.name), percent),
        el('p', { class: 'job-targets muted' }, `→ ${job.targets.map((target) => target.name).join(', ')}`),
        bar,
        state,
        results,
        actions,
      );
      totalView.list.append(item);
      view = { item, bar, percent, state, results, actions, shownState: null };
      jobViews.set(job, view);
    }
    const sent = job.sentBytes;
    view.bar.value = sent;
    view.percent.textContent = job.state === 'failed' || job.state === 'cancelled' ? '' : `${Math.floor((sent / Math.max(1, job.file.size)) * 100)}%`;
    view.item.dataset.state = job.state;
    view.state.textContent = jobStateText(job);
    if (view.shownState !== job.state) {
      // Results and buttons change only with the state: rebuilt then, so focus is not lost on every progress tick.
      view.shownState = job.state;
      keepFocus(view.actions, () => {
        view.results.replaceChildren(...(job.results ?? []).map(resultItem));
        view.actions.replaceChildren(...jobActions(job));
      });
      if (toThumbnails && job.state === 'done') watchNewThumbnails(job);
    }
  }

  // ---- set-thumbnail: the new thumbnails, pending while the site makes them, then shown ----

  function watchNewThumbnails(job) {
    const ids = job.results.filter((result) => result.ok).map((result) => result.id);
    if (ids.length === 0 || !config.thumbnailsApi) return;
    for (const id of ids) showThumbnail(id, { state: 'pending' });
    const waiting = new Set(ids);
    watchThumbnails({
      api: config.thumbnailsApi,
      ids,
      onState: (id, thumbnail) => {
        showThumbnail(id, thumbnail);
        if (thumbnail.state === 'pending') return;
        waiting.delete(id);
        if (waiting.size > 0) return;
        const names = ids.map((target) => targetName.get(target) ?? `${config.entityType} ${target}`).join(', ');
        announce(thumbnail.state === 'ready' ? `New thumbnail shown for ${names}.` : `${names}: ${thumbnailText(thumbnail)}`);
      },
    });
  }

  function thumbnailText(thumbnail) {
    switch (thumbnail.state) {
      case 'pending':
        return `${siteName} is making the thumbnail…`;
      case 'ready':
        return 'New thumbnail';
      case 'none':
        return `${siteName} made no thumbnail from this image.`;
      case 'timeout':
        return `${siteName} is still making the thumbnail: reload the page later to see it.`;
      default:
        return 'The thumbnail cannot be shown: the entity is not visible to you.';
    }
  }

  /** Draws a thumbnail's state everywhere the page shows that entity's thumbnail (the list, the results). */
  function showThumbnail(id, thumbnail) {
    const name = targetName.get(id) ?? `${config.entityType} ${id}`;
    for (const box of document.querySelectorAll(`[data-thumbnail-for="${id}"]`)) {
      box.dataset.state = thumbnail.state;
      box.title = thumbnailText(thumbnail);
      if (thumbnail.state === 'ready') {
        box.className = 'thumb';
        box.replaceChildren(el('img', { src: thumbnail.url, alt: `New thumbnail of ${name}`, width: 96, height: 54, decoding: 'async' }));
      } else {
        box.className = `thumb ${thumbnail.state === 'none' ? 'thumb-none' : 'thumb-pending'}`;
        box.replaceChildren(thumbnail.state === 'none' ? 'none' : 'pending');
      }
    }
    for (const line of document.querySelectorAll(`[data-thumbnail-text-for="${id}"]`)) line.textContent = thumbnailText(thumbnail);
  }

  function jobStateText(job) {
    const parts = job.upload ? `${job.partsDone.size} of ${plural(job.upload.partCount, 'part')}` : '';
    switch (job.state) {
      case 'queued':
        return 'Waiting';
      case 'starting':
        return 'Starting…';
      case 'uploading':
        return engine.paused ? `Paused · ${parts}` : `Uploading · ${parts}`;
      case 'completing':
        return 'Finishing at the site…';
      case 'done': {
        // The results below say it per target; the line speaks only when something failed.
        const failed = job.results.filter((result) => !result.ok).length;
        return failed === 0 ? '' : `${failed} of ${job.results.length} failed`;
      }
      case 'failed':
        return `Failed: ${job.message}`;
      case 'cancelled':
        return job.message ?? 'Cancelled';
      default:
        return job.state;
    }
  }

  function resultItem(result) {
    const name = targetName.get(result.id) ?? `${result.type} ${result.id}`;
    if (result.ok && toThumbnails) {
      return el(
        'li',
        { class: 'result result-done result-thumbnail' },
        el('span', { class: 'thumb thumb-pending', 'data-thumbnail-for': result.id }, 'pending'),
        el(
          'span',
          { class: 'result-thumbnail-text' },
          el('span', {}, el('span', { class: 'result-mark', 'aria-hidden': 'true' }, '✓'), ' Done: ', el('a', { href: result.siteUrl, target: '_blank', rel: 'noopener noreferrer' }, name)),
          el('span', { class: 'muted small', 'data-thumbnail-text-for': result.id }, thumbnailText({ state: 'pending' })),
        ),
      );
    }
    if (result.ok) {
      // The site's record ids mean nothing to people: the link leads to the entity; scripts read the data attribute.
      return el(
        'li',
        { class: 'result result-done', 'data-attachment-id': result.attachmentId ?? undefined },
        el('span', { class: 'result-mark', 'aria-hidden': 'true' }, '✓'),
        ' Done: ',
        el('a', { href: result.siteUrl, target: '_blank', rel: 'noopener noreferrer' }, name),
      );
    }
    return el('li', { class: 'result result-failed' }, el('span', { class: 'result-mark', 'aria-hidden': 'true' }, '✕'), ` Failed: ${name} — ${result.message}`);
  }

  function jobActions(job) {
    if (!job.finished) {
      return [el('button', { type: 'button', class: 'link-button', 'aria-label': `Cancel ${job.file.name}`, onclick: () => engine.cancel(job) }, 'Cancel')];
    }
    const failedTargets = job.state === 'done' ? job.targets.filter((target) => job.results.some((result) => result.id === target.id && !result.ok)) : job.state === 'failed' ? job.targets : [];
    if (failedTargets.length === 0) return [];
    return [
      el(
        'button',
        {
          type: 'button',
          class: 'button-secondary retry',
          'aria-label': `Retry ${job.file.name} for ${failedTargets.map((target) => target.name).join(', ')}`,
          onclick: (event) => {
            event.currentTarget.disabled = true;
            engine.add(new UploadJob({ file: job.file, targets: failedTargets, displayName: job.displayName }));
            announce(`Retrying ${job.file.name}.`);
          },
        },
        'Retry',
      ),
    ];
  }

  window.addEventListener('beforeunload', (event) => {
    // Leaving stops the transfers; what is stored stays, and choosing the files again here continues them.
    if (engine.busy) event.preventDefault();
  });

  void loadUnfinished();
}
