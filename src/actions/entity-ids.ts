import type { EntityId } from '../trackers/tracker.ts';

// Ids as pages and scripts send them to the service's JSON API: the seam's strings (a ShotGrid record's digits,
// an ftrack UUID), or a positive whole number as scripts written for ShotGrid send them. Both become the string.

const ID = /^[A-Za-z0-9-]{1,64}$/;

/** One id, or null when the value cannot be one. */
export function entityIdOf(value: unknown): EntityId | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? String(value) : null;
  return typeof value === 'string' && ID.test(value) ? value : null;
}

/** A list of at most `max` ids, or null when it is not one. */
export function entityIdsOf(value: unknown, max: number): EntityId[] | null {
  if (!Array.isArray(value) || value.length > max) return null;
  const ids = value.map(entityIdOf);
  return ids.every((id): id is EntityId => id !== null) ? ids : null;
}
