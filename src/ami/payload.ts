import { unescape } from 'node:querystring';
// The fields of an AMI request (ami.md) turned into a typed payload, or an AmiPayloadError that names the field and
// says what was expected, for the 400 page. Strict where the service relies on a value (who, which entity type,
// which ids) and where a malformed value could only mean a forged or broken request; tolerant of what ShotGrid may
// add over time: unknown fields are ignored here (they still count for the signature, see verify.ts).

/** Every form field in arrival order, values decoded; duplicates kept (the parser refuses them). */
export type AmiFields = readonly (readonly [string, string])[];

export type SortDirection = 'asc' | 'desc';

export interface AmiPayload {
  user: { id: number; login: string };
  /** A ShotGrid entity type name: Version, Shot, CustomEntity01, … */
  entityType: string;
  /** The selected rows, in page order, without duplicates; empty when nothing was selected. */
  selectedIds: number[];
  title: string | null;
  pageId: number | null;
  serverHostname: string | null;
  referrerPath: string | null;
  sessionUuid: string | null;
  view: string | null;
  cols: string[];
  /** Kept whole: display names may themselves hold commas, so the list cannot be split reliably. */
  columnDisplayNames: string | null;
  sort: { column: string; direction: SortDirection }[];
  grouping: { column: string; method: string; direction: SortDirection }[];
  /** Sent only when every row of the page shares one project. */
  project: { id: number; name: string | null } | null;
}

export class AmiPayloadError extends Error {
  /** The form field at fault. */
  readonly field: string;

  constructor(field: string, message: string) {
    super(message);
    this.name = 'AmiPayloadError';
    this.field = field;
  }
}

export interface AmiPayloadLimits {
  /**
   * Most selected ids accepted. Default 100 000. `ids` (every row of the page: hundreds of thousands where the
   * item needs no selection) is never read, only signed: the service acts on the selection alone (ami.md).
   */
  maxIds?: number;
}

const entityTypePattern = /^[A-Z][A-Za-z0-9_]*$/;
const digitsPattern = /^\d+$/;

/** More fields than the limit in a form body: nothing past the limit was decoded. */
export class TooManyFieldsError extends Error {}

/**
 * The fields of an `application/x-www-form-urlencoded` body, in order, duplicates kept ('+' is a space), decoded
 * as browsers encode them (malformed %-escapes are kept as they are). Counted while splitting, and refused past
 * `maxFields`: URLSearchParams takes quadratic time on a body of valueless names (`a&a&a…`), minutes for 8 MiB.
 */
export function fieldsFromUrlEncoded(body: string, maxFields = Number.POSITIVE_INFINITY): AmiFields {
  const fields: [string, string][] = [];
  for (let start = 0; start <= body.length; ) {
    let end = body.indexOf('&', start);
    if (end === -1) end = body.length;
    if (end > start) {
      if (fields.length === maxFields) throw new TooManyFieldsError(`more than ${maxFields} fields`);
      const pair = body.slice(start, end);
      const equals = pair.indexOf('=');
      fields.push(equals === -1 ? [decodeFormPart(pair), ''] : [decodeFormPart(pair.slice(0, equals)), decodeFormPart(pair.slice(equals + 1))]);
    }
    start = end + 1;
  }
  return fields;
}

function decodeFormPart(text: string): string {
  // querystring.unescape: decodeURIComponent, falling back to a lenient byte decoder on a malformed escape.
  return unescape(text.replaceAll('+', ' '));
}

/**
 * Refuses a field whose name or value holds CR LF. The signed text is one `name=value\r\n` line per field, so a
 * value holding that sequence could be cut into other lines: the same signed text, another set of fields
 * (`title=a\r\nuser_login=x` regrouped). Run before the signature is checked. Other characters, line breaks
 * alone included, are user text (titles, display names) and stay.
 */
export function refuseLineForgery(fields: AmiFields): void {
  for (const [name, value] of fields) {
    if (name.includes('\r\n') || value.includes('\r\n')) {
      throw new AmiPayloadError(name.includes('\r\n') ? 'field name' : name, `The field ${quote(name)} holds a line break (CR LF), which no Action Menu Item sends.`);
    }
  }
}

export function parseAmiPayload(fields: AmiFields, limits: AmiPayloadLimits = {}): AmiPayload {
  const maxIds = limits.maxIds ?? 100_000;
  const form = new FormFields(fields);

  const selectedIds = parseIdList('selected_ids', form.optional('selected_ids'), maxIds);
  const projectId = form.optional('project_id');
  return {
    user: { id: parseId('user_id', form.required('user_id')), login: form.required('user_login') },
    entityType: parseEntityType(form.required('entity_type')),
    selectedIds,
    title: form.optional('title'),
    pageId: optionalId('page_id', form.optional('page_id')),
    serverHostname: form.optional('server_hostname'),
    referrerPath: form.optional('referrer_path'),
    sessionUuid: form.optional('session_uuid'),
    view: form.optional('view'),
    cols: splitList(form.optional('cols')).filter((column) => column !== ''),
    columnDisplayNames: form.optional('column_display_names'),
    sort: parseSort(form),
    grouping: parseGrouping(form),
    project: projectId === null ? null : { id: parseId('project_id', projectId), name: form.optional('project_name') },
  };
}

