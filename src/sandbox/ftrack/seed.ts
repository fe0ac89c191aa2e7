import { createHash } from 'node:crypto';
import { fixtureMovie, textDocument, thumbnailPng, type FixtureMovieName } from '../media.ts';
import type { ObjectStorage } from '../storage/object-storage.ts';
import type { Accounts } from './access.ts';
import { SERVER_LOCATION_ID, UNMANAGED_LOCATION_ID, type ConcreteTypeName } from './schema.ts';
import type { EntityStore, StoredValue } from './store.ts';

// The ftrack sandbox's seed, the same ids and bytes on every start: project "demo" (artist and coord) with sequence
// sq010, shots sh010–sh040, a compositing and an animation task on each, an asset per shot with versions whose
// "main" components are small real movies in ftrack.server (src/sandbox/media/), thumbnails on some, one review
// component with its ftr_meta, one component only in ftrack.unmanaged (no data on the server); project "backlot"
// for `outsider` only. Users log in with their own API key, or with the site's key naming them.

export interface SeedResult {
  siteApiKey: string;
  /** Each seeded user's personal API key. */
  apiKeys: Record<SeededUser, string>;
  defaultContextStatusId: string;
}

export type SeededUser = 'ami-transfer' | 'artist' | 'coord' | 'outsider';

