import { SEEDED_BEFORE_2025, SEEDED_SINCE_2025, statedFile } from './attachment-size.ts';
import type { Credentials } from './auth.ts';
import { sandboxDefaults } from './defaults.ts';
import { contentTypeFor } from './content-types.ts';
import {
  csvDocument,
  edlDocument,
  fixtureMovie,
  pdfDocument,
  textDocument,
  thumbnailPng,
  wavAudio,
  type FixtureMovieName,
  type MediaFile,
} from './media.ts';
import type { MalwareScans } from './malware-scan.ts';
import type { EntityRef, FileValue, RecordStore, StoredRecord, StoredValue } from './records.ts';
import type { ObjectStorage } from './storage/object-storage.ts';

// The sandbox's seed: the same records and bytes on every start. Project Demo (members artist and coord) with
// sequences, shots, assets, tasks, 40 versions, notes and attachments of every link type; project Backlot for
// `outsider`; two LocalStorages; the scripts and one ActionMenuItem per action of the service.
// Attachments are dated: most "since 2025" (no file_size, as on a current site), a few older ones with their size.
// Shot sh040 carries one attachment still being scanned for malware and one quarantined (malware-scan.ts).

/**
 * The service's actions and the entity types their seeded menu items are offered on (null: every type). An
 * ActionMenuItem names one entity type or all, so an action for three types is three items, as an admin sets it up.
 */
export const SERVICE_ACTIONS = [
  { action: 'upload-files', title: 'Upload files', entityTypes: ['Version'] },
  { action: 'attach-files', title: 'Attach files', entityTypes: null },
  { action: 'download-zip', title: 'Download as zip', entityTypes: null },
  { action: 'set-thumbnail', title: 'Set thumbnail', entityTypes: null },
  { action: 'submit-for-review', title: 'Submit for review', entityTypes: ['Shot', 'Asset', 'Task'] },
] as const;

export interface SeedOptions {
  scriptName: string;
  scriptKey: string;
  amiSecret: string;
  /** The service's public URL: the menu items point at `<serviceUrl>/ami/<action>`. */
  serviceUrl: string;
  /** Where the seed marks its attachments under malware scan or quarantined. */
  scans: MalwareScans;
}

/** When a seeded attachment was created: before 2025 it states its size and extension, since then neither. */
type Era = 'before-2025' | 'since-2025';

/** Backdates a seeded record, which insert() stamped with the present. */
function dated(record: StoredRecord, era: Era): string {
  const at = era === 'before-2025' ? SEEDED_BEFORE_2025 : SEEDED_SINCE_2025;
  record.fields.created_at = at;
  record.fields.updated_at = at;
  return at;
}

