import type { Config } from '../config.ts';
import type { Tracker, UploadSlot, UploadTarget } from '../trackers/tracker.ts';
import { HELD_SINGLE_PUT_MAX, heldWhole } from '../transfer/held-upload.ts';

// The largest file an action's uploads take: the service's limit, and for thumbnails the lower image limit.
// The page shows it (and refuses bigger files before anything starts); the upload API enforces it.

export type UploadLimits = Pick<Config, 'maxUploadBytes' | 'thumbnailMaxBytes'>;

/** What an action's uploads write: a Version's review media, the thumbnail, or a new attachment. */
export function slotOf(action: string): UploadSlot {
  if (action === 'set-thumbnail') return 'thumbnail';
  return action === 'upload-files' || action === 'submit-for-review' ? 'review-media' : 'attachment';
}

/** Bytes per file for this action's uploads, or null for no limit. */
export function uploadLimitFor(action: string, limits: UploadLimits): number | null {
  if (action !== 'set-thumbnail') return limits.maxUploadBytes;
  return limits.maxUploadBytes === null ? limits.thumbnailMaxBytes : Math.min(limits.maxUploadBytes, limits.thumbnailMaxBytes);
}

/** The most bytes the no-JavaScript form takes for a file to `target`: a limit only where it must hold the file whole. */
export async function plainFormLimitFor(tracker: Tracker, login: string, target: UploadTarget): Promise<number | null> {
  return (await heldWhole(tracker, login, target)) ? HELD_SINGLE_PUT_MAX : null;
}
