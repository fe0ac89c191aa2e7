import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import ejs from 'ejs';
import express, { type Request, type Router } from 'express';
import { z } from 'zod';
import { amiTimestamp, computeAmiSignature } from '../ami/signature.ts';
import { publicDir, viewsDir } from '../paths.ts';
import { visibilityFor, type Viewer } from './access.ts';
import { badRequest, notFound } from './api-errors.ts';
import { compareRecords, parseSort, type FilterContext } from './filters.ts';
import { isEntityRef, isFileValue, type EntityRef, type StoredRecord, type StoredValue } from './records.ts';
import { renderImage } from './render.ts';
import { fieldDef, type EntityType } from './schema.ts';
import type { SiteContext } from './site-context.ts';

// The page that plays ShotGrid's right-click menu: a grid page per entity type, seen as one of the seeded people,
// whose Action Menu Items POST the same signed form a real site posts (ami.md). The browser asks
// POST /sandbox/menu/launch for the payload; the AMI's secret token stays here and only the signature leaves.

// ---------------------------------------------------------------------------------------------------------------
// The grid pages: their columns as a real site's default page shows them (field name → display name).

interface GridColumn {
  field: string;
  label: string;
}

interface GridPage {
  /** The Page record's id on a real site; sent as page_id and in referrer_path. */
  pageId: number;
  title: string;
  columns: readonly GridColumn[];
  defaultSort: string;
}

const GRID_PAGES: Partial<Record<EntityType, GridPage>> = {
  Version: {
    pageId: 2279,
    title: 'Versions',
    defaultSort: 'code',
    columns: [
      { field: 'code', label: 'Version Name' },
      { field: 'image', label: 'Thumbnail' },
      { field: 'entity', label: 'Link' },
      { field: 'sg_task', label: 'Task' },
      { field: 'sg_status_list', label: 'Status' },
      { field: 'user', label: 'Artist' },
      { field: 'description', label: 'Description' },
      // A display name with commas, as admins write them: column_display_names cannot be split on commas.
      { field: 'sg_path_to_frames', label: 'Frames (EXR, DPX)' },
      { field: 'project', label: 'Project' },
      { field: 'created_at', label: 'Date Created' },
    ],
  },
  Shot: {
    pageId: 2281,
    title: 'Shots',
    defaultSort: 'code',
    columns: [
      { field: 'code', label: 'Shot Code' },
      { field: 'image', label: 'Thumbnail' },
      { field: 'sg_sequence', label: 'Sequence' },
      { field: 'sg_status_list', label: 'Status' },
      { field: 'sg_cut_in', label: 'Cut In' },
      { field: 'sg_cut_out', label: 'Cut Out' },
      { field: 'description', label: 'Description' },
      { field: 'project', label: 'Project' },
    ],
  },
  Asset: {
    pageId: 2283,
    title: 'Assets',
    defaultSort: 'code',
    columns: [
      { field: 'code', label: 'Asset Name' },
      { field: 'image', label: 'Thumbnail' },
      { field: 'sg_asset_type', label: 'Type' },
      { field: 'sg_status_list', label: 'Status' },
      { field: 'description', label: 'Description' },
      { field: 'project', label: 'Project' },
    ],
  },
  Sequence: {
    pageId: 2285,
    title: 'Sequences',
    defaultSort: 'code',
    columns: [
      { field: 'code', label: 'Sequence Code' },
      { field: 'image', label: 'Thumbnail' },
      { field: 'sg_status_list', label: 'Status' },
      { field: 'description', label: 'Description' },
      { field: 'project', label: 'Project' },
    ],
  },
  Task: {
    pageId: 2287,
    title: 'Tasks',
    defaultSort: 'content',
    columns: [
      { field: 'content', label: 'Task Name' },
      { field: 'entity', label: 'Link' },
      { field: 'task_assignees', label: 'Assigned To' },
      { field: 'sg_status_list', label: 'Status' },
      { field: 'project', label: 'Project' },
    ],
  },
  Note: {
    pageId: 2289,
    title: 'Notes',
    defaultSort: 'subject',
    columns: [
      { field: 'subject', label: 'Subject' },
      { field: 'note_links', label: 'Links' },
      { field: 'user', label: 'Author' },
      { field: 'content', label: 'Body' },
      { field: 'sg_status_list', label: 'Status' },
      { field: 'project', label: 'Project' },
      { field: 'created_at', label: 'Date Created' },
    ],
  },
  Playlist: {
    pageId: 2291,
    title: 'Playlists',
    defaultSort: 'code',
    columns: [
      { field: 'code', label: 'Playlist Name' },
      { field: 'description', label: 'Description' },
      { field: 'versions', label: 'Versions' },
      { field: 'project', label: 'Project' },
      { field: 'created_at', label: 'Date Created' },
    ],
  },
};

