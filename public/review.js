// The "Submit for review" page: movies are chosen or dropped, each becomes a proposed Version (name, what it is
// for, status, description) the user can edit; on confirm, each Version is created as the user, then its movie
// goes up through the upload API (public/upload-transfer.js). A movie that does not arrive — cancelled, refused,
// failed for good — has its new Version deleted again, and the page says so. Once every movie is in, the new
// Versions can go to a playlist. Everything shown is built with textContent; status goes to a live region.

import { acceptFiles, el, plural } from './dom.js';
import { fileIsText } from './js/text-signature.js';
import { Md5Pool } from './md5-pool.js';
import { proposalProblems, proposeVersions, targetLabel } from './review-plan.js';
import { formatBytes } from './upload-plan.js';
import { UploadEngine, UploadJob, UploadRefusal, callUploadApi } from './upload-transfer.js';


const form = document.getElementById('review-form');
if (form instanceof HTMLFormElement) start(form);

/** "ShotGrid" or "ftrack", as the page names the site. */
const siteName = document.documentElement.dataset.siteName || 'the site';

function start(form) {
  const config = {
    versionsApi: form.dataset.versionsApi,
    versionsToken: form.dataset.versionsToken,
    /** How often the page says it is still there while a new Version waits for its movie. */
    heartbeatMs: Number(form.dataset.heartbeatMs) || 30_000,
    uploadApi: form.dataset.uploadApi,
    uploadToken: form.dataset.uploadToken,
    playlistApi: form.dataset.playlistApi,
    playlistToken: form.dataset.playlistToken,
    maxBytes: form.dataset.maxBytes ? Number(form.dataset.maxBytes) : null,
    parallelParts: Number(form.dataset.parallelParts) || 4,
    entityType: form.dataset.entityType,
    /** The site's name for the type (the label above is for words): review-plan.js decides by it (a Task's parent). */
    entityTypeName: form.dataset.entityTypeName ?? form.dataset.entityType,
    defaultStatus: form.dataset.defaultStatus ?? '',
  };
  const targets = Array.from(document.querySelectorAll('#review-targets .entity'), (item) => ({
    id: item.dataset.id,
    type: config.entityTypeName,
    name: item.dataset.name,
    parentName: item.dataset.parentName ?? null,
    siteUrl: item.dataset.siteUrl,
  }));
  const statusOptions = document.getElementById('review-status-options');
  const input = form.querySelector('#review-file-input');
  const dropZone = form.querySelector('#drop-zone');
  const panels = {
    earlier: document.getElementById('review-earlier'),
    proposals: document.getElementById('review-proposals'),
    progress: document.getElementById('review-progress'),
  };
  const status = document.getElementById('review-status');
  const announce = (text) => {
    status.textContent = text;
  };

  const state = {
    /** @type {import('./review-plan.js').Proposal[]} */
    proposals: [],
    /** Confirmed movies, in order: each becomes a Version, then an upload. */
    submissions: [],
    /** Versions from an earlier visit whose movie never arrived. */
    earlier: [],
    /** Version ids the page asked to put in a playlist (once each), and the playlist it made (later batches go there too). */
    playlistAsked: new Set(),
    createdPlaylist: null,
  };

  // The service removes new Versions whose page has gone silent (the overlay closed mid-way): while one of this
  // page's Versions waits for its movie (a paused upload too), the page says it is still there.
  const waitingForMovie = () => state.submissions.some((submission) => submission.version !== null && !submission.settled && submission.state !== 'cancelled');
  setInterval(() => {
    if (waitingForMovie()) void callUploadApi(`${config.versionsApi}/heartbeat`, { method: 'POST', token: config.versionsToken }).catch(() => undefined);
  }, config.heartbeatMs);

  const engine = new UploadEngine({
    api: config.uploadApi,
    token: config.uploadToken,
    parallelParts: config.parallelParts,
    hasher: new Md5Pool(Math.max(1, Math.min(config.parallelParts, (navigator.hardwareConcurrency || 2) - 1, 4))),
    onChange: (job) => {
      const submission = state.submissions.find((candidate) => candidate.job === job);
      if (!submission) return;
      scheduleRender(submission);
      if (job.finished && !submission.settled) {
        submission.settled = true;
        void settle(submission);
      }
    },
    // The engine speaks of files and of the batch; this page says itself how each Version ends. Only the
    // engine's news about the connection (lost, back) is passed on.
    onStatus: (text) => {
      if (text.startsWith('The service')) announce(text);
    },
  });

  // The page needs this script: it shows itself only where it runs.
  form.hidden = false;
  form.addEventListener('submit', (event) => event.preventDefault());

  // ---- choosing movies ----

  acceptFiles(input, dropZone, (files) => void addFiles(files));

  async function addFiles(files) {
    const same = (a, b) => a.name === b.name && a.size === b.size && a.lastModified === b.lastModified;
    const fresh = files.filter((file, index) => !state.proposals.some((proposal) => same(proposal.file, file)) && files.findIndex((other) => same(other, file)) === index);
    await Promise.all(fresh.map(async (file) => textFiles.set(file, await fileIsText(file))));
    state.proposals.push(...proposeVersions(fresh, targets, { status: config.defaultStatus }));
    renderProposals();
  }

  // A "movie" that is plain text (notes.txt chosen by mistake): a warning the user may override, never a refusal.
  const textFiles = new WeakMap();

  // ---- the proposals: one new Version per movie, editable before anything is created ----

  function problems() {
    return proposalProblems(state.proposals, { maxBytes: config.maxBytes, targets });
  }

  function renderProposals() {
    const panel = panels.proposals;
    if (state.proposals.length === 0) {
      panel.hidden = true;
      panel.replaceChildren();
      return;
    }
    panel.replaceChildren(
      el('h3', {}, 'New Versions to create'),
      el('p', { class: 'muted small' }, 'Check each one, change what needs changing, then confirm. Nothing is created before.'),
      el('ul', { class: 'plan-list proposal-list' }, state.proposals.map(proposalItem)),
      el('label', { class: 'choice-option plan-acknowledge', hidden: true }, el('input', { type: 'checkbox', onchange: () => refreshProblems() }), el('span')),
      el(
        'div',
        { class: 'plan-actions' },
        el('button', { type: 'button', class: 'plan-confirm', onclick: confirm }, ''),
        el('button', { type: 'button', class: 'button-secondary', onclick: clearProposals }, 'Clear'),
      ),
    );
    panel.hidden = false;
    refreshProblems({ announceIt: true });
  }

  function proposalItem(proposal) {
    const id = (what) => `proposal-${proposal.key}-${what}`;
    const field = (label, control, wide = false) => el('div', { class: `field proposal-field${wide ? ' proposal-field-wide' : ''}` }, el('label', { for: control.id }, label), control);
    const code = el('input', {
      type: 'text',
      id: id('code'),
      value: proposal.code,
      maxLength: 255,
      autocomplete: 'off',
      oninput: (event) => {
        proposal.code = event.target.value;
        refreshProblems();
      },
    });
    const target = el(
      'select',
      {
        id: id('target'),
        onchange: (event) => {
          proposal.targetId = event.target.value === '' ? null : event.target.value;
          refreshProblems();
        },
      },
      el('option', { value: '' }, '— choose —'),
      targets.map((candidate) => el('option', { value: String(candidate.id), selected: candidate.id === proposal.targetId }, targetLabel(candidate))),
    );
    const statusSelect = el('select', {
      id: id('status'),
      onchange: (event) => {
        proposal.status = event.target.value;
      },
    });
    statusSelect.append(statusOptions.content.cloneNode(true));
    statusSelect.value = proposal.status;
    const description = el('textarea', {
      id: id('description'),
      rows: 2,
      maxLength: 10_000,
      value: proposal.description,
      oninput: (event) => {
        proposal.description = event.target.value;
      },
    });
    return el(
      'li',
      { class: 'plan-file proposal', 'data-key': proposal.key },
      el('div', { class: 'plan-file-head' }, el('span', { class: 'file-name' }, proposal.file.name), el('span', { class: 'muted' }, formatBytes(proposal.file.size))),
      el(
        'div',
        { class: 'proposal-fields' },
        field('Version name', code),
        field(`For (${config.entityType})`, target),
        field('Status', statusSelect),
        field('Description (optional)', description, true),
      ),
      textFiles.get(proposal.file) ? el('p', { class: 'plan-warning' }, `This file is plain text, not a movie: ${siteName} will keep it but cannot play it.`) : null,
      el('p', { class: 'plan-problem', hidden: true }),
      el('button', { type: 'button', class: 'link-button', 'aria-label': `Remove ${proposal.file.name}`, onclick: () => removeProposal(proposal) }, 'Remove'),
    );
  }

  /**
   * Problems are shown in place as the user types: the list is not redrawn, so focus stays where it is. The
   * summary is announced when the list changes, not on every keystroke.
   */
  function refreshProblems({ announceIt = false } = {}) {
    const found = problems();
    state.proposals.forEach((proposal, index) => {
      const item = panels.proposals.querySelector(`.proposal[data-key="${proposal.key}"]`);
      if (!item) return;
      const line = item.querySelector('.plan-problem');
      line.textContent = found[index] ?? '';
      line.hidden = found[index] === null;
      item.classList.toggle('plan-file-refused', found[index] !== null);
    });
    const ready = found.filter((problem) => problem === null).length;
    // Text among the movies about to be sent: asked once, with a tick, before anything is created.
    const odd = state.proposals.filter((proposal, index) => found[index] === null && textFiles.get(proposal.file)).length;
    const asking = panels.proposals.querySelector('.plan-acknowledge');
    if (asking) {
      asking.hidden = odd === 0;
      asking.querySelector('span').textContent = ` Yes, send ${plural(odd, 'file')} that ${odd === 1 ? 'is' : 'are'} not a movie.`;
    }
    const confirmButton = panels.proposals.querySelector('.plan-confirm');
    if (confirmButton) {
      confirmButton.disabled = ready === 0 || (odd > 0 && !asking?.querySelector('input').checked);
      confirmButton.textContent = ready === 0 ? 'Nothing to submit' : `Create ${plural(ready, 'Version')} and upload`;
    }
    const waiting = found.length - ready;
    if (announceIt) announce(`${plural(ready, 'Version')} ready to create${waiting > 0 ? `, ${waiting} to fix` : ''}. Check the list, then confirm.`);
  }

  function removeProposal(proposal) {
    state.proposals = state.proposals.filter((candidate) => candidate !== proposal);
    renderProposals();
    (panels.proposals.querySelector('.proposal input') ?? input).focus();
  }

  function clearProposals() {
    state.proposals = [];
    renderProposals();
    input.focus();
    announce('The chosen movies were cleared.');
  }

  // ---- submitting: create each Version as the user, then send its movie ----

  async function confirm() {
    const found = problems();
    const ready = state.proposals.filter((_, index) => found[index] === null);
    if (ready.length === 0) return;
    state.proposals = state.proposals.filter((proposal) => !ready.includes(proposal));
    renderProposals();
    const batch = ready.map((proposal) => ({ proposal, state: 'queued', version: null, job: null, message: null, removal: null, settled: false }));
    state.submissions.push(...batch);
    showProgress();
    for (const submission of batch) renderSubmission(submission);
    panels.progress.querySelector('.job button')?.focus();
    announce(`Creating ${plural(batch.length, 'Version')}.`);
    // One at a time: the site is not asked to create a hundred Versions at once, and a refusal shows at once.
    for (const submission of batch) await createVersion(submission);
  }

  async function createVersion(submission) {
    if (submission.state !== 'queued') return;
    const { proposal } = submission;
    submission.state = 'creating';
    renderSubmission(submission);
    let version;
    try {
      ({ version } = await callUploadApi(config.versionsApi, {
        method: 'POST',
        token: config.versionsToken,
        body: { code: proposal.code.trim(), targetId: proposal.targetId, description: proposal.description.trim() || null, status: proposal.status || null },
      }));
    } catch (error) {
      submission.state = 'refused';
      // A refusal is final; anything else (the service unreachable) may go if the user tries again.
      submission.message = error instanceof UploadRefusal ? `Refused: ${error.message}` : `Not created: ${error.message} Try again in a moment.`;
      renderSubmission(submission);
      announce(`${proposal.code}: ${submission.message}`);
      void finishedAll();
      return;
    }
    submission.version = version;
    if (submission.state === 'cancelled') {
      // Cancelled while the site was creating it: take it away again.
      await removeVersion(submission);
      return;
    }
    submission.state = 'uploading';
    submission.job = new UploadJob({ file: proposal.file, targets: [{ id: version.id, name: version.code, siteUrl: version.siteUrl }] });
    engine.add(submission.job);
    renderSubmission(submission);
  }

  /** A movie's upload ended: kept, or its Version removed again (the service does too; asking makes it sure). */
  async function settle(submission) {
    const { job } = submission;
    const failure = job.state === 'done' ? job.results.find((result) => !result.ok) : null;
    if (job.state === 'done' && !failure) {
      submission.state = 'done';
      renderSubmission(submission);
      announce(`${submission.version.code}: submitted.`);
      void finishedAll();
      return;
    }
    submission.state = job.state === 'cancelled' ? 'cancelled' : 'failed';
    submission.message = job.state === 'cancelled' ? 'Cancelled.' : `The movie did not arrive: ${failure ? failure.message : job.message}`;
    await removeVersion(submission);
  }

  async function removeVersion(submission) {
    submission.removal = 'removing';
    renderSubmission(submission);
    try {
      await callUploadApi(`${config.versionsApi}/${encodeURIComponent(submission.version.id)}`, { method: 'DELETE', token: config.versionsToken });
      submission.removal = 'removed';
    } catch (error) {
      submission.removal = 'failed';
      submission.removalMessage = error.message;
    }
    renderSubmission(submission);
    announce(`${submission.version.code}: ${removalText(submission)}`);
    void finishedAll();
  }

  function cancel(submission) {
    if (submission.job) {
      void engine.cancel(submission.job);
      return;
    }
    if (submission.state !== 'queued' && submission.state !== 'creating') return;
    submission.state = 'cancelled';
    submission.message = 'Cancelled.';
    renderSubmission(submission);
    void finishedAll();
  }

  // ---- progress ----

  let list = null;
  function showProgress() {
    if (list) return;
    list = el('ul', { class: 'job-list' });
    panels.progress.replaceChildren(
      el('h3', {}, 'Submissions'),
      list,
      el('p', { class: 'review-playlist-result', id: 'review-playlist-result', hidden: true }),
    );
    panels.progress.hidden = false;
  }

  const views = new Map();
  const dirty = new Set();
  let frame = 0;
  function scheduleRender(submission) {
    dirty.add(submission);
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      for (const changed of dirty) renderSubmission(changed);
      dirty.clear();
    });
  }

  function renderSubmission(submission) {
    let view = views.get(submission);
    const { proposal } = submission;
    if (!view) {
      const target = targets.find((candidate) => candidate.id === proposal.targetId);
      const bar = el('progress', { class: 'job-bar', max: Math.max(1, proposal.file.size), value: 0, 'aria-label': proposal.code });
      const percent = el('span', { class: 'job-percent' });
      const line = el('p', { class: 'job-state' });
      const results = el('ul', { class: 'results' });
      const actions = el('div', { class: 'job-actions' });
      const item = el(
        'li',
        { class: 'job submission' },
        el('div', { class: 'job-head' }, el('span', { class: 'file-name' }, proposal.code.trim()), percent),
        el('p', { class: 'job-targets muted' }, `→ ${target ? targetLabel(target) : ''} · from ${proposal.file.name}`),
        bar,
        line,
        results,
        actions,
      );
      list.append(item);
      view = { item, bar, percent, line, results, actions, shown: null };
      views.set(submission, view);
    }
    const { job } = submission;
    const sent = job ? job.sentBytes : 0;
    view.bar.value = submission.state === 'done' ? proposal.file.size : sent;
    view.percent.textContent = job && (submission.state === 'uploading' || submission.state === 'done') ? `${Math.floor((view.bar.value / Math.max(1, proposal.file.size)) * 100)}%` : '';
    view.item.dataset.state = submission.state;
    view.line.textContent = stateText(submission);
    const shown = `${submission.state}:${submission.removal}`;
    if (view.shown !== shown) {
      // Links and buttons change only with the state: rebuilt then, so focus is not lost on every progress tick.
      view.shown = shown;
      view.results.replaceChildren(...resultItems(submission));
      view.actions.replaceChildren(...actionButtons(submission));
    }
  }

  function stateText(submission) {
    const { job } = submission;
    switch (submission.state) {
      case 'queued':
        return 'Waiting';
      case 'creating':
        return 'Creating the Version…';
      case 'uploading':
        if (!job || job.state === 'queued' || job.state === 'starting') return 'Version created · starting the upload…';
        if (job.state === 'completing') return 'Finishing at the site…';
        return `Uploading · ${job.partsDone.size} of ${plural(job.upload?.partCount ?? 1, 'part')}`;
      case 'done':
        return '';
      case 'refused':
        return submission.message;
      default:
        return submission.removal === null ? submission.message : `${submission.message} ${removalText(submission)}`;
    }
  }

  function removalText(submission) {
    const code = submission.version?.code ?? submission.proposal.code;
    switch (submission.removal) {
      case 'removing':
        return `Removing the new Version ${code}…`;
      case 'removed':
        return `The new Version ${code} was removed again: no empty Version is left.`;
      case 'failed':
        return `The new Version ${code} could not be removed (${submission.removalMessage}): delete it in ${siteName}.`;
      default:
        return '';
    }
  }

  function resultItems(submission) {
    if (submission.state !== 'done') return [];
    const { version } = submission;
    return [
      el(
        'li',
        { class: 'result result-done' },
        el('span', { class: 'result-mark', 'aria-hidden': 'true' }, '✓'),
        ' Submitted: ',
        el('a', { href: version.siteUrl, target: '_blank', rel: 'noopener noreferrer' }, version.code),
        el('span', { class: 'muted' }, ` (on ${version.entity.name}${version.task ? `, Task ${version.task.name}` : ''})`),
      ),
    ];
  }

  function actionButtons(submission) {
    const open = submission.state === 'queued' || submission.state === 'creating' || (submission.state === 'uploading' && !submission.job?.finished);
    if (!open) return [];
    return [el('button', { type: 'button', class: 'link-button', 'aria-label': `Cancel ${submission.proposal.code.trim()}`, onclick: () => cancel(submission) }, 'Cancel')];
  }

  // ---- the end of a batch: the playlist, and the summary ----

  const busy = () => state.submissions.some((submission) => ['queued', 'creating', 'uploading'].includes(submission.state) || submission.removal === 'removing');
  let addingToPlaylist = false;

  async function finishedAll() {
    if (busy() || addingToPlaylist) return;
    const submitted = state.submissions.filter((submission) => submission.state === 'done');
    const fresh = submitted.filter((submission) => !state.playlistAsked.has(submission.version.id));
    const choice = playlistChoice();
    if (choice && fresh.length > 0) {
      addingToPlaylist = true;
      for (const submission of fresh) state.playlistAsked.add(submission.version.id);
      try {
        await addToPlaylist(choice, fresh);
      } finally {
        addingToPlaylist = false;
      }
      // Another batch may have finished meanwhile: its Versions go too.
      void finishedAll();
      return;
    }
    if (busy()) return;
    const removed = state.submissions.filter((submission) => submission.removal === 'removed').length;
    announce(
      `All finished: ${submitted.length} of ${plural(state.submissions.length, 'Version')} submitted` +
        (removed > 0 ? `; ${plural(removed, 'empty Version')} removed again.` : '.'),
    );
  }

  /** The playlist the user chose, read when the movies are in: null, {playlistId}, or {playlistName}. */
  function playlistChoice() {
    const mode = form.querySelector('input[name="playlist-mode"]:checked')?.value ?? 'none';
    if (mode === 'existing') return { playlistId: form.querySelector('#playlist-existing').value };
    if (mode !== 'new') return null;
    // A playlist this page made earlier takes later batches too, rather than a second one of the same name.
    if (state.createdPlaylist) return { playlistId: state.createdPlaylist.id };
    const name = form.querySelector('#playlist-name').value.trim();
    return name === '' ? null : { playlistName: name };
  }

  async function addToPlaylist(choice, submissions) {
    const line = document.getElementById('review-playlist-result');
    line.hidden = false;
    line.className = 'review-playlist-result';
    line.textContent = 'Adding the new Versions to the playlist…';
    const versionIds = submissions.map((submission) => submission.version.id);
    try {
      const { playlist, added } = await callUploadApi(config.playlistApi, { method: 'POST', token: config.playlistToken, body: { versionIds, ...choice } });
      if ('playlistName' in choice) state.createdPlaylist = playlist;
      line.replaceChildren(
        el('span', { class: 'result-mark', 'aria-hidden': 'true' }, '✓'),
        ` ${plural(added, 'Version')} added to the playlist `,
        el('a', { href: playlist.siteUrl, target: '_blank', rel: 'noopener noreferrer' }, playlist.name),
        '.',
      );
      line.classList.add('result-done');
    } catch (error) {
      line.textContent = `The new Versions were not added to the playlist: ${error.message}`;
      line.classList.add('result-failed');
    }
  }

  // ---- Versions left from an earlier visit (a reload, a closed tab) whose movie never arrived ----

  async function loadEarlier() {
    try {
      const { versions } = await callUploadApi(config.versionsApi);
      state.earlier = versions.filter((version) => version.state === 'awaiting-movie');
    } catch {
      state.earlier = [];
    }
    renderEarlier();
  }

  function renderEarlier() {
    const panel = panels.earlier;
    if (state.earlier.length === 0) {
      panel.hidden = true;
      panel.replaceChildren();
      return;
    }
    panel.replaceChildren(
      el('h3', {}, 'Versions without their movie'),
      el('p', { class: 'muted' }, 'Created from this page earlier, but their movie did not arrive (the page was closed or reloaded). Remove them, or submit the movie again as a new Version.'),
      el(
        'ul',
        { class: 'plan-list' },
        state.earlier.map((version) =>
          el(
            'li',
            { class: 'plan-file' },
            el('div', { class: 'plan-file-head' }, el('a', { class: 'file-name', href: version.siteUrl, target: '_blank', rel: 'noopener noreferrer' }, version.code)),
            el('p', { class: 'plan-note' }, `On ${version.entity.name}${version.task ? ` (Task ${version.task.name})` : ''}`),
            el('button', { type: 'button', class: 'link-button', 'aria-label': `Remove the Version ${version.code}`, onclick: () => removeEarlier(version) }, 'Remove'),
          ),
        ),
      ),
    );
    panel.hidden = false;
  }

  async function removeEarlier(version) {
    try {
      await callUploadApi(`${config.versionsApi}/${encodeURIComponent(version.id)}`, { method: 'DELETE', token: config.versionsToken });
      state.earlier = state.earlier.filter((candidate) => candidate.id !== version.id);
      announce(`The Version ${version.code} was removed.`);
    } catch (error) {
      announce(`The Version ${version.code} could not be removed: ${error.message}`);
    }
    renderEarlier();
    input.focus();
  }

  window.addEventListener('beforeunload', (event) => {
    // Leaving stops the uploads; the Versions they were for would stay empty until removed here.
    if (busy()) event.preventDefault();
  });

  void loadEarlier();
}
