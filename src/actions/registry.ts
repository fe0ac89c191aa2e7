import { amiActions, type AmiAction } from '../ami/actions.ts';
import type { EntityRole } from '../trackers/tracker.ts';

// What each action is for people (title, one line) and which roles of entity it applies to: the site's adapter
// says what role each of its types plays (Tracker.roleOf), so one registry serves ShotGrid and ftrack. The launch
// routes refuse a selection of another type with a clear page, so an Action Menu Item set up on the wrong type says so
// instead of failing later. Each action's own page comes with its own module; until then the launch page shows
// the verified selection.

export interface ActionDefinition {
  action: AmiAction;
  title: string;
  description: string;
  /** The roles of entity the action works on; `any` for every type. */
  roles: readonly EntityRole[] | 'any';
  /** The action's own page, where it has one; otherwise the launch page shows the verified selection. */
  page?: 'upload' | 'download' | 'review';
}

const definitions: readonly ActionDefinition[] = [
  {
    action: 'upload-files',
    title: 'Upload files',
    description: 'Upload a movie or file to each selected Version, as the movie people review.',
    roles: ['version'],
    page: 'upload',
  },
  {
    action: 'attach-files',
    title: 'Attach files',
    description: 'Attach files to the selected entities, as attachments at the site.',
    roles: 'any',
    page: 'upload',
  },
  {
    action: 'download-zip',
    title: 'Download as zip',
    description: "Download the selected entities' files, attachments and thumbnails as one zip.",
    roles: 'any',
    page: 'download',
  },
  {
    action: 'set-thumbnail',
    title: 'Set thumbnail',
    description: 'Set the thumbnail of the selected entities from an image: one for all, or one each by name.',
    roles: 'any',
    // The upload page in its thumbnail mode: images only, to the `image` field.
    page: 'upload',
  },
  {
    action: 'submit-for-review',
    title: 'Submit for review',
    description: 'Create a new Version for review on each selected Shot, Asset or Task from a movie.',
    roles: ['shot-like', 'task'],
    page: 'review',
  },
];

const byAction: ReadonlyMap<string, ActionDefinition> = new Map(definitions.map((definition) => [definition.action, definition]));

// Every action the config knows (secret tokens per action) has a definition here, and nothing else does.
if (byAction.size !== amiActions.length || !amiActions.every((action) => byAction.has(action))) {
  throw new Error('src/actions/registry.ts must define exactly the actions of src/ami/actions.ts');
}

/** The action behind a URL segment, or undefined for a name that is not an action. */
export function findAction(name: string): ActionDefinition | undefined {
  return byAction.get(name);
}

export function allActions(): readonly ActionDefinition[] {
  return definitions;
}

export function appliesTo(definition: ActionDefinition, role: EntityRole): boolean {
  return definition.roles === 'any' || definition.roles.includes(role);
}

/** Each role in the words people use for it on either site. */
const roleWords: Readonly<Record<EntityRole, readonly string[]>> = {
  version: ['Version'],
  'shot-like': ['Shot', 'Asset'],
  task: ['Task'],
  other: [],
};

/** "Version", "Shot, Asset or Task": for messages that say where an action can be used. */
export function entityTypesText(definition: ActionDefinition): string {
  if (definition.roles === 'any') return 'any entity type';
  const types = definition.roles.flatMap((role) => roleWords[role]);
  const last = types.pop();
  return types.length === 0 ? String(last) : `${types.join(', ')} or ${String(last)}`;
}
