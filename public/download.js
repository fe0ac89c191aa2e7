// The download page: starts the zip with an id the service reports progress under, and shows that progress —
// and, if the download fails, which file it failed on. Without JavaScript the form's plain GET still works.

import { formatBytes } from './js/format-bytes.js';

const form = document.getElementById('download-form');
const progress = document.getElementById('download-progress');
const bar = document.getElementById('download-bar');
const text = document.getElementById('download-text');
const live = document.getElementById('download-live');
const button = document.getElementById('download-button');

// The summary counts what the chosen kinds would put in the zip (the server's rendering counts every kind).
const summary = document.getElementById('download-summary');
const rows = [...document.querySelectorAll('table.files tbody tr[data-kind]')];
const chosenKinds = () => [...form.querySelectorAll('input[name="kinds"]:checked')].map((input) => input.value);

function element(tag, text) {
  const node = document.createElement(tag);
  node.textContent = text;
  return node;
}

function updateSummary() {
  const chosen = new Set(chosenKinds());
  const listed = rows.filter((row) => chosen.has(row.dataset.kind));
  const included = listed.filter((row) => row.dataset.skipped !== 'true');
  // Nothing to put in a zip: no live button (a download already running keeps its own state).
  if (progress.hidden || !button.disabled) button.disabled = included.length === 0;
  const knownBytes = included.reduce((sum, row) => sum + (row.dataset.size === '' ? 0 : Number(row.dataset.size)), 0);
  const unknownSizes = included.filter((row) => row.dataset.size === '').length;
  summary.replaceChildren(
    element('strong', String(included.length)),
    included.length === 1 ? ' file, ' : ' files, ',
    element('strong', formatBytes(knownBytes)),
    unknownSizes > 0 ? ` plus ${unknownSizes} whose size is measured when the zip is made` : '',
    `; ${listed.length - included.length} listed in the manifest only. A `,
    element('code', 'manifest.csv'),
    ' in the zip lists every file and what became of it.',
  );
}

form.addEventListener('change', (event) => {
  if (event.target.name === 'kinds') updateSummary();
});
updateSummary();
void measureSizes();

/** Fills in the sizes the site does not state, as storage gives them (the page showed without waiting for them). */
async function measureSizes() {
  const unsized = rows.filter((row) => row.dataset.size === '' && row.dataset.skipped !== 'true');
  if (unsized.length === 0) return;
  for (const row of unsized) row.querySelector('td.size').textContent = 'measuring…';
  let sizes = [];
  try {
    const response = await fetch(form.dataset.sizesUrl, { headers: { accept: 'application/json' } });
    if (response.ok) ({ sizes } = await response.json());
  } catch {
    // Not measured now: the zip measures them when it is made.
  }
  const byKey = new Map(sizes.map(({ key, size }) => [key, size]));
  for (const row of unsized) {
    const size = byKey.get(row.dataset.key);
    if (typeof size === 'number') row.dataset.size = String(size);
    row.querySelector('td.size').textContent = typeof size === 'number' ? formatBytes(size) : '—';
  }
  updateSummary();
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const kinds = chosenKinds();
  if (kinds.length === 0) {
    show('Choose at least one kind of file.', { error: true });
    return;
  }
  button.disabled = true;
  progress.hidden = false;
  // A fresh start after a failed download: no error colour, an empty bar until there is something to show.
  bar.hidden = true;
  bar.removeAttribute('value');
  text.classList.remove('error');
  text.textContent = 'Preparing the zip…';
  void prepare(kinds);
});

/** One line of progress (also read out by screen readers); `error` ends the download and offers it again. */
function show(message, { error = false } = {}) {
  live.textContent = text.textContent = message;
  text.classList.toggle('error', error);
  progress.hidden = false;
  if (error) {
    // A nearly full bar would say the opposite of the message: the partial zip is of no use.
    bar.hidden = true;
    button.disabled = false;
  }
}

/** What an error answer says, for people: the service's own message, and what to do where it says. */
async function refusal(response) {
  try {
    const { error } = await response.json();
    return [error.message, error.hint].filter(Boolean).join(' ');
  } catch {
    return `The service answered ${response.status}.`;
  }
}

async function prepare(kinds) {
  let response;
  try {
    response = await fetch(form.dataset.zipUrl, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json', 'x-csrf-token': form.dataset.token },
      body: JSON.stringify({ kinds }),
    });
  } catch {
    show('The service could not be reached. Check the connection and try again.', { error: true });
    return;
  }
  if (response.status !== 202) {
    // 410: the page's launch expired; the message says to run the action again from the site.
    show(await refusal(response), { error: true });
    return;
  }
  const { download } = await response.json();
  await follow(download);
}

/** Polls the status: preparing (files checked so far), then starts the file once ready, then its progress. */
async function follow(download) {
  let started = null;
  let failures = 0;
  let asked = -Infinity;
  for (;;) {
    // While preparing, the service holds the ask until the zip is ready (or a second passed): ask again at once
    // after a held answer, never more than once every 0.7 s.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, asked + (started === null ? 700 : 1000) - performance.now())));
    asked = performance.now();
    let status;
    try {
      const response = await fetch(started === null ? `${download.statusUrl}?wait=1` : download.statusUrl, { headers: { accept: 'application/json' } });
      if (response.status === 429) {
        // Asked to slow down: wait as long as the service says, then poll again.
        await new Promise((resolve) => setTimeout(resolve, Math.min(60, Number(response.headers.get('retry-after')) || 5) * 1000));
        continue;
      }
      if (!response.ok) {
        show(await refusal(response), { error: true });
        return;
      }
      status = await response.json();
      failures = 0;
    } catch {
      // A dropped poll is not a failed download; many in a row mean the service is gone.
      if (++failures >= 30) {
        show('The service stopped answering. The download may still finish in the browser; if not, try again.', { error: true });
        return;
      }
      continue;
    }
    if (status.state === 'preparing') {
      text.textContent = status.listed === null ? 'Preparing the zip: listing the files…' : `Preparing the zip: ${status.resolved} of ${status.listed} files checked…`;
      continue;
    }
    if (status.state === 'ready' && started === null) {
      started = Date.now();
      const link = document.createElement('a');
      link.href = download.fileUrl;
      link.download = '';
      document.body.append(link);
      link.click();
      link.remove();
      bar.hidden = false;
      text.textContent = `Starting the download: ${status.files} files, ${formatBytes(status.total)}…`;
      continue;
    }
    if (status.state === 'sending' && status.total) {
      started ??= Date.now();
      bar.hidden = false;
      bar.max = status.total;
      bar.value = status.sent;
      const seconds = (Date.now() - started) / 1000;
      const speed = status.sent / Math.max(seconds, 1);
      const left = speed > 0 && status.sent > 0 ? Math.round((status.total - status.sent) / speed) : null;
      text.textContent = `${formatBytes(status.sent)} of ${formatBytes(status.total)} · ${formatBytes(speed)}/s${left !== null ? ` · about ${left} s left` : ''}`;
    }
    if (status.state === 'done') {
      bar.hidden = false;
      bar.max = status.total;
      bar.value = status.total;
      live.textContent = text.textContent = `Done: ${status.files} files, ${formatBytes(status.total)}${status.skipped > 0 ? `; ${status.skipped} listed in the manifest only` : ''}.`;
      button.disabled = false;
      return;
    }
    if (status.state === 'failed') {
      const where = status.failedFile ? ` at “${status.failedFile}”` : '';
      show(`The download failed${where}: ${status.message ?? 'a file could not be fetched'}. The partial zip is not usable; try again.`, { error: true });
      return;
    }
  }
}