/** A stable UUID for a seeded name (SHA-1 based, version 5 layout). */
export function seedId(name: string): string {
  const hex = createHash('sha1').update(`ftrack-sandbox:${name}`).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const seededAt = '2025-03-03T09:00:00';

export async function seedFtrack(store: EntityStore, accounts: Accounts, storage: ObjectStorage, siteApiKey: string): Promise<SeedResult> {
  const add = (type: ConcreteTypeName, name: string, attrs: Record<string, StoredValue>): string => {
    const id = seedId(`${type}/${name}`);
    store.insert({ type, attrs: { id, ...attrs } });
    return id;
  };

  // Site setup.
  store.insert({ type: 'Location', attrs: { id: SERVER_LOCATION_ID, name: 'ftrack.server', label: 'ftrack server', description: 'Data kept by the server' } });
  store.insert({ type: 'Location', attrs: { id: UNMANAGED_LOCATION_ID, name: 'ftrack.unmanaged', label: 'Unmanaged', description: 'Files referred to by path' } });
  const status = {
    notStarted: add('Status', 'Not started', { name: 'Not started', color: '#cccccc', sort: 0 }),
    inProgress: add('Status', 'In progress', { name: 'In progress', color: '#2c93e2', sort: 1 }),
    pendingReview: add('Status', 'Pending Review', { name: 'Pending Review', color: '#e5a33b', sort: 2 }),
    approved: add('Status', 'Approved', { name: 'Approved', color: '#4cae4c', sort: 3 }),
  };
  const taskType = {
    compositing: add('Type', 'Compositing', { name: 'Compositing', color: '#7b68ee' }),
    animation: add('Type', 'Animation', { name: 'Animation', color: '#20b2aa' }),
  };
  const assetType = {
    upload: add('AssetType', 'Upload', { name: 'Upload', short: 'upload' }),
    geometry: add('AssetType', 'Geometry', { name: 'Geometry', short: 'geo' }),
  };

  // List categories, as a new site has them: every list (a playlist) names one.
  add('ListCategory', 'Default', { name: 'Default' });
  add('ListCategory', 'Dailies', { name: 'Dailies' });

  // Users: the service's own (an administrator, for the site's key) and the people of the menu page.
  const apiKeys = {} as Record<SeededUser, string>;
  const user = (username: SeededUser | 'former', first: string, last: string, active = true): string => {
    const id = add('User', username, { username, first_name: first, last_name: last, email: `${username}@sandbox.test`, is_active: active, thumbnail_id: null });
    if (username !== 'former') apiKeys[username] = seedId(`api-key/${username}`);
    return id;
  };
  const artist = user('artist', 'Ada', 'Artist');
  user('coord', 'Cora', 'Coordinator');
  user('outsider', 'Otto', 'Outsider');
  user('ami-transfer', 'ami-transfer', 'service');
  user('former', 'Fran', 'Former', false);

  const projectId = (name: string, fullName: string) =>
    add('Project', name, { name, full_name: fullName, context_type: 'show', status: 'active', is_private: false, root: name, thumbnail_id: null, created_at: seededAt });
  const demo = projectId('demo', 'Demo');
  const backlot = projectId('backlot', 'Backlot');
  accounts.add({ username: 'ami-transfer', role: 'administrator', projects: 'all', personalApiKey: apiKeys['ami-transfer'] });
  accounts.add({ username: 'artist', role: 'user', projects: new Set([demo]), personalApiKey: apiKeys.artist });
  accounts.add({ username: 'coord', role: 'project manager', projects: new Set([demo]), personalApiKey: apiKeys.coord });
  accounts.add({ username: 'outsider', role: 'user', projects: new Set([backlot]), personalApiKey: apiKeys.outsider });
  accounts.add({ username: 'former', role: 'user', projects: new Set([demo]), personalApiKey: seedId('api-key/former') });

  const context = (type: 'Sequence' | 'Shot' | 'Task', path: string, name: string, parent: string, project: string, extra: Record<string, StoredValue> = {}) =>
    add(type, path, {
      name,
      context_type: 'task',
      parent_id: parent,
      project_id: project,
      status_id: status.inProgress,
      type_id: null,
      description: '',
      thumbnail_id: null,
      created_at: seededAt,
      ...extra,
    });

  /** A FileComponent with real bytes in ftrack.server (its key: the component id, as the official uploader sets it). */
  let thumbnails = 0;
  const component = async (path: string, name: string, versionId: string | null, bytes: { type: string; source: Buffer | NodeJS.ReadableStream; contentType: string }) => {
    const id = seedId(`FileComponent/${path}`);
    const stored = await storage.putObject(id, bytes.source, bytes.contentType);
    store.insert({ type: 'FileComponent', attrs: { id, name, file_type: bytes.type, size: stored.size, system_type: 'file', version_id: versionId, created_at: seededAt } });
    store.insert({ type: 'ComponentLocation', attrs: { id: seedId(`ComponentLocation/${path}`), component_id: id, location_id: SERVER_LOCATION_ID, resource_identifier: id, created_at: seededAt } });
    return id;
  };
  const movie = (name: FixtureMovieName) => {
    const file = fixtureMovie(name);
    return { type: file.name.slice(file.name.lastIndexOf('.')), source: file.open() as NodeJS.ReadableStream, contentType: file.contentType };
  };
  const thumbnail = (label: string) => {
    thumbnails += 1;
    return { type: '.png', source: thumbnailPng(thumbnails, label), contentType: 'image/png' };
  };

  const versionOf = async (path: string, assetId: string, taskId: string | null, version: number, media: FixtureMovieName, withThumbnail: boolean) => {
    const id = seedId(`AssetVersion/${path}`);
    store.insert({
      type: 'AssetVersion',
      attrs: {
        id,
        asset_id: assetId,
        task_id: taskId,
        version,
        comment: `${path}: seeded`,
        thumbnail_id: null,
        user_id: artist,
        status_id: status.pendingReview,
        is_published: true,
        date: seededAt,
        created_at: seededAt,
      },
    });
    await component(`${path}/main`, 'main', id, movie(media));
    if (withThumbnail) {
      const thumbId = await component(`${path}/thumbnail`, 'thumbnail', id, thumbnail(path));
      const entity = store.byId(id);
      if (entity) entity.attrs.thumbnail_id = thumbId;
    }
    return id;
  };

  // Demo: sq010 with four shots, two tasks each, an asset per shot.
  const sq010 = context('Sequence', 'demo/sq010', 'sq010', demo, demo);
  const movies: FixtureMovieName[] = ['comp', 'turntable', 'playblast'];
  for (const [index, shotName] of ['sh010', 'sh020', 'sh030', 'sh040'].entries()) {
    const shot = context('Shot', `demo/${shotName}`, shotName, sq010, demo, { description: `Shot ${shotName}` });
    const comp = context('Task', `demo/${shotName}/compositing`, 'compositing', shot, demo, { type_id: taskType.compositing, status_id: status.notStarted });
    context('Task', `demo/${shotName}/animation`, 'animation', shot, demo, { type_id: taskType.animation, status_id: status.notStarted });
    if (shotName === 'sh040') continue; // no asset yet: a first upload creates one
    const asset = add('Asset', `demo/${shotName}_comp`, { name: `${shotName}_comp`, context_id: shot, type_id: assetType.upload });
    const versions = shotName === 'sh010' ? 2 : 1;
    for (let v = 1; v <= versions; v++) {
      await versionOf(`demo/${shotName}_comp_v${String(v).padStart(3, '0')}`, asset, comp, v, movies[(index + v) % movies.length]!, v === versions && index < 2);
    }
  }
  const sh010 = store.byId(seedId('Shot/demo/sh010'));
  const latest = store.byId(seedId('AssetVersion/demo/sh010_comp_v002'));
  if (sh010 && latest) sh010.attrs.thumbnail_id = latest.attrs.thumbnail_id ?? null;

  // sh010 v002 is up for review: an `ftrackreview-mp4` component described by its ftr_meta (ftrack.md).
  const reviewId = await component('demo/sh010_comp_v002/review', 'ftrackreview-mp4', seedId('AssetVersion/demo/sh010_comp_v002'), movie('comp'));
  store.insert({
    type: 'Metadata',
    attrs: { parent_id: reviewId, parent_type: 'FileComponent', key: 'ftr_meta', value: JSON.stringify({ frameIn: 0, frameOut: 48, frameRate: 24, width: 320, height: 180 }) },
  });

  // A prop asset on the project itself, whose one component lives only in ftrack.unmanaged: no data to download.
  const chair = add('Asset', 'demo/chair', { name: 'chair', context_id: demo, type_id: assetType.geometry });
  const chairVersion = seedId('AssetVersion/demo/chair_v001');
  store.insert({
    type: 'AssetVersion',
    attrs: { id: chairVersion, asset_id: chair, task_id: null, version: 1, comment: 'modelled', thumbnail_id: null, user_id: artist, status_id: status.approved, is_published: true, date: seededAt, created_at: seededAt },
  });
  const unmanaged = seedId('FileComponent/demo/chair_v001/model');
  store.insert({ type: 'FileComponent', attrs: { id: unmanaged, name: 'model', file_type: '.abc', size: 4096, system_type: 'file', version_id: chairVersion, created_at: seededAt } });
  store.insert({
    type: 'ComponentLocation',
    attrs: { id: seedId('ComponentLocation/demo/chair_v001/model'), component_id: unmanaged, location_id: UNMANAGED_LOCATION_ID, resource_identifier: '/mnt/projects/demo/assets/chair/chair_v001.abc', created_at: seededAt },
  });
  await component('demo/chair_v001/notes', 'notes', chairVersion, { type: '.txt', source: textDocument(['chair v001', 'modelled in 2025']), contentType: 'text/plain' });

  // Backlot, outsider's only project.
  const bl010 = context('Shot', 'backlot/bl010', 'bl010', backlot, backlot);
  const blTask = context('Task', 'backlot/bl010/compositing', 'compositing', bl010, backlot, { type_id: taskType.compositing });
  const blAsset = add('Asset', 'backlot/bl010_comp', { name: 'bl010_comp', context_id: bl010, type_id: assetType.upload });
  await versionOf('backlot/bl010_comp_v001', blAsset, blTask, 1, 'turntable', false);

  return { siteApiKey, apiKeys, defaultContextStatusId: status.notStarted };
}
