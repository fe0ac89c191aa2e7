import type { EntityId } from '../tracker.ts';
import { ShotgridError } from './errors.ts';

// The seam carries ids as strings (src/trackers/tracker.ts); ShotGrid's are positive whole numbers. The adapter
// turns them back at its boundary: a string that is no such number names no record the site could have.

const DIGITS = /^[1-9][0-9]{0,15}$/;

/** The site's number for a seam id, or null when no ShotGrid record can have it. */
export function sgIdOrNull(id: EntityId): number | null {
  if (!DIGITS.test(id)) return null;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : null;
}

/** The site's number for a seam id; a string no record can have is "not found", as the site would say. */
export function sgId(id: EntityId): number {
  const n = sgIdOrNull(id);
  if (n === null) throw new ShotgridError('not_found', `No ShotGrid record has the id “${id.slice(0, 40)}”`);
  return n;
}

/** A ShotGrid id as the seam carries it. */
export const seamId = (id: number): EntityId => String(id);