/** The fields by name, each allowed once: a repeated field would leave it open which value the signature vouched for. */
class FormFields {
  readonly #values = new Map<string, string>();

  constructor(fields: AmiFields) {
    for (const [name, value] of fields) {
      if (this.#values.has(name)) {
        throw new AmiPayloadError(name, `The field ${name} is sent more than once; an Action Menu Item sends each field once.`);
      }
      this.#values.set(name, value);
    }
  }

  required(name: string): string {
    const value = this.optional(name);
    if (value === null) throw new AmiPayloadError(name, `The field ${name} is missing; ShotGrid always sends it with an Action Menu Item.`);
    return value;
  }

  /** The value, or null when absent, empty, or the literal "undefined" (what ShotGrid's page script sends for "none"). */
  optional(name: string): string | null {
    const value = this.#values.get(name);
    return value === undefined || value === '' || value === 'undefined' ? null : value;
  }
}

function parseEntityType(value: string): string {
  if (!entityTypePattern.test(value)) {
    throw new AmiPayloadError(
      'entity_type',
      `The field entity_type must be a ShotGrid entity type name such as Version or CustomEntity01, not ${quote(value)}.`,
    );
  }
  return value;
}

function parseId(field: string, value: string): number {
  const text = value.trim();
  const id = digitsPattern.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new AmiPayloadError(field, `The field ${field} must be an id (a whole number from 1), not ${quote(value)}.`);
  }
  return id;
}

function optionalId(field: string, value: string | null): number | null {
  return value === null ? null : parseId(field, value);
}

/** A comma-separated id list: spaces around ids allowed, duplicates dropped (first kept), anything else refused. */
function parseIdList(field: string, value: string | null, maxIds: number): number[] {
  if (value === null || value.trim() === '') return [];
  const items = value.split(',');
  if (items.length > maxIds) {
    throw new AmiPayloadError(field, `The field ${field} lists ${items.length} ids; at most ${maxIds} are accepted. Select fewer rows.`);
  }
  const ids = new Set<number>();
  for (const item of items) {
    const text = item.trim();
    const id = digitsPattern.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(id) || id < 1) {
      throw new AmiPayloadError(
        field,
        `The field ${field} must be a comma-separated list of ids (whole numbers from 1); ${quote(item)} is not one.`,
      );
    }
    ids.add(id);
  }
  return [...ids];
}

function splitList(value: string | null): string[] {
  return value === null ? [] : value.split(',').map((item) => item.trim());
}

/**
 * ShotGrid sends the first key alone (sort_column, …) and, only when there are several, all of them as
 * comma-separated lists (sort_columns, …). The plural form, when present, is the whole list.
 */
function listField(form: FormFields, singular: string, plural: string): { field: string; items: string[] } {
  const all = form.optional(plural);
  if (all !== null) return { field: plural, items: splitList(all) };
  const first = form.optional(singular);
  return { field: singular, items: first === null ? [] : [first.trim()] };
}

function columnsOf(list: { field: string; items: string[] }): string[] {
  if (list.items.some((column) => column === '')) {
    throw new AmiPayloadError(list.field, `The field ${list.field} must be a comma-separated list of field names, without empty entries.`);
  }
  return list.items;
}

/** Directions paired with the columns by position; a column without one sorts ascending. */
function directionsFor(columns: string[], list: { field: string; items: string[] }): SortDirection[] {
  if (list.items.length > columns.length) {
    throw new AmiPayloadError(list.field, `The field ${list.field} has more directions (${list.items.length}) than there are columns (${columns.length}).`);
  }
  return columns.map((_, index) => {
    const direction = (list.items[index] ?? '').toLowerCase();
    if (direction === '') return 'asc';
    if (direction === 'asc' || direction === 'desc') return direction;
    throw new AmiPayloadError(list.field, `The field ${list.field} must hold asc or desc, not ${quote(list.items[index] ?? '')}.`);
  });
}

function parseSort(form: FormFields): AmiPayload['sort'] {
  const columns = columnsOf(listField(form, 'sort_column', 'sort_columns'));
  // A direction without a column (an unsorted page) says nothing.
  if (columns.length === 0) return [];
  const directions = directionsFor(columns, listField(form, 'sort_direction', 'sort_directions'));
  return columns.map((column, index) => ({ column, direction: directions[index] ?? 'asc' }));
}

function parseGrouping(form: FormFields): AmiPayload['grouping'] {
  const columns = columnsOf(listField(form, 'grouping_column', 'grouping_columns'));
  if (columns.length === 0) return [];
  const directions = directionsFor(columns, listField(form, 'grouping_direction', 'grouping_directions'));
  const methods = listField(form, 'grouping_method', 'grouping_methods');
  if (methods.items.length > columns.length) {
    throw new AmiPayloadError(methods.field, `The field ${methods.field} has more methods (${methods.items.length}) than there are columns (${columns.length}).`);
  }
  return columns.map((column, index) => ({ column, method: methods.items[index] ?? '', direction: directions[index] ?? 'asc' }));
}

/** A received value for a message: quoted, escaped, and cut short (ids lists can be megabytes). */
function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}