export async function seedSite(store: RecordStore, storage: ObjectStorage, options: SeedOptions): Promise<Credentials> {
  const put = async (key: string, file: MediaFile): Promise<{ key: string; size: number }> => {
    const stored = await storage.putObject(key, file.open(), file.contentType);
    return { key, size: stored.size };
  };
  const ref = (record: { type: EntityRef['type']; id: number }): EntityRef => ({ type: record.type, id: record.id });
  let thumbnailSeed = 0;
  const thumbnail = async (label: string): Promise<StoredValue> => {
    thumbnailSeed += 1;
    const key = `thumbnails/${thumbnailSeed}/${label}.png`;
    await storage.putObject(key, thumbnailPng(thumbnailSeed, label), 'image/png');
    return { key, content_type: 'image/png', readyAt: 0, failed: false };
  };

  // People and scripts.
  const person = (login: string, name: string, active = true) =>
    store.insert('HumanUser', { login, name, email: `${login}@sandbox.test`, sg_status_list: active ? 'act' : 'dis', image: null });
  const artist = ref(person('artist', 'Ada Artist'));
  const coord = ref(person('coord', 'Cora Coordinator'));
  const outsider = ref(person('outsider', 'Otto Outsider'));
  person('former', 'Fran Former', false);
  const script = store.insert('ApiUser', { firstname: options.scriptName, description: 'ami-transfer service' });
  const readonlyScript = store.insert('ApiUser', { firstname: 'readonly-script', description: 'A script without sudo' });
  const credentials: Credentials = {
    scripts: new Map([
      [options.scriptName, { apiUserId: script.id, key: options.scriptKey, maySudo: true }],
      ['readonly-script', { apiUserId: readonlyScript.id, key: 'readonly-key', maySudo: false }],
    ]),
    passwords: new Map(['artist', 'coord', 'outsider', 'former'].map((login) => [login, sandboxDefaults.userPassword])),
  };

  // Site setup.
  const primary = store.insert('LocalStorage', {
    code: 'primary',
    description: 'Project files',
    linux_path: '/mnt/projects',
    mac_path: '/Volumes/projects',
    windows_path: 'P:\\',
  });
  store.insert('LocalStorage', {
    code: 'renders',
    description: 'Render output',
    linux_path: '/mnt/renders',
    mac_path: '/Volumes/renders',
    windows_path: 'R:\\',
  });
  const [reviewTag, referenceTag] = ['review', 'reference', 'client'].map((name) => ref(store.insert('Tag', { name })));
  const demo = ref(
    store.insert('Project', { name: 'Demo', code: 'demo', sg_status: 'Active', archived: false, users: [artist, coord], image: await thumbnail('Demo') }),
  );
  const backlot = ref(
    store.insert('Project', { name: 'Backlot', code: 'backlot', sg_status: 'Active', archived: false, users: [outsider], image: null }),
  );
  SERVICE_ACTIONS.forEach((item, index) => {
    for (const entityType of item.entityTypes ?? [null]) {
      store.insert('ActionMenuItem', {
        title: item.title,
        url: `${options.serviceUrl.replace(/\/+$/, '')}/ami/${item.action}`,
        entity_type: entityType,
        list_order: index + 1,
        folder: 'ami-transfer',
        selection_required: true,
        open_in_overlay: false,
        secret_token: options.amiSecret,
        projects: [],
        permissions_groups: [],
      });
    }
  });

  // Demo: sequences, shots, assets, tasks.
  const sequences = [];
  for (const code of ['SQ010', 'SQ020']) {
    sequences.push(ref(store.insert('Sequence', { code, description: `Sequence ${code}`, project: demo, sg_status_list: 'ip', image: null })));
  }
  const shots = [];
  for (let i = 0; i < 6; i++) {
    const code = `sh0${i + 1}0`;
    shots.push(
      ref(
        store.insert('Shot', {
          code,
          description: `Shot ${code}`,
          project: demo,
          sg_sequence: sequences[i < 3 ? 0 : 1] ?? null,
          sg_status_list: ['wtg', 'ip', 'rev'][i % 3] ?? 'ip',
          sg_cut_in: 1001,
          sg_cut_out: 1048 + i * 12,
          image: i === 5 ? null : await thumbnail(code),
        }),
      ),
    );
  }
  const assets = [];
  for (const [code, kind] of [['hero_robot', 'Character'], ['sword', 'Prop'], ['forest', 'Environment'], ['ship', 'Vehicle']] as const) {
    assets.push(ref(store.insert('Asset', { code, description: `${kind} ${code}`, project: demo, sg_asset_type: kind, sg_status_list: 'ip', image: await thumbnail(code) })));
  }
  const task = (content: string, entity: EntityRef) =>
    ref(store.insert('Task', { content, project: demo, entity, task_assignees: [artist], sg_status_list: 'ip', image: null }));

  // 36 shot versions (comp and anim, v001–v003) and 4 asset look-dev versions.
  const movies: FixtureMovieName[] = ['comp', 'turntable', 'playblast'];
  const versions = new Map<string, EntityRef>();
  let index = 0;
  const version = async (code: string, entity: EntityRef, sgTask: EntityRef, latest: boolean) => {
    index += 1;
    const record = store.insert(
      'Version',
      {
        code,
        description: `${code} for review`,
        project: demo,
        entity,
        sg_task: sgTask,
        user: index % 2 === 0 ? coord : artist,
        sg_status_list: latest ? 'rev' : index % 3 === 0 ? 'apr' : 'ip',
        sg_uploaded_movie: null,
        sg_path_to_movie: `/mnt/projects/demo/review/${code}.mov`,
        sg_path_to_frames: `/mnt/renders/demo/${code}/${code}.####.exr`,
        playlists: [],
        image: index % 7 === 0 ? null : await thumbnail(code),
      },
      index % 2 === 0 ? coord : artist,
    );
    versions.set(code, ref(record));
    if (latest) {
      const movie = fixtureMovie(movies[index % movies.length] ?? 'comp');
      const name = `${code}${movie.name.slice(movie.name.lastIndexOf('.'))}`;
      await attach(record, { ...movie, name }, { field: 'sg_uploaded_movie' });
    }
  };
  for (const shot of shots) {
    const code = store.nameOf(shot) ?? '';
    for (const step of ['comp', 'anim']) {
      const shotTask = task(step, shot);
      for (let v = 1; v <= 3; v++) await version(`${code}_${step}_v00${v}`, shot, shotTask, v === 3);
    }
  }
  for (const asset of assets) await version(`${store.nameOf(asset)}_lookdev_v001`, asset, task('lookdev', asset), true);

  // Attachments of every link type, linked to records (and one file field set to a web link).
  async function attach(
    target: { type: EntityRef['type']; id: number },
    file: MediaFile,
    how: { field?: string; tags?: EntityRef[]; by?: EntityRef; era?: Era } = {},
  ): Promise<StoredRecord> {
    const record = store.get(target.type, target.id);
    const project = record?.type === 'Project' ? ref(record) : (record?.fields.project ?? null);
    const attachment = store.insert(
      'Attachment',
      {
        filename: file.name,
        project,
        attachment_links: how.field ? [] : [ref(target)],
        tag_list: how.tags ?? [],
        processing_status: null,
        description: null,
        image: null,
      },
      how.by ?? artist,
    );
    const stored = await put(`attachments/${attachment.id}/${file.name}`, file);
    const value: FileValue = {
      link_type: 'upload',
      attachmentId: attachment.id,
      name: file.name,
      content_type: file.contentType,
      key: stored.key,
      size: stored.size,
    };
    store.update(attachment, { this_file: value });
    if (how.field && record) store.update(record, { [how.field]: value });
    const createdAt = dated(attachment, how.era ?? 'since-2025');
    store.update(attachment, { ...statedFile(createdAt, file.name, stored.size) });
    attachment.fields.updated_at = createdAt;
    return attachment;
  }
  const link = (target: EntityRef, value: FileValue, size: number | null = null, era: Era = 'since-2025') => {
    const attachment = store.insert('Attachment', {
      filename: value.name,
      project: demo,
      attachment_links: [target],
      tag_list: [],
      processing_status: null,
      description: null,
      image: null,
    });
    const createdAt = dated(attachment, era);
    store.update(attachment, { this_file: { ...value, attachmentId: attachment.id }, ...statedFile(createdAt, value.name, size) });
    attachment.fields.updated_at = createdAt;
  };
  const bytes = (name: string, data: Buffer): MediaFile => ({ name, contentType: contentTypeFor(name), size: data.length, open: () => data });

  const [sh010, sh020, sh030, sh040] = shots as [EntityRef, EntityRef, EntityRef, EntityRef];
  const old = { era: 'before-2025' } as const;
  await attach(sh010, bytes('sh010_reference.png', thumbnailPng(101, 'sh010 reference')), { tags: [referenceTag!] });
  await attach(sh010, bytes('sh010_brief.pdf', pdfDocument('sh010 brief', ['Robot enters the forest clearing.', 'Hold on the sword.'])), old);
  await attach(sh010, bytes('sh010_shotlist.csv', csvDocument([['shot', 'cut_in', 'cut_out', 'notes'], ['sh010', 1001, 1048, 'Robot enters, looks around']])), old);
  link(sh010, { link_type: 'web', url: 'https://example.com/reference/sh010', name: 'Reference board', content_type: null });
  link(sh010, { link_type: 'local', localStorageId: primary.id, relative_path: 'demo/shots/sh010/plates/sh010_bg_v001.exr', name: 'sh010_bg_v001.exr', content_type: 'image/x-exr' }, 0, 'before-2025');
  await attach(sh020, bytes('sh020_notes.txt', textDocument(['Client notes for sh020', '- warmer grade', '- slower camera'])));
  await attach(sh030, wavAudio(30, 3, 'sh030_temp_mix.wav'), { tags: [reviewTag!] });
  await attach(assets[0]!, { ...fixtureMovie('turntable'), name: 'hero_robot_turntable.mp4' });
  await attach(assets[0]!, bytes('hero_robot_concept.png', thumbnailPng(102, 'hero_robot concept')), old);
  await attach(demo, bytes('demo_cut_v003.edl', edlDocument('DEMO CUT V003', shots.map((shot, i) => ({ reel: `A00${i + 1}`, clip: store.nameOf(shot) ?? '', frames: 48 + i * 12 })))), old);
  const sh010Comp = versions.get('sh010_comp_v001')!;
  store.update(store.getRef(sh010Comp)!, {
    sg_uploaded_movie: { link_type: 'web', url: 'https://example.com/review/sh010_comp_v001.mov', name: 'sh010_comp_v001.mov', content_type: 'video/quicktime' },
  });
  const sh020Comp = versions.get('sh020_comp_v003')!;
  await attach(sh020Comp, bytes('sh020_comp_v003_annotations.png', thumbnailPng(103, 'annotations')), old);

  // Malware scanning (shotgrid-rest.md, Download): on sh040, one file still being scanned (409 until the site's
  // malwareScanSeconds have passed) and one quarantined (410 for good). Their bytes are stored all the same.
  const pending = await attach(sh040, bytes('sh040_layout_notes.pdf', pdfDocument('sh040 layout', ['Camera move approved.', 'Waiting on the vendor plate.'])));
  options.scans.markScanning(pending.id);
  const infected = await attach(sh040, bytes('sh040_vendor_plugin.zip', textDocument(['A vendor package the scanner flagged.'])));
  options.scans.markQuarantined(infected.id);

  // Notes, some with attachments of their own.
  const noteTargets = ['sh010_comp_v003', 'sh020_comp_v003', 'sh030_anim_v002', 'hero_robot_lookdev_v001'];
  for (const [i, code] of noteTargets.entries()) {
    const target = versions.get(code)!;
    const entity = store.getRef(target)?.fields.entity as EntityRef;
    const note = store.insert(
      'Note',
      {
        subject: `Notes on ${code}`,
        content: ['Looks great, approved for client.', 'Edge of frame flickers at 1020.', 'Timing feels late.', 'Spec too strong.'][i] ?? '',
        project: demo,
        user: i % 2 === 0 ? coord : artist,
        note_links: [target, entity],
        sg_status_list: 'opn',
      },
      i % 2 === 0 ? coord : artist,
    );
    if (i < 2) await attach(note, bytes(`${code}_note_${i + 1}.png`, thumbnailPng(200 + i, `note ${i + 1}`)));
  }

  const dailies = store.insert('Playlist', { code: 'Dailies 2026-11-20', description: 'Latest comps', project: demo, versions: [], image: null });
  const latest = [...versions.entries()].filter(([code]) => code.endsWith('_v003')).map(([, v]) => v);
  store.update(dailies, { versions: latest });
  for (const v of latest) store.update(store.getRef(v)!, { playlists: [ref(dailies)] });

  // Backlot, the outsider's project: Demo's records must stay invisible to them, and theirs to Demo's members.
  const bl010 = ref(store.insert('Shot', { code: 'bl010', description: 'Backlot shot', project: backlot, sg_sequence: null, sg_status_list: 'ip', sg_cut_in: 1001, sg_cut_out: 1024, image: null }));
  const blTask = ref(store.insert('Task', { content: 'comp', project: backlot, entity: bl010, task_assignees: [outsider], sg_status_list: 'ip', image: null }));
  const blVersion = store.insert('Version', {
    code: 'bl010_comp_v001',
    description: 'Backlot comp',
    project: backlot,
    entity: bl010,
    sg_task: blTask,
    user: outsider,
    sg_status_list: 'rev',
    sg_uploaded_movie: null,
    sg_path_to_movie: null,
    sg_path_to_frames: null,
    playlists: [],
    image: await thumbnail('bl010_comp_v001'),
  });
  await attach(blVersion, { ...fixtureMovie('comp'), name: 'bl010_comp_v001.mp4' }, { field: 'sg_uploaded_movie', by: outsider });
  return credentials;
}