const STATUS_NAMES: Readonly<Record<string, string>> = {
  wtg: 'Waiting to Start',
  ip: 'In Progress',
  rev: 'Pending Review',
  apr: 'Approved',
  fin: 'Final',
  opn: 'Open',
  act: 'Active',
  dis: 'Disabled',
};

const UNSORTABLE = ['multi_entity', 'url', 'image'];
const GROUPABLE = ['entity', 'status_list', 'list'];

function gridPage(type: EntityType): GridPage {
  const page = GRID_PAGES[type];
  if (!page) throw new Error(`No grid page for ${type}`);
  return page;
}

function isSortable(type: EntityType, field: string): boolean {
  const def = fieldDef(type, field);
  return def !== undefined && !UNSORTABLE.includes(def.type);
}

function isGroupable(type: EntityType, field: string): boolean {
  const def = fieldDef(type, field);
  return def !== undefined && GROUPABLE.includes(def.type);
}

// ---------------------------------------------------------------------------------------------------------------
// Who is looking, what they see, which menu items apply.

interface Person {
  id: number;
  login: string;
  name: string;
}

/** Active people, who may sign in and so open the menu. */
function people(site: SiteContext): Person[] {
  return site.store
    .all('HumanUser')
    .filter((user) => user.fields.sg_status_list === 'act')
    .map((user) => ({ id: user.id, login: String(user.fields.login), name: String(user.fields.name) }));
}

function viewerFor(person: Person): Viewer {
  const user: EntityRef = { type: 'HumanUser', id: person.id };
  return { user, principal: user };
}

/** The rows of a grid page: every record of the type the person may see, grouped then sorted as the page says. */
function pageRecords(site: SiteContext, type: EntityType, person: Person, view: PageView): StoredRecord[] {
  const canSee = visibilityFor(site.store, viewerFor(person));
  const context: FilterContext = { nameOf: (ref) => site.store.nameOf(ref), getRef: (ref) => site.store.getRef(ref) };
  // Groups ascending (as the page's grouping_direction says), rows within them by the page's sort.
  const keys = parseSort(type, `${view.grouping ? `${view.grouping},` : ''}${view.direction === 'desc' ? '-' : ''}${view.sort}`);
  return site.store.all(type).filter(canSee).sort(compareRecords(keys, context));
}

/** The project every row shares, or null when rows span projects (or there are none). */
function sharedProject(site: SiteContext, records: readonly StoredRecord[]): { id: number; name: string } | null {
  const ids = new Set(records.map((record) => site.store.projectOf(record)));
  const [only] = ids;
  if (ids.size !== 1 || only === undefined || only === null) return null;
  return { id: only, name: site.store.nameOf({ type: 'Project', id: only }) ?? '' };
}

interface MenuItem {
  id: number;
  title: string;
  folder: string;
  selectionRequired: boolean;
  openInOverlay: boolean;
}

/** The ActionMenuItems offered on this page: for its entity type (or every type), limited to its project if set. */
function menuItems(site: SiteContext, type: EntityType, projectId: number | null): MenuItem[] {
  return site.store
    .all('ActionMenuItem')
    .filter((ami) => amiApplies(ami, type, projectId))
    .sort((a, b) => Number(a.fields.list_order ?? 0) - Number(b.fields.list_order ?? 0) || a.id - b.id)
    .map((ami) => ({
      id: ami.id,
      title: String(ami.fields.title ?? ''),
      folder: typeof ami.fields.folder === 'string' ? ami.fields.folder : '',
      selectionRequired: ami.fields.selection_required === true,
      openInOverlay: ami.fields.open_in_overlay === true,
    }));
}

