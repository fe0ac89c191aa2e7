import { validationError } from './errors.ts';

// The entity types the sandbox plays, reduced from ftrack's schema to what a file-moving service reads and writes
// (ftrack.md, "Entities for uploads and review"). Abstract types (Context, TypedContext, Component) are queryable
// and answer their concrete subtypes, as on a real server; they cannot be created.

export type ScalarKind = 'string' | 'integer' | 'number' | 'boolean' | 'datetime' | 'json';

export type AttributeDef =
  | { kind: ScalarKind; computed?: true; immutable?: true; foreignKeyOf?: EntityTypeName }
  /** A scalar relation: the entity whose primary key is in `key` on this one. */
  | { kind: 'ref'; target: EntityTypeName; key: string }
  /** A collection: every `target` whose `backKey` holds this entity's id. */
  | { kind: 'collection'; target: EntityTypeName; backKey: string };

export interface EntityDef {
  name: EntityTypeName;
  /** Concrete types a query of this type answers (itself when concrete). */
  concrete: readonly ConcreteTypeName[];
  abstract: boolean;
  primaryKey: readonly string[];
  /** Needed at create, after defaults are applied. */
  required: readonly string[];
  defaultProjections: readonly string[];
  attributes: Readonly<Record<string, AttributeDef>>;
}

export const concreteTypeNames = [
  'Project',
  'Sequence',
  'Shot',
  'Task',
  'Asset',
  'AssetType',
  'AssetVersion',
  'FileComponent',
  'ComponentLocation',
  'Location',
  'Metadata',
  'Note',
  'NoteComponent',
  'ListCategory',
  'AssetVersionList',
  'ListObject',
  'User',
  'Status',
  'Type',
] as const;
export type ConcreteTypeName = (typeof concreteTypeNames)[number];
export const abstractTypeNames = ['Context', 'TypedContext', 'Component'] as const;
export type EntityTypeName = ConcreteTypeName | (typeof abstractTypeNames)[number];

/** ftrack.server: the location whose data the server keeps (ftrack.md, "Upload into the server location"). */
export const SERVER_LOCATION_ID = '3a372bde-05bc-11e4-8908-20c9d081909b';
/** ftrack.unmanaged: files only referred to by path; the server has no bytes for them. */
export const UNMANAGED_LOCATION_ID = 'cb268ecc-8809-11e3-a7e2-20c9d081909b';

const str = { kind: 'string' } as const;
const int = { kind: 'integer' } as const;
const bool = { kind: 'boolean' } as const;
const date = { kind: 'datetime' } as const;
const createdAt = { kind: 'datetime', immutable: true } as const;
const id = { kind: 'string', immutable: true } as const;
const fk = (target: EntityTypeName): AttributeDef => ({ kind: 'string', foreignKeyOf: target });
const ref = (target: EntityTypeName, key: string): AttributeDef => ({ kind: 'ref', target, key });
const many = (target: EntityTypeName, backKey: string): AttributeDef => ({ kind: 'collection', target, backKey });
const computedJson = { kind: 'json', computed: true } as const;

const contextAttributes = {
  id,
  name: str,
  context_type: { kind: 'string', immutable: true },
  link: computedJson,
  thumbnail_id: fk('Component'),
  thumbnail: ref('Component', 'thumbnail_id'),
  children: many('TypedContext', 'parent_id'),
  assets: many('Asset', 'context_id'),
  notes: many('Note', 'parent_id'),
  metadata: many('Metadata', 'parent_id'),
  created_at: createdAt,
} as const satisfies Record<string, AttributeDef>;

const typedContextAttributes = {
  ...contextAttributes,
  parent_id: fk('Context'),
  parent: ref('Context', 'parent_id'),
  project_id: { kind: 'string', immutable: true, foreignKeyOf: 'Project' },
  project: ref('Project', 'project_id'),
  status_id: fk('Status'),
  status: ref('Status', 'status_id'),
  type_id: fk('Type'),
  type: ref('Type', 'type_id'),
  description: str,
} as const satisfies Record<string, AttributeDef>;

