import express, { type Request, type Router } from 'express';
import { mayEdit, viewerOf, visibilityFor } from './access.ts';
import { ApiError, API_CODE, badRequest, forbidden, notFound } from './api-errors.ts';
import { dropConnections, syncConnections } from './connections.ts';
import {
  compareRecords,
  compileFilter,
  FilterError,
  parseArrayFilters,
  parseHashFilters,
  parseQueryFilters,
  parseSort,
  type FilterGroup,
} from './filters.ts';
import { parseFieldValues } from './input-values.ts';
import { isEntityRef, type StoredRecord } from './records.ts';
import { linkPath, parseFields, renderRecord, type FieldSelection } from './render.ts';
import { entityDef, resolveEntityType, type EntityType } from './schema.ts';
import type { SiteContext } from './site-context.ts';

// Records: read one, list, _search (both filter syntaxes), create, update, delete — as the REST API does them.

const ARRAY_FILTERS = 'application/vnd+shotgun.api3_array+json';
const HASH_FILTERS = 'application/vnd+shotgun.api3_hash+json';
const MAX_PAGE_SIZE = 500;

export function entityRouter(site: SiteContext): Router {
  const router = express.Router();
  const json = express.json({ limit: '10mb', type: ['application/json', ARRAY_FILTERS, HASH_FILTERS] });

  router.get('/api/v1/entity/:entity', async (req, res) => {
    const type = entityTypeParam(req);
    const filters = withFilterErrors(() => parseQueryFilters(req.query as Record<string, unknown>));
    res.json(await searchPage(site, req, type, filters, {}));
  });

  router.post('/api/v1/entity/:entity/_search', json, async (req, res) => {
    const type = entityTypeParam(req);
    const body = searchBody(req.body);
    const contentType = req.get('content-type')?.split(';')[0]?.trim().toLowerCase();
    let filters: FilterGroup;
    if (contentType === ARRAY_FILTERS) filters = withFilterErrors(() => parseArrayFilters(body.filters ?? []));
    else if (contentType === HASH_FILTERS) {
      filters = withFilterErrors(() => parseHashFilters(body.filters ?? { logical_operator: 'and', conditions: [] }));
    } else {
      throw new ApiError(415, API_CODE.unsupportedMediaType, `_search requires Content-Type ${ARRAY_FILTERS} or ${HASH_FILTERS}`);
    }
    res.json(await searchPage(site, req, type, filters, body));
  });

  router.get('/api/v1/entity/:entity/:id', async (req, res) => {
    const type = entityTypeParam(req);
    const record = visibleRecord(site, req, type);
    const fields = parseFields(type, req.query.fields);
    res.json({ data: await renderRecord(site, record, fields), links: { self: linkPath(record) } });
  });

  router.post('/api/v1/entity/:entity', json, async (req, res) => {
    const type = entityTypeParam(req);
    const viewer = res.locals.viewer;
    const canSee = visibilityFor(site.store, viewer);
    const values = parseFieldValues(type, req.body, { store: site.store, canSee });
    const draft: StoredRecord = { type, id: 0, retired: false, fields: values };
    if (!mayEdit(viewer, draft, canSee)) throw forbidden(`You do not have permission to create ${type} records here`);
    const record = site.store.insert(type, values, viewer.user);
    syncConnections(site.store, record, {}, Object.keys(values));
    res.status(201).json({ data: await renderRecord(site, record, optionFields(type, req)), links: { self: linkPath(record) } });
  });

  router.put('/api/v1/entity/:entity/:id', json, async (req, res) => {
    const type = entityTypeParam(req);
    const viewer = res.locals.viewer;
    const record = editableRecord(site, req, type);
    const canSee = visibilityFor(site.store, viewer);
    const values = parseFieldValues(type, req.body, { store: site.store, canSee });
    if (isEntityRef(values.project) && !canSee({ ...record, fields: { ...record.fields, project: values.project } })) {
      throw forbidden(`You may not move this ${type} into that project`);
    }
    const before = Object.fromEntries(Object.keys(values).map((field) => [field, record.fields[field] ?? null]));
    site.store.update(record, values, viewer.user);
    syncConnections(site.store, record, before, Object.keys(values));
    res.json({ data: await renderRecord(site, record, optionFields(type, req)), links: { self: linkPath(record) } });
  });

  router.delete('/api/v1/entity/:entity/:id', (req, res) => {
    const type = entityTypeParam(req);
    const record = editableRecord(site, req, type);
    dropConnections(site.store, record);
    site.store.retire(record);
    res.status(204).end();
  });

  return router;
}