function amiApplies(ami: StoredRecord, type: EntityType, projectId: number | null): boolean {
  const entityType = ami.fields.entity_type;
  if (entityType !== null && entityType !== undefined && entityType !== type) return false;
  const projects = ami.fields.projects;
  if (!Array.isArray(projects) || projects.length === 0) return true;
  return projectId !== null && projects.some((project) => project.id === projectId);
}

/** Grid page types on which at least one menu item appears. */
function menuEntityTypes(site: SiteContext): EntityType[] {
  const types = Object.keys(GRID_PAGES) as EntityType[];
  const amis = site.store.all('ActionMenuItem');
  return types.filter((type) => amis.some((ami) => ami.fields.entity_type === null || ami.fields.entity_type === type));
}

// ---------------------------------------------------------------------------------------------------------------
// GET /sandbox/menu: the page.

interface PageView {
  type: EntityType;
  person: Person;
  sort: string;
  direction: 'asc' | 'desc';
  /** Grouping column, or '' for none. */
  grouping: string;
}

/** The page's state from its query string; anything unknown falls back to the page's default. */
function pageView(site: SiteContext, req: Request): PageView {
  const query = (name: string): string => (typeof req.query[name] === 'string' ? req.query[name] : '');
  const types = menuEntityTypes(site);
  const type = types.find((candidate) => candidate === query('entity_type')) ?? types[0] ?? 'Version';
  const everyone = people(site);
  const person = everyone.find((p) => p.login === query('login')) ?? everyone[0];
  if (!person) throw notFound('The sandbox has no active people');
  const page = gridPage(type);
  const onPage = (field: string): boolean => page.columns.some((column) => column.field === field);
  const sort = onPage(query('sort')) && isSortable(type, query('sort')) ? query('sort') : page.defaultSort;
  const grouping = onPage(query('group')) && isGroupable(type, query('group')) ? query('group') : '';
  return { type, person, sort, direction: query('direction') === 'desc' ? 'desc' : 'asc', grouping };
}

interface GridCell {
  field: string;
  text: string;
  /** Thumbnail URL (signed) for image columns. */
  image?: string;
  /** Status code for status columns, shown as a coloured pill. */
  status?: string;
}

async function gridCell(site: SiteContext, record: StoredRecord, field: string): Promise<GridCell> {
  const value = record.fields[field] ?? null;
  const def = fieldDef(record.type, field);
  if (def?.type === 'image') {
    const image = await renderImage(site, value);
    return image ? { field, text: '', image } : { field, text: '' };
  }
  if (def?.type === 'status_list' && typeof value === 'string') {
    return { field, text: STATUS_NAMES[value] ?? value, status: value };
  }
  return { field, text: displayText(site, value) };
}

function groupLabel(site: SiteContext, record: StoredRecord, field: string): string {
  const value = record.fields[field] ?? null;
  const text = fieldDef(record.type, field)?.type === 'status_list' && typeof value === 'string' ? (STATUS_NAMES[value] ?? value) : displayText(site, value);
  return text === '' ? '(No value)' : text;
}

function displayText(site: SiteContext, value: StoredValue): string {
  if (value === null) return '';
  if (Array.isArray(value)) return value.map((ref) => displayText(site, ref)).join(', ');
  if (isEntityRef(value)) return site.store.nameOf(value) ?? `${value.type} ${value.id}`;
  if (isFileValue(value)) return value.name;
  if (typeof value === 'boolean') return value ? 'Yes' : 'No';
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(value)) return value.slice(0, 16).replace('T', ' ');
  if (typeof value === 'object') return '';
  return String(value);
}