const componentAttributes = {
  id,
  name: str,
  file_type: str,
  size: int,
  system_type: { kind: 'string', immutable: true },
  version_id: fk('AssetVersion'),
  version: ref('AssetVersion', 'version_id'),
  component_locations: many('ComponentLocation', 'component_id'),
  metadata: many('Metadata', 'parent_id'),
  created_at: createdAt,
} as const satisfies Record<string, AttributeDef>;

const typedContextDef = (name: 'Sequence' | 'Shot' | 'Task', required: readonly string[]): EntityDef => ({
  name,
  concrete: [name],
  abstract: false,
  primaryKey: ['id'],
  required,
  defaultProjections: ['id', 'name', 'context_type'],
  attributes: typedContextAttributes,
});

const definitions: readonly EntityDef[] = [
  {
    name: 'Context',
    concrete: ['Project', 'Sequence', 'Shot', 'Task'],
    abstract: true,
    primaryKey: ['id'],
    required: [],
    defaultProjections: ['id', 'name', 'context_type'],
    attributes: contextAttributes,
  },
  {
    name: 'TypedContext',
    concrete: ['Sequence', 'Shot', 'Task'],
    abstract: true,
    primaryKey: ['id'],
    required: [],
    defaultProjections: ['id', 'name', 'context_type'],
    attributes: typedContextAttributes,
  },
  {
    name: 'Project',
    concrete: ['Project'],
    abstract: false,
    primaryKey: ['id'],
    required: ['id', 'name', 'full_name'],
    defaultProjections: ['id', 'name', 'full_name', 'context_type'],
    attributes: { ...contextAttributes, full_name: str, status: str, is_private: bool, root: str },
  },
  typedContextDef('Sequence', ['id', 'name', 'parent_id', 'status_id']),
  typedContextDef('Shot', ['id', 'name', 'parent_id', 'status_id']),
  typedContextDef('Task', ['id', 'name', 'parent_id', 'status_id', 'type_id']),
  {
    name: 'Asset',
    concrete: ['Asset'],
    abstract: false,
    primaryKey: ['id'],
    required: ['id', 'name', 'context_id', 'type_id'],
    defaultProjections: ['id', 'name'],
    attributes: {
      id,
      name: str,
      context_id: fk('Context'),
      parent: ref('Context', 'context_id'),
      type_id: fk('AssetType'),
      type: ref('AssetType', 'type_id'),
      versions: many('AssetVersion', 'asset_id'),
      metadata: many('Metadata', 'parent_id'),
    },
  },
  {
    name: 'AssetType',
    concrete: ['AssetType'],
    abstract: false,
    primaryKey: ['id'],
    required: ['id', 'name', 'short'],
    defaultProjections: ['id', 'name', 'short'],
    attributes: { id, name: str, short: str },
  },
  {
    name: 'AssetVersion',
    concrete: ['AssetVersion'],
    abstract: false,
    primaryKey: ['id'],
    // status_id has no default (ftrack.md): a create without it is refused.
    required: ['id', 'asset_id', 'version', 'status_id', 'user_id'],
    defaultProjections: ['id', 'version'],
    attributes: {
      id,
      asset_id: fk('Asset'),
      asset: ref('Asset', 'asset_id'),
      task_id: fk('Task'),
      task: ref('Task', 'task_id'),
      version: int,
      comment: str,
      thumbnail_id: fk('Component'),
      thumbnail: ref('Component', 'thumbnail_id'),
      components: many('FileComponent', 'version_id'),
      user_id: fk('User'),
      user: ref('User', 'user_id'),
      status_id: fk('Status'),
      status: ref('Status', 'status_id'),
      is_published: bool,
      date,
      link: computedJson,
      notes: many('Note', 'parent_id'),
      metadata: many('Metadata', 'parent_id'),
      created_at: createdAt,
    },
  },
  {
    name: 'Component',
    concrete: ['FileComponent'],
    abstract: true,
    primaryKey: ['id'],
    required: [],
    defaultProjections: ['id', 'system_type'],
    attributes: componentAttributes,
  },
  {
    name: 'FileComponent',
    concrete: ['FileComponent'],
    abstract: false,
    primaryKey: ['id'],
    required: ['id', 'name', 'system_type'],
    defaultProjections: ['id', 'system_type'],
    attributes: componentAttributes,
  },
  {
    name: 'ComponentLocation',
    concrete: ['ComponentLocation'],
    abstract: false,
    primaryKey: ['id'],
    required: ['id', 'component_id', 'location_id'],
    defaultProjections: ['id', 'component_id', 'location_id', 'resource_identifier'],
    attributes: {
      id,
      component_id: { kind: 'string', immutable: true, foreignKeyOf: 'Component' },
      component: ref('Component', 'component_id'),
      location_id: { kind: 'string', immutable: true, foreignKeyOf: 'Location' },
      location: ref('Location', 'location_id'),
      resource_identifier: str,
      // Computed on a real server, its value there unknown (ftrack.md): null here, downloads go through /component/get.
      url: computedJson,
      created_at: createdAt,
    },
  },
  {
    name: 'Location',
    concrete: ['Location'],
    abstract: false,
    primaryKey: ['id'],
    required: ['id', 'name'],
    defaultProjections: ['id', 'name'],
    attributes: { id, name: str, label: str, description: str },
  },
  {
    name: 'Metadata',
    concrete: ['Metadata'],
    abstract: false,
    primaryKey: ['parent_id', 'key'],
    required: ['parent_id', 'parent_type', 'key', 'value'],
    defaultProjections: ['parent_id', 'key', 'value'],
    attributes: {
      parent_id: { kind: 'string', immutable: true },
      parent_type: { kind: 'string', immutable: true },
      key: { kind: 'string', immutable: true },
      value: str,
    },
  },
  {
    name: 'Note',
    concrete: ['Note'],
    abstract: false,
    primaryKey: ['id'],
    required: ['id', 'content', 'parent_id', 'parent_type', 'user_id'],
    defaultProjections: ['id', 'content'],
    attributes: {
      id,
      content: str,
      parent_id: { kind: 'string', immutable: true },
      parent_type: { kind: 'string', immutable: true },
      user_id: fk('User'),
      user: ref('User', 'user_id'),
      date,
      created_at: createdAt,
      note_components: many('NoteComponent', 'note_id'),
    },
  },
  {
    // A file attached to a note: how ftrack attaches files to anything that is not a version (the web UI's note
    // attachments). Keyed by the pair, as on a real server.
    name: 'NoteComponent',
    concrete: ['NoteComponent'],
    abstract: false,
    primaryKey: ['note_id', 'component_id'],
    required: ['note_id', 'component_id'],
    defaultProjections: ['note_id', 'component_id'],
    attributes: {
      note_id: { kind: 'string', immutable: true, foreignKeyOf: 'Note' },
      note: ref('Note', 'note_id'),
      component_id: { kind: 'string', immutable: true, foreignKeyOf: 'Component' },
      component: ref('Component', 'component_id'),
    },
  },
  {
    name: 'ListCategory',
    concrete: ['ListCategory'],
    abstract: false,
    primaryKey: ['id'],
    required: ['id', 'name'],
    defaultProjections: ['id', 'name'],
    attributes: { id, name: str },
  },
  {
    // A list of versions (the web UI's "Lists"), what review playlists are in ftrack. Its members are ListObjects.
    name: 'AssetVersionList',
    concrete: ['AssetVersionList'],
    abstract: false,
    primaryKey: ['id'],
    required: ['id', 'name', 'project_id', 'category_id', 'owner_id'],
    defaultProjections: ['id', 'name'],
    attributes: {
      id,
      name: str,
      project_id: { kind: 'string', immutable: true, foreignKeyOf: 'Project' },
      project: ref('Project', 'project_id'),
      category_id: fk('ListCategory'),
      category: ref('ListCategory', 'category_id'),
      owner_id: fk('User'),
      owner: ref('User', 'owner_id'),
      is_open: bool,
      date,
      items: many('ListObject', 'list_id'),
    },
  },
  {
    name: 'ListObject',
    concrete: ['ListObject'],
    abstract: false,
    primaryKey: ['id'],
    required: ['id', 'list_id', 'entity_id'],
    defaultProjections: ['id', 'list_id', 'entity_id'],
    attributes: {
      id,
      list_id: { kind: 'string', immutable: true, foreignKeyOf: 'AssetVersionList' },
      list: ref('AssetVersionList', 'list_id'),
      entity_id: { kind: 'string', immutable: true, foreignKeyOf: 'AssetVersion' },
    },
  },
  {
    name: 'User',
    concrete: ['User'],
    abstract: false,
    primaryKey: ['id'],
    required: ['id', 'username'],
    defaultProjections: ['id', 'username'],
    attributes: { id, username: str, first_name: str, last_name: str, email: str, is_active: bool, thumbnail_id: fk('Component') },
  },
  {
    name: 'Status',
    concrete: ['Status'],
    abstract: false,
    primaryKey: ['id'],
    required: ['id', 'name'],
    defaultProjections: ['id', 'name'],
    attributes: { id, name: str, color: str, sort: int },
  },
  {
    name: 'Type',
    concrete: ['Type'],
    abstract: false,
    primaryKey: ['id'],
    required: ['id', 'name'],
    defaultProjections: ['id', 'name'],
    attributes: { id, name: str, color: str },
  },
];

