import { amiActions, type AmiAction } from '../ami/actions.ts';

// What each action is for people (title, one line) and which entity types it applies to. The launch routes
// refuse a selection of another type with a clear page, so an Action Menu Item set up on the wrong type says so
// instead of failing later. Each action's own page comes with its own module; until then the launch page shows
// the verified selection.

export interface ActionDefinition {
  action: AmiAction;
  title: string;
  description: string;
  /** The entity types the action works on; `any` for every type. */
  entityTypes: readonly string[] | 'any';
  /** The action's own page, where it has one; otherwise the launch page shows the verified selection. */
  page?: 'upload' | 'download' | 'review';
}

const definitions: readonly ActionDefinition[] = [
  {
    action: 'upload-files',
    title: 'Upload files',
    description: "Upload a movie or file to each selected Version's uploaded-movie field.",
    entityTypes: ['Version'],
    page: 'upload',
  },
  {
    action: 'attach-files',
    title: 'Attach files',
    description: 'Attach files to the selected entities, as ShotGrid attachments.',
    entityTypes: 'any',
    page: 'upload',
  },
  {
    action: 'download-zip',
    title: 'Download as zip',
    description: "Download the selected entities' files, attachments and thumbnails as one zip.",
    entityTypes: 'any',
    page: 'download',
  },
  {
    action: 'set-thumbnail',
    title: 'Set thumbnail',
    description: 'Set the thumbnail of the selected entities from an image: one for all, or one each by name.',
    entityTypes: 'any',
    // The upload page in its thumbnail mode: images only, to the `image` field.
    page: 'upload',
  },
  {
    action: 'submit-for-review',
    title: 'Submit for review',
    description: 'Create a new Version for review on each selected Shot, Asset or Task from a movie.',
    entityTypes: ['Shot', 'Asset', 'Task'],
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

export function appliesTo(definition: ActionDefinition, entityType: string): boolean {
  return definition.entityTypes === 'any' || definition.entityTypes.includes(entityType);
}

/** "Version", "Shot, Asset or Task": for messages that say where an action can be used. */
export function entityTypesText(definition: ActionDefinition): string {
  if (definition.entityTypes === 'any') return 'any entity type';
  const types = [...definition.entityTypes];
  const last = types.pop();
  return types.length === 0 ? String(last) : `${types.join(', ')} or ${String(last)}`;
}