async function renderPage(site: SiteContext, view: PageView): Promise<string> {
  const page = gridPage(view.type);
  const records = pageRecords(site, view.type, view.person, view);
  const project = sharedProject(site, records);
  const columns = page.columns.map((column) => {
    const sortable = isSortable(view.type, column.field);
    const active = view.sort === column.field;
    const direction = active && view.direction === 'asc' ? 'desc' : 'asc';
    return {
      ...column,
      sortHref: sortable ? pageHref({ ...view, sort: column.field, direction }) : null,
      sorted: active ? view.direction : null,
    };
  });
  const rows = await Promise.all(
    records.map(async (record) => ({
      id: record.id,
      name: site.store.nameOf(record) ?? `${record.type} ${record.id}`,
      cells: await Promise.all(page.columns.map((column) => gridCell(site, record, column.field))),
      group: view.grouping ? groupLabel(site, record, view.grouping) : '',
    })),
  );
  const groups: { label: string; rows: typeof rows }[] = [];
  for (const row of rows) {
    const last = groups.at(-1);
    if (last && last.label === row.group) last.rows.push(row);
    else groups.push({ label: row.group, rows: [row] });
  }
  const groupingLabel = page.columns.find((column) => column.field === view.grouping)?.label ?? '';
  return ejs.renderFile(join(viewsDir, 'sandbox', 'menu.ejs'), {
    siteHost: new URL(site.siteUrl()).host,
    page,
    view,
    project,
    entityTypes: menuEntityTypes(site).map((type) => ({ type, title: gridPage(type).title })),
    people: people(site),
    columns,
    groupingOptions: page.columns.filter((column) => isGroupable(view.type, column.field)),
    groupingLabel,
    groups,
    rowCount: rows.length,
    menuItems: menuItems(site, view.type, project?.id ?? null),
    sessionUuid: randomUUID(),
  });
}

function pageHref(view: PageView): string {
  const query = new URLSearchParams({ entity_type: view.type, login: view.person.login, sort: view.sort, direction: view.direction });
  if (view.grouping) query.set('group', view.grouping);
  return `/sandbox/menu?${query}`;
}

// ---------------------------------------------------------------------------------------------------------------
// POST /sandbox/menu/launch: the signed AMI payload for what the page shows and has selected.

const idList = z.array(z.number().int().positive()).max(200_000);

const launchRequest = z.object({
  ami_id: z.number().int().positive(),
  login: z.string().min(1),
  entity_type: z.string().min(1),
  /** Rows selected, in page order. */
  selected_ids: idList,
  /** Every row of the page, in page order. */
  page_ids: idList,
  sort_column: z.string(),
  sort_direction: z.enum(['asc', 'desc']),
  /** '' when the page is not grouped. */
  grouping_column: z.string(),
  session_uuid: z.uuid(),
});

type LaunchRequest = z.infer<typeof launchRequest>;

export interface AmiLaunch {
  url: string;
  title: string;
  openInOverlay: boolean;
  /** The form fields in the order the form posts them. */
  fields: [string, string][];
}

