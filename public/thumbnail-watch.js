// After an image goes up as a thumbnail, the site takes a moment to make the thumbnail: meanwhile its image field
// holds a transient placeholder. This asks the service (GET …/thumbnails?ids=…, never cached) with a growing
// delay until each thumbnail is ready (a short-lived URL) or known to be missing, and reports every answer.
// The placeholder itself is never loaded: a pending thumbnail is drawn by the page.

const FIRST_DELAY_MS = 700;
const GROWTH = 1.6;
const MAX_DELAY_MS = 8_000;
/** After this long the page stops asking and says the site is still at it. */
const GIVE_UP_AFTER_MS = 180_000;

/**
 * @param {{ api: string, ids: number[], onState: (id: number, thumbnail: { state: string, url?: string }) => void }} watch
 *   onState gets 'pending', 'ready' (with url), 'none', 'hidden', or 'timeout' when the page stopped asking.
 */
export function watchThumbnails({ api, ids, onState }) {
  const waiting = new Set(ids);
  const started = Date.now();
  let delay = FIRST_DELAY_MS;
  const ask = async () => {
    try {
      const response = await fetch(`${api}?ids=${[...waiting].join(',')}`, { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (response.status === 410) {
        // The launch expired: nothing more can be asked.
        for (const id of waiting) onState(id, { state: 'timeout' });
        return;
      }
      if (response.ok) {
        const { thumbnails } = await response.json();
        for (const thumbnail of thumbnails) {
          if (!waiting.has(thumbnail.id)) continue;
          onState(thumbnail.id, thumbnail);
          if (thumbnail.state !== 'pending') waiting.delete(thumbnail.id);
        }
      }
    } catch {
      // The service or the network hiccupped: ask again after the next delay.
    }
    if (waiting.size === 0) return;
    if (Date.now() - started > GIVE_UP_AFTER_MS) {
      for (const id of waiting) onState(id, { state: 'timeout' });
      return;
    }
    setTimeout(ask, delay);
    delay = Math.min(MAX_DELAY_MS, delay * GROWTH);
  };
  void ask();
}