export function entityTypeParam(req: Request): EntityType {
  const name = String(req.params.entity ?? '');
  const type = resolveEntityType(name);
  if (!type) throw badRequest(`'${name}' is not a valid entity type`);
  return type;
}

/** The record named by :entity/:id if the viewer may see it; 404 otherwise, so hidden records do not leak. */
export function visibleRecord(site: SiteContext, req: Request, type: EntityType): StoredRecord {
  const id = Number(req.params.id);
  if (!Number.isSafeInteger(id) || id <= 0) throw badRequest(`'${String(req.params.id)}' is not a valid record id`);
  const record = site.store.get(type, id);
  if (!record || !visibilityFor(site.store, viewerOf(req))(record)) throw notFound(`${type} ${id} not found`);
  return record;
}

/** The record if the viewer may change it: 404 when hidden, 403 when visible but not theirs to change. */
export function editableRecord(site: SiteContext, req: Request, type: EntityType): StoredRecord {
  const record = visibleRecord(site, req, type);
  const viewer = viewerOf(req);
  if (!mayEdit(viewer, record, visibilityFor(site.store, viewer))) {
    throw forbidden(`You do not have permission to change ${type} ${record.id}`);
  }
  return record;
}

interface SearchBody {
  filters?: unknown;
  fields?: unknown;
  sort?: unknown;
  page?: { size?: unknown; number?: unknown };
  options?: unknown;
}

function searchBody(body: unknown): SearchBody {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('The _search body must be a JSON object with filters, fields, sort, page and options');
  }
  return body as SearchBody;
}

async function searchPage(site: SiteContext, req: Request, type: EntityType, filters: FilterGroup, body: SearchBody) {
  const query = req.query as Record<string, unknown>;
  const fields: FieldSelection = parseFields(type, query.fields ?? body.fields);
  const size = pageParam(query['page[size]'] ?? body.page?.size, MAX_PAGE_SIZE, 'page[size]');
  const number = pageParam(query['page[number]'] ?? body.page?.number, 1, 'page[number]');
  if (size > MAX_PAGE_SIZE) throw badRequest(`page[size] must be at most ${MAX_PAGE_SIZE}`);
  const context = site.store;
  const matches = withFilterErrors(() => compileFilter(type, filters, context));
  const order = withFilterErrors(() => compareRecords(parseSort(type, query.sort ?? body.sort), context));
  const canSee = visibilityFor(site.store, viewerOf(req));
  const rows = site.store.all(type).filter((record) => canSee(record) && matches(record)).sort(order);
  const page = rows.slice((number - 1) * size, number * size);
  const base = `/api/v1/entity/${entityDef(type).plural}${req.path.endsWith('/_search') ? '/_search' : ''}`;
  const pageLink = (n: number): string => `${base}?page%5Bnumber%5D=${n}&page%5Bsize%5D=${size}`;
  // As on ShotGrid, `next` is there even when this page is the last or empty: clients stop on an empty page.
  const links: Record<string, string> = { self: pageLink(number), next: pageLink(number + 1) };
  if (number > 1) links.prev = pageLink(number - 1);
  return { data: await Promise.all(page.map((record) => renderRecord(site, record, fields))), links };
}

function pageParam(raw: unknown, fallback: number, name: string): number {
  if (raw === undefined || raw === '') return fallback;
  const value = typeof raw === 'number' ? raw : Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) throw badRequest(`${name} must be a positive integer`);
  return value;
}

function optionFields(type: EntityType, req: Request): FieldSelection {
  return parseFields(type, (req.query as Record<string, unknown>)['options[fields]']);
}

function withFilterErrors<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof FilterError) throw badRequest(error.message, { parameter: 'filters' });
    throw error;
  }
}