function buildLaunch(site: SiteContext, input: LaunchRequest, now: Date): AmiLaunch {
  const person = people(site).find((p) => p.login === input.login);
  if (!person) throw badRequest(`No active person with login '${input.login}'`);
  const type = menuEntityTypes(site).find((candidate) => candidate === input.entity_type);
  if (!type) throw badRequest(`The menu page does not show ${input.entity_type}`);
  const page = gridPage(type);

  const canSee = visibilityFor(site.store, viewerFor(person));
  const rows = input.page_ids.map((id) => {
    const record = site.store.get(type, id);
    if (!record || !canSee(record)) throw badRequest(`${type} ${id} is not on ${person.login}'s page`);
    return record;
  });
  const onPage = new Set(input.page_ids);
  const stray = input.selected_ids.find((id) => !onPage.has(id));
  if (stray !== undefined) throw badRequest(`Selected ${type} ${stray} is not on the page`);
  if (!page.columns.some((c) => c.field === input.sort_column) || !isSortable(type, input.sort_column)) {
    throw badRequest(`Cannot sort the page by '${input.sort_column}'`);
  }
  if (input.grouping_column !== '' && !page.columns.some((c) => c.field === input.grouping_column && isGroupable(type, c.field))) {
    throw badRequest(`Cannot group the page by '${input.grouping_column}'`);
  }

  const project = sharedProject(site, rows);
  const ami = site.store.get('ActionMenuItem', input.ami_id);
  if (!ami || !amiApplies(ami, type, project?.id ?? null)) throw badRequest(`Action menu item ${input.ami_id} is not offered on this page`);
  const selectionRequired = ami.fields.selection_required === true;
  if (selectionRequired && input.selected_ids.length === 0) throw badRequest(`'${String(ami.fields.title)}' needs a selection`);
  const url = String(ami.fields.url ?? '');
  if (!/^https?:\/\//i.test(url)) throw badRequest('The sandbox plays only http(s) menu items, not custom protocols');

  const grouped = input.grouping_column !== '';
  const everyField: [string, string][] = [
    ['user_id', String(person.id)],
    ['user_login', person.login],
    // A grid page has no title of its own: the real site sends the JavaScript string "undefined".
    ['title', 'undefined'],
    ['entity_type', type],
    ['server_hostname', new URL(site.siteUrl()).host],
    ['referrer_path', `/page/${page.pageId}`],
    ['page_id', String(page.pageId)],
    ['session_uuid', input.session_uuid],
    ...(project ? ([['project_name', project.name], ['project_id', String(project.id)]] as [string, string][]) : []),
    ['view', 'Default'],
    ['cols', page.columns.map((c) => c.field).join(',')],
    ['column_display_names', page.columns.map((c) => c.label).join(',')],
    ['sort_column', input.sort_column],
    ['sort_direction', input.sort_direction],
    // Only a grouped page sends grouping fields at all (ami.md).
    ...(grouped
      ? ([['grouping_column', input.grouping_column], ['grouping_method', 'exact'], ['grouping_direction', 'asc']] as [string, string][])
      : []),
    ['selected_ids', input.selected_ids.join(',')],
    // ami.md: ids lists every row of the page, but equals selected_ids when the item requires a selection.
    ['ids', (selectionRequired ? input.selected_ids : input.page_ids).join(',')],
  ];
  // A real POST carries no blank fields (ami.md): nothing selected means no selected_ids, not an empty one.
  // The signature then covers exactly what is posted, the non-blank fields.
  const fields = everyField.filter(([, value]) => value !== '');
  const secret = ami.fields.secret_token;
  if (typeof secret === 'string' && secret !== '') {
    fields.push(['timestamp', amiTimestamp(now)]);
    fields.push(['signature', computeAmiSignature(fields, secret)]);
  }
  return { url, title: String(ami.fields.title ?? ''), openInOverlay: ami.fields.open_in_overlay === true, fields };
}

// ---------------------------------------------------------------------------------------------------------------

export function menuRouter(site: SiteContext): Router {
  const router = express.Router();
  router.use('/public/sandbox', express.static(join(publicDir, 'sandbox'), { index: false, redirect: false }));

  router.get('/sandbox/menu', async (req, res) => {
    const html = await renderPage(site, pageView(site, req));
    res.set('Content-Security-Policy', pageContentSecurityPolicy(site));
    res.set('Cache-Control', 'no-store');
    res.type('html').send(html);
  });

  // `ids` may list thousands of rows.
  router.post('/sandbox/menu/launch', express.json({ limit: '4mb' }), (req, res) => {
    const parsed = launchRequest.safeParse(req.body);
    if (!parsed.success) throw badRequest(z.prettifyError(parsed.error));
    const launch = buildLaunch(site, parsed.data, new Date());
    res.set('Cache-Control', 'no-store');
    res.json({ url: launch.url, title: launch.title, open_in_overlay: launch.openInOverlay, fields: launch.fields });
  });
  return router;
}

/** Scripts and styles from this site only; thumbnails from storage; forms and the overlay may go to any AMI URL. */
function pageContentSecurityPolicy(site: SiteContext): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' ${site.storage.origin}`,
    "connect-src 'self'",
    "form-action 'self' http: https:",
    'frame-src http: https:',
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}
