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

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const kinds = chosenKinds();
  if (kinds.length === 0) {
    live.textContent = text.textContent = 'Choose at least one kind of file.';
    progress.hidden = false;
    return;
  }
  const id = crypto.randomUUID();
  const url = `${form.dataset.zipUrl}?kinds=${encodeURIComponent(kinds.join(','))}&download=${id}`;
  const link = document.createElement('a');
  link.href = url;
  link.download = '';
  document.body.append(link);
  link.click();
  link.remove();
  button.disabled = true;
  progress.hidden = false;
  // A fresh start after a failed download: an empty bar again, and no error colour on the progress.
  bar.hidden = false;
  bar.removeAttribute('value');
  text.classList.remove('error');
  text.textContent = 'Preparing the zip…';
  void follow(url.replace(/\?.*$/, `/${id}/status`));
});

async function follow(statusUrl) {
  const started = Date.now();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    let status;
    try {
      const response = await fetch(statusUrl, { headers: { accept: 'application/json' } });
      if (response.status === 404) continue;
      status = await response.json();
    } catch {
      continue;
    }
    if (status.total) {
      bar.max = status.total;
      bar.value = status.sent;
      const seconds = (Date.now() - started) / 1000;
      const speed = status.sent / Math.max(seconds, 1);
      const left = speed > 0 ? Math.round((status.total - status.sent) / speed) : null;
      text.textContent = `${formatBytes(status.sent)} of ${formatBytes(status.total)} · ${formatBytes(speed)}/s${left !== null ? ` · about ${left} s left` : ''}`;
    }
    if (status.state === 'done') {
      live.textContent = text.textContent = `Done: ${status.files} files, ${formatBytes(status.total)}.`;
      button.disabled = false;
      return;
    }
    if (status.state === 'failed') {
      live.textContent = text.textContent = `The download failed at “${status.failedFile ?? 'the start'}”: ${status.message ?? 'the file could not be fetched'}. The partial zip is not usable; try again.`;
      text.classList.add('error');
      // A nearly full bar would say the opposite of the message: the partial zip is of no use.
      bar.hidden = true;
      button.disabled = false;
      return;
    }
  }
}
