// The sandbox site's schema: the entity types the service meets, their fields and data types, named as ShotGrid
// names them. Only what the service and its tests use is here, but what is here behaves as on a real site.

export type FieldType =
  | 'text'
  | 'number'
  | 'float'
  | 'checkbox'
  | 'date_time'
  | 'status_list'
  | 'list'
  | 'entity'
  | 'multi_entity'
  | 'url' // file/link field: an upload, web or local value
  | 'image'; // thumbnail: a signed URL, a transient placeholder, or null

export interface FieldDef {
  type: FieldType;
  /** For entity and multi_entity fields: the entity types a value may link to. */
  links?: readonly string[];
  /** Set by the site; refused in create and update. */
  readOnly?: boolean;
  /** Accepted on create/update but never returned (ActionMenuItem.secret_token). */
  writeOnly?: boolean;
}

export interface EntityDef {
  /** The field shown as the entity's name in links (`code`, `name`, `content`, `title`, …). */
  nameField: string;
  /** Lower-case plural used in REST links, e.g. `versions`, `human_users`. */
  plural: string;
  /** Has a `project` field; visibility and permissions follow its project. */
  projectScoped: boolean;
  fields: Readonly<Record<string, FieldDef>>;
}

const common = {
  id: { type: 'number', readOnly: true },
  created_at: { type: 'date_time', readOnly: true },
  updated_at: { type: 'date_time', readOnly: true },
  created_by: { type: 'entity', links: ['HumanUser', 'ApiUser'], readOnly: true },
  updated_by: { type: 'entity', links: ['HumanUser', 'ApiUser'], readOnly: true },
} as const satisfies Record<string, FieldDef>;

const project = { type: 'entity', links: ['Project'] } as const satisfies FieldDef;
const image = { type: 'image' } as const satisfies FieldDef;
const users = ['HumanUser', 'ApiUser'] as const;
const linkable = ['Project', 'Sequence', 'Shot', 'Asset', 'Task', 'Version', 'Note', 'Playlist', 'HumanUser'] as const;

