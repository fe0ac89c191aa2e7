import type { ActionContext } from '../ami/context-store.ts';
import { formatBytes } from '../shared/format-bytes.ts';
import type { EntityId, SelectedEntity, Tracker } from '../trackers/tracker.ts';
import type { LaunchRecords, RecordEntry, RecordTarget } from './launch-record.ts';

// The user's record of an action as the page shows it (views/partials/launch-record.ejs): what each entry became,
// in words, with links to what it went to. Names are looked up as the user, so a record never shows an entity the
// user can no longer see, and never a bare id.

export interface RecordLine {
  name: string;
  /** A Version's own page, where the entry is one. */
  siteUrl: string | null;
  size: string | null;
  /** done: arrived; failed: did not; open: not over (queued, sending, prepared); gone: removed or stopped. */
  tone: 'done' | 'failed' | 'open' | 'gone';
  state: string;
  targets: { name: string; siteUrl: string | null; failed: string | null }[];
  more: number;
  /** ISO 8601, shown in the reader's time zone by the page's script. */
  at: string;
}

export interface RecordLists {
  thisLaunch: RecordLine[];
  earlier: RecordLine[];
}

/** This launch's entries and the earlier launches' (newest first, at most `earlierShown` of them). */
export async function recordLists(
  records: LaunchRecords | undefined,
  tracker: Tracker,
  context: ActionContext,
  known: readonly SelectedEntity[],
  earlierShown = 20,
): Promise<RecordLists> {
  if (!records) return { thisLaunch: [], earlier: [] };
  let lists: { thisLaunch: RecordEntry[]; earlier: RecordEntry[] };
  try {
    lists = await records.list(context);
  } catch {
    // The record is a convenience: the page works without it.
    return { thisLaunch: [], earlier: [] };
  }
  const earlier = lists.earlier.slice(0, earlierShown);
  const entities = await namesOf([...lists.thisLaunch, ...earlier], tracker, context.user.login, known);
  const line = (entry: RecordEntry, ofThisLaunch: boolean) => lineOf(entry, ofThisLaunch, entities);
  return { thisLaunch: lists.thisLaunch.map((entry) => line(entry, true)), earlier: earlier.map((entry) => line(entry, false)) };
}

type Known = Map<string, { name: string; siteUrl: string } | null>;
const keyOf = (target: { type: string; id: EntityId | number }) => `${target.type}:${target.id}`;

/** Every target's name and link: from what the page already looked up, otherwise one lookup per entity type. */
async function namesOf(entries: readonly RecordEntry[], tracker: Tracker, login: string, known: readonly SelectedEntity[]): Promise<Known> {
  const names: Known = new Map(known.map((entity) => [keyOf(entity), { name: entity.name, siteUrl: entity.siteUrl }]));
  const missing = new Map<string, Set<EntityId>>();
  for (const entry of entries) {
    for (const target of entry.targets) {
      if (names.has(keyOf(target))) continue;
      // A record written before ids were strings holds numbers.
      missing.set(target.type, (missing.get(target.type) ?? new Set()).add(String(target.id)));
    }
  }
  await Promise.all(
    [...missing].map(async ([type, ids]) => {
      try {
        const { visible, hiddenIds } = await tracker.lookupSelection(login, type, [...ids]);
        for (const entity of visible) names.set(keyOf(entity), { name: entity.name, siteUrl: entity.siteUrl });
        for (const id of hiddenIds) names.set(keyOf({ type, id }), null);
      } catch {
        // Unreachable now: the names written with the entry (if any) stand in.
      }
    }),
  );
  return names;
}

function lineOf(entry: RecordEntry, ofThisLaunch: boolean, names: Known): RecordLine {
  const targets = entry.targets.map((target) => targetOf(target, names));
  const { tone, state } = stateOf(entry, ofThisLaunch);
  return {
    name: entry.name,
    // A removed Version has no page any more.
    siteUrl: entry.state === 'removed' ? null : (entry.siteUrl ?? null),
    size: entry.size === null ? null : formatBytes(entry.size),
    tone,
    state,
    targets,
    more: entry.moreTargets,
    at: entry.at,
  };
}

function targetOf(target: RecordTarget, names: Known): RecordLine['targets'][number] {
  const found = names.get(keyOf(target));
  const failed = target.ok === false ? (target.message ?? 'failed') : null;
  if (found) return { name: found.name, siteUrl: found.siteUrl, failed };
  // Not visible to the user any more (or the site did not answer): the name written then, or what it was.
  return { name: found === null ? `a ${target.type} you no longer see` : (target.name ?? `a ${target.type}`), siteUrl: null, failed };
}

function stateOf(entry: RecordEntry, ofThisLaunch: boolean): Pick<RecordLine, 'tone' | 'state'> {
  switch (entry.state) {
    case 'queued':
      return { tone: 'open', state: ofThisLaunch ? 'Queued, not started: choose the file again to send it' : 'Queued, never started' };
    case 'sending':
      return ofThisLaunch
        ? { tone: 'open', state: 'Not finished: choose the same file again to continue' }
        : { tone: 'gone', state: 'Stopped before it finished: nothing was created' };
    case 'done':
      return { tone: 'done', state: 'Uploaded' };
    case 'partly':
      return { tone: 'failed', state: 'Uploaded to some, failed for others' };
    case 'failed':
      return { tone: 'failed', state: 'Failed' + (entry.note ? `: ${entry.note}` : '') };
    case 'stopped':
      return { tone: 'gone', state: 'Cancelled: nothing was created' };
    case 'awaiting-movie':
      return ofThisLaunch ? { tone: 'open', state: 'Created, waiting for its movie' } : { tone: 'open', state: 'Created; its movie had not arrived when the page closed' };
    case 'submitted':
      return { tone: 'done', state: 'Submitted for review' };
    case 'removed':
      return { tone: 'gone', state: `Removed again${entry.note ? `: ${entry.note}` : ''}` };
    case 'prepared':
      return { tone: 'open', state: `Zip prepared${entry.note ? ` (${entry.note})` : ''}, not downloaded to the end` };
    case 'downloaded':
      return { tone: 'done', state: `Downloaded${entry.note ? ` (${entry.note})` : ''}` };
    default:
      return { tone: 'open', state: entry.state };
  }
}