const byName = new Map<string, EntityDef>(definitions.map((def) => [def.name, def]));

export function findEntityDef(name: string): EntityDef | undefined {
  return byName.get(name);
}

/** The definition of `name`, or the ValidationError a server answers for an unknown type. */
export function entityDef(name: string): EntityDef {
  const def = byName.get(name);
  if (!def) throw validationError(`Unknown entity type "${name}".`);
  return def;
}

/** The attribute `name` of `type`, or the ValidationError for an unknown one. */
export function attributeDef(def: EntityDef, name: string): AttributeDef {
  const attribute = Object.hasOwn(def.attributes, name) ? def.attributes[name] : undefined;
  if (!attribute) throw validationError(`Unknown attribute "${name}" for entity type "${def.name}".`);
  return attribute;
}

export function isSubtypeOf(concrete: ConcreteTypeName, of: EntityTypeName): boolean {
  return byName.get(of)?.concrete.includes(concrete) ?? false;
}

/** What `query_schemas` answers: one JSON-schema-like object per type, with `id` and `primary_key` (ftrack.md). */
export function querySchemas(): unknown[] {
  return definitions.map((def) => {
    const properties: Record<string, unknown> = {};
    const immutable: string[] = [];
    const computed: string[] = [];
    for (const [name, attribute] of Object.entries(def.attributes)) {
      properties[name] = schemaProperty(attribute);
      if (attribute.kind === 'ref' || attribute.kind === 'collection') continue;
      if (attribute.immutable) immutable.push(name);
      if (attribute.computed) computed.push(name);
    }
    return {
      id: def.name,
      type: 'object',
      ...(def.abstract ? { abstract: true } : {}),
      primary_key: [...def.primaryKey],
      required: [...def.required],
      immutable,
      computed,
      default_projections: [...def.defaultProjections],
      properties,
    };
  });
}

function schemaProperty(attribute: AttributeDef): Record<string, unknown> {
  switch (attribute.kind) {
    case 'ref':
      return { $ref: attribute.target };
    case 'collection':
      return { type: 'array', items: { $ref: attribute.target } };
    case 'datetime':
      return { type: 'string', format: 'date-time' };
    case 'json':
      return { type: 'object' };
    case 'string':
      return attribute.foreignKeyOf
        ? { type: 'string', format: 'foreign_key', description: `Foreign key(s): ${attribute.foreignKeyOf}.id` }
        : { type: 'string' };
    default:
      return { type: attribute.kind };
  }
}
