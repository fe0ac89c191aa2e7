import { createHash, randomUUID } from 'node:crypto';
import type { Actor } from './access.ts';
import { validationError } from './errors.ts';
import { runQuery } from './query.ts';
import { entityDef, querySchemas, SERVER_LOCATION_ID } from './schema.ts';
import type { ServerLocation } from './server-location.ts';
import { renderStored } from './serialize.ts';
import type { Entity, EntityStore, StoredValue } from './store.ts';
import { createEntity, deleteEntity, findVisible, updateEntity, type WriteContext } from './writes.ts';

// One POST /api batch: operations run in order, one result each. An operation that fails stops the batch and its
// error replaces the whole reply; the operations before it stay done — no rollback (UNCONFIRMED in ftrack.md; the
// pessimistic case for a client, see README).

export const maxOperations = 1000;
/** encode_media requests remembered (the oldest go first). */
const maxEncodeJobs = 1000;

export interface EncodeJob {
  jobId: string;
  componentId: string;
  versionId: string | null;
  keepOriginal: boolean;
  requestedBy: string;
}

export interface ApiDeps {
  store: EntityStore;
  serverLocation: ServerLocation;
  /** Most entities one query answers; a client pages with offset for the rest. */
  pageSize: number;
  defaultContextStatusId: string;
  serverVersion: string;
  /** The last encode_media requests, in order (the sandbox does not encode). */
  encodeJobs: EncodeJob[];
}

export async function runBatch(deps: ApiDeps, actor: Actor, operations: unknown): Promise<unknown[]> {
  if (!Array.isArray(operations)) throw validationError('The request body must be a JSON list of operations.');
  if (operations.length > maxOperations) throw validationError(`A batch holds at most ${maxOperations} operations.`);
  const results: unknown[] = [];
  for (const operation of operations) results.push(await runOperation(deps, actor, operation));
  return results;
}

async function runOperation(deps: ApiDeps, actor: Actor, raw: unknown): Promise<unknown> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw validationError('Each operation must be an object with an "action".');
  const operation = raw as Record<string, unknown>;
  const writes: WriteContext = {
    store: deps.store,
    actor,
    defaultContextStatusId: deps.defaultContextStatusId,
    removeData: (key) => deps.serverLocation.remove(key),
  };
  switch (operation.action) {
    case 'query_server_information':
      return serverInformation(deps);
    case 'query_schemas':
      return querySchemas();
    case 'query':
      return runQuery(
        { store: deps.store, computed: (entity, name) => computed(deps.store, entity, name), canRead: (entity) => actor.canRead(entity), pageSize: deps.pageSize },
        operation.expression,
      );
    case 'create': {
      const entity = createEntity(writes, operation.entity_type, operation.entity_data);
      return { action: 'create', data: renderStored(entity) };
    }
    case 'update': {
      const entity = updateEntity(writes, operation.entity_type, operation.entity_key, operation.entity_data);
      return { action: 'update', data: renderStored(entity) };
    }
    case 'delete':
      await deleteEntity(writes, operation.entity_type, operation.entity_key);
      return { action: 'delete', data: true };
    case 'get_upload_metadata': {
      const component = writableComponent(deps, actor, operation.component_id);
      return deps.serverLocation.uploadMetadata(component, operation);
    }
    case 'complete_multipart_upload': {
      const component = writableComponent(deps, actor, operation.component_id);
      await deps.serverLocation.completeMultipart(component.attrs.id as string, operation);
      return { action: 'complete_multipart_upload', component_id: component.attrs.id };
    }
    case 'encode_media':
      return encodeMedia(deps, actor, operation);
    default:
      throw validationError(`Unknown action "${typeof operation.action === 'string' ? operation.action.slice(0, 100) : String(operation.action)}".`);
  }
}

function serverInformation(deps: ApiDeps): Record<string, unknown> {
  return {
    version: deps.serverVersion,
    is_timezone_support_enabled: true,
    storage_scenario: { scenario: 'ftrack.automatic', data: {} },
    schema_hash: createHash('md5').update(JSON.stringify(querySchemas())).digest('hex'),
  };
}

function writableComponent(deps: ApiDeps, actor: Actor, componentId: unknown): Entity {
  if (typeof componentId !== 'string') throw validationError('component_id must be the id of a FileComponent.');
  const component = findVisible({ store: deps.store, actor }, entityDef('FileComponent'), [componentId]);
  actor.checkWrite('update', component);
  return component;
}

/** Accepted and recorded as a job; the sandbox does not encode (ftrack.md: `encode_media` → {job_id}). */
function encodeMedia(deps: ApiDeps, actor: Actor, operation: Record<string, unknown>): Record<string, unknown> {
  const component = writableComponent(deps, actor, operation.component_id);
  const placed = deps.store.withAttr('ComponentLocation', 'component_id', component.attrs.id ?? null).find((entry) => entry.attrs.location_id === SERVER_LOCATION_ID);
  const stored = placed && typeof placed.attrs.resource_identifier === 'string' && deps.serverLocation.storage.head(placed.attrs.resource_identifier);
  if (!stored) throw validationError(`Component "${String(component.attrs.id)}" has no data in the server location to encode.`);
  let versionId: string | null = null;
  if (operation.version_id !== undefined && operation.version_id !== null) {
    versionId = findVisible({ store: deps.store, actor }, entityDef('AssetVersion'), [operation.version_id]).attrs.id as string;
  }
  const job: EncodeJob = {
    jobId: randomUUID(),
    componentId: component.attrs.id as string,
    versionId,
    keepOriginal: operation.keep_original === true,
    requestedBy: actor.username,
  };
  deps.encodeJobs.push(job);
  if (deps.encodeJobs.length > maxEncodeJobs) deps.encodeJobs.shift();
  return { action: 'encode_media', job_id: job.jobId };
}

/** Computed attributes: `link` (the path from the project, as the web UI's breadcrumb) and ComponentLocation `url`. */
export function computed(store: EntityStore, entity: Entity, name: string): StoredValue {
  if (name !== 'link') return null;
  const path: StoredValue[] = [];
  let at: Entity | undefined = entity.type === 'AssetVersion' ? undefined : entity;
  if (entity.type === 'AssetVersion') {
    const asset = typeof entity.attrs.asset_id === 'string' ? store.byId(entity.attrs.asset_id) : undefined;
    path.push({ type: 'AssetVersion', id: entity.attrs.id as string, name: `v${String(entity.attrs.version).padStart(3, '0')}` });
    if (asset) path.push({ type: 'Asset', id: asset.attrs.id as string, name: String(asset.attrs.name) });
    at = typeof asset?.attrs.context_id === 'string' ? store.byId(asset.attrs.context_id) : undefined;
  }
  for (let depth = 0; at && depth < 32; depth++) {
    path.push({ type: at.type === 'Project' ? 'Project' : 'TypedContext', id: at.attrs.id as string, name: String(at.attrs.name) });
    at = typeof at.attrs.parent_id === 'string' ? store.byId(at.attrs.parent_id) : undefined;
  }
  return path.reverse();
}