export const schema = {
  Project: {
    nameField: 'name',
    plural: 'projects',
    projectScoped: false,
    fields: {
      ...common,
      name: { type: 'text' },
      code: { type: 'text' },
      sg_status: { type: 'list' },
      archived: { type: 'checkbox' },
      users: { type: 'multi_entity', links: ['HumanUser'] },
      image,
    },
  },
  Sequence: {
    nameField: 'code',
    plural: 'sequences',
    projectScoped: true,
    fields: { ...common, code: { type: 'text' }, description: { type: 'text' }, project, sg_status_list: { type: 'status_list' }, image },
  },
  Shot: {
    nameField: 'code',
    plural: 'shots',
    projectScoped: true,
    fields: {
      ...common,
      code: { type: 'text' },
      description: { type: 'text' },
      project,
      sg_sequence: { type: 'entity', links: ['Sequence'] },
      sg_status_list: { type: 'status_list' },
      sg_cut_in: { type: 'number' },
      sg_cut_out: { type: 'number' },
      image,
    },
  },
  Asset: {
    nameField: 'code',
    plural: 'assets',
    projectScoped: true,
    fields: {
      ...common,
      code: { type: 'text' },
      description: { type: 'text' },
      project,
      sg_asset_type: { type: 'list' },
      sg_status_list: { type: 'status_list' },
      image,
    },
  },
  Task: {
    nameField: 'content',
    plural: 'tasks',
    projectScoped: true,
    fields: {
      ...common,
      content: { type: 'text' },
      project,
      entity: { type: 'entity', links: ['Shot', 'Asset', 'Sequence'] },
      task_assignees: { type: 'multi_entity', links: ['HumanUser'] },
      sg_status_list: { type: 'status_list' },
      image,
    },
  },
  Version: {
    nameField: 'code',
    plural: 'versions',
    projectScoped: true,
    fields: {
      ...common,
      code: { type: 'text' },
      description: { type: 'text' },
      project,
      entity: { type: 'entity', links: ['Shot', 'Asset', 'Sequence'] },
      sg_task: { type: 'entity', links: ['Task'] },
      user: { type: 'entity', links: users },
      sg_status_list: { type: 'status_list' },
      sg_uploaded_movie: { type: 'url' },
      sg_path_to_movie: { type: 'text' },
      sg_path_to_frames: { type: 'text' },
      playlists: { type: 'multi_entity', links: ['Playlist'] },
      image,
    },
  },
  Playlist: {
    nameField: 'code',
    plural: 'playlists',
    projectScoped: true,
    fields: { ...common, code: { type: 'text' }, description: { type: 'text' }, project, versions: { type: 'multi_entity', links: ['Version'] }, image },
  },
  Note: {
    nameField: 'subject',
    plural: 'notes',
    projectScoped: true,
    fields: {
      ...common,
      subject: { type: 'text' },
      content: { type: 'text' },
      project,
      user: { type: 'entity', links: users },
      note_links: { type: 'multi_entity', links: linkable },
      sg_status_list: { type: 'status_list' },
    },
  },
  Attachment: {
    nameField: 'filename',
    plural: 'attachments',
    projectScoped: true,
    fields: {
      ...common,
      this_file: { type: 'url' },
      filename: { type: 'text' },
      // Null on attachments created since 2025 (attachment-size.ts).
      file_size: { type: 'number' },
      file_extension: { type: 'text' },
      description: { type: 'text' },
      project,
      attachment_links: { type: 'multi_entity', links: linkable },
      tag_list: { type: 'multi_entity', links: ['Tag'] },
      processing_status: { type: 'text' },
      image,
    },
  },
  Tag: {
    nameField: 'name',
    plural: 'tags',
    projectScoped: false,
    fields: { ...common, name: { type: 'text' } },
  },
  HumanUser: {
    nameField: 'name',
    plural: 'human_users',
    projectScoped: false,
    fields: {
      ...common,
      name: { type: 'text' },
      login: { type: 'text' },
      email: { type: 'text' },
      sg_status_list: { type: 'status_list' },
      image,
    },
  },
  ApiUser: {
    nameField: 'firstname',
    plural: 'api_users',
    projectScoped: false,
    fields: { ...common, firstname: { type: 'text' }, description: { type: 'text' } },
  },
  LocalStorage: {
    nameField: 'code',
    plural: 'local_storages',
    projectScoped: false,
    fields: {
      ...common,
      code: { type: 'text' },
      description: { type: 'text' },
      linux_path: { type: 'text' },
      mac_path: { type: 'text' },
      windows_path: { type: 'text' },
    },
  },
  ActionMenuItem: {
    nameField: 'title',
    plural: 'action_menu_items',
    projectScoped: false,
    fields: {
      ...common,
      title: { type: 'text' },
      url: { type: 'text' },
      entity_type: { type: 'text' },
      list_order: { type: 'number' },
      folder: { type: 'text' },
      selection_required: { type: 'checkbox' },
      open_in_overlay: { type: 'checkbox' },
      secret_token: { type: 'text', writeOnly: true },
      projects: { type: 'multi_entity', links: ['Project'] },
      permissions_groups: { type: 'multi_entity', links: ['PermissionRuleSet'] },
    },
  },
} as const satisfies Record<string, EntityDef>;

export type EntityType = keyof typeof schema;
export const entityTypes = Object.keys(schema) as EntityType[];

/** Resolves `Version`, `versions` or `version` (as REST paths may write it) to the entity type, or undefined. */
export function resolveEntityType(name: string): EntityType | undefined {
  if (Object.hasOwn(schema, name)) return name as EntityType;
  const lower = name.toLowerCase();
  return entityTypes.find((type) => {
    const def: EntityDef = schema[type];
    return def.plural === lower || type.toLowerCase() === lower;
  });
}

export function entityDef(type: EntityType): EntityDef {
  return schema[type];
}

export function fieldDef(type: EntityType, field: string): FieldDef | undefined {
  const fields: Readonly<Record<string, FieldDef>> = schema[type].fields;
  return Object.hasOwn(fields, field) ? fields[field] : undefined;
}
