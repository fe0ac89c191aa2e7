// The download page: starts the zip with an id the service reports progress under, and shows that progress —
// and, if the download fails, which file it failed on. Without JavaScript the form's plain GET still works.

const form = document.getElementById('download-form');
const progress = document.getElementById('download-progress');
const bar = document.getElementById('download-bar');
const text = document.getElementById('download-text');
const live = document.getElementById('download-live');
const button = document.getElementById('download-button');

const formatBytes = (n) => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
};

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const kinds = [...form.querySelectorAll('input[name="kinds"]:checked')].map((input) => input.value);
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
      button.disabled = false;
      return;
    }
  }
}
