import { entityTypes, fieldDef, type EntityType, type FieldDef, type FieldType } from './schema.ts';
import { isImageValue, type EntityRef, type StoredRecord } from './records.ts';

// ShotGrid filter parsing, evaluation and sorting for the sandbox's `_search` and list endpoints.
// Relations per data type follow the Python API's "Valid Operators By Data Type" table, so a filter the real site
// would refuse is refused here too (as FilterError, which the REST layer answers with 400).

export class FilterError extends Error {
  override name = 'FilterError';
}

export interface Condition {
  path: string;
  relation: string;
  values: unknown[];
}

export interface FilterGroup {
  logical_operator: 'and' | 'or';
  conditions: (Condition | FilterGroup)[];
}

export interface FilterContext {
  /** Display name of a linked record (RecordStore.nameOf). */
  nameOf(ref: EntityRef): string | null;
  /** Live record behind a link (RecordStore.getRef); needed only for deep paths like `entity.Shot.code`. */
  getRef?(ref: EntityRef): StoredRecord | undefined;
}

/** One link followed by a deep path: `entity.Shot` in `entity.Shot.code`. */
export interface Hop {
  field: string;
  target: EntityType;
  /** multi_entity hop: the condition holds when any linked record satisfies it. */
  many: boolean;
}

export interface ResolvedPath {
  path: string;
  hops: Hop[];
  /** Entity type owning the final field. */
  owner: EntityType;
  field: string;
  def: FieldDef;
}

export interface SortKey {
  path: string;
  direction: 'asc' | 'desc';
  resolved: ResolvedPath;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing: three wire forms into one FilterGroup. Structure only; fields and relations are checked by compileFilter,
// which knows the entity type.

/** `application/vnd+shotgun.api3_array+json`: a list of conditions, all of which must hold. */
export function parseArrayFilters(input: unknown): FilterGroup {
  if (!Array.isArray(input)) throw new FilterError('filters must be an array of conditions for api3_array+json');
  return { logical_operator: 'and', conditions: input.map((item, index) => parseArrayCondition(item, `filters[${index}]`)) };
}

/** `application/vnd+shotgun.api3_hash+json`: `{logical_operator, conditions}` with nested groups. */
export function parseHashFilters(input: unknown): FilterGroup {
  return parseGroup(input, 'filters');
}

/**
 * GET list endpoint: `filter[code]=sh010` means `is`; `filter[id]=1,2` (or a repeated key) means `in`.
 * Accepts both flat `filter[...]` keys (Express's simple query parser) and a nested `filter` object (qs).
 */
export function parseQueryFilters(query: Record<string, unknown>): FilterGroup {
  const conditions: Condition[] = [];
  for (const [key, raw] of Object.entries(query)) {
    const match = /^filter\[(.+)\]$/.exec(key);
    if (match?.[1] !== undefined) conditions.push(queryCondition(match[1], raw));
    else if (key === 'filter') {
      if (!isPlainObject(raw)) throw new FilterError('filter must be given as filter[field]=value');
      for (const [path, value] of Object.entries(raw)) conditions.push(queryCondition(path, value));
    }
  }
  return { logical_operator: 'and', conditions };
}

function queryCondition(path: string, raw: unknown): Condition {
  const parts = typeof raw === 'string' ? [raw] : Array.isArray(raw) && raw.every((v) => typeof v === 'string') ? raw : null;
  if (parts === null) throw new FilterError(`filter[${path}] must be a string value`);
  const values = parts.flatMap((part: string) => part.split(',')).map((v) => v.trim());
  // An empty value asks for an unset field, as `is null` does.
  if (values.length === 1) return { path, relation: 'is', values: [values[0] === '' ? null : values[0]] };
  return { path, relation: 'in', values };
}

function parseArrayCondition(input: unknown, where: string): Condition {
  if (isPlainObject(input)) {
    // Nesting needs the hash syntax; accepting it here would hide a client sending the wrong Content-Type.
    throw new FilterError(`${where}: nested filter groups need Content-Type application/vnd+shotgun.api3_hash+json`);
  }
  if (!Array.isArray(input)) throw new FilterError(`${where} must be an array [field, relation, value...]`);
  const [path, relation, ...rest] = input as unknown[];
  if (typeof path !== 'string' || path === '') throw new FilterError(`${where}: the field name must be a non-empty string`);
  if (typeof relation !== 'string') throw new FilterError(`${where}: the relation must be a string`);
  if (rest.length === 0) throw new FilterError(`${where}: missing value for "${path}" ${relation}`);
  return { path, relation, values: unwrap(rest) };
}

function parseGroup(input: unknown, where: string): FilterGroup {
  if (!isPlainObject(input)) throw new FilterError(`${where} must be an object {logical_operator, conditions} for api3_hash+json`);
  const operator = input.logical_operator;
  if (operator !== 'and' && operator !== 'or') {
    throw new FilterError(`${where}.logical_operator must be "and" or "or", got ${describe(operator)}`);
  }
  if (!Array.isArray(input.conditions)) throw new FilterError(`${where}.conditions must be an array`);
  const conditions = input.conditions.map((item: unknown, index: number): Condition | FilterGroup => {
    const at = `${where}.conditions[${index}]`;
    if (Array.isArray(item)) return parseArrayCondition(item, at);
    if (isPlainObject(item) && 'logical_operator' in item) return parseGroup(item, at);
    return parseObjectCondition(item, at);
  });
  return { logical_operator: operator, conditions };
}

function parseObjectCondition(input: unknown, where: string): Condition {
  if (!isPlainObject(input)) throw new FilterError(`${where} must be a condition or a group`);
  const { path, relation, values } = input;
  if (typeof path !== 'string' || path === '') throw new FilterError(`${where}.path must be a non-empty string`);
  if (typeof relation !== 'string') throw new FilterError(`${where}.relation must be a string`);
  if (!Array.isArray(values)) throw new FilterError(`${where}.values must be an array`);
  return { path, relation, values: unwrap(values) };
}

/** `["id","in",[1,2]]` and `["id","in",1,2]` mean the same: a lone list argument is the value list. */
function unwrap(values: unknown[]): unknown[] {
  return values.length === 1 && Array.isArray(values[0]) ? [...(values[0] as unknown[])] : [...values];
}

// ---------------------------------------------------------------------------------------------------------------
// Paths

/** Resolves `code` or a deep path `entity.Shot.code` (any number of `field.Type` hops) against the schema. */
export function resolvePath(type: EntityType, path: string): ResolvedPath {
  const segments = path.split('.');
  if (segments.length % 2 === 0 || segments.some((s) => s === '')) {
    throw new FilterError(`Invalid field path "${path}": expected field or field.EntityType.field`);
  }
  const hops: Hop[] = [];
  let owner = type;
  for (let i = 0; i + 2 < segments.length; i += 2) {
    const field = segments[i] as string;
    const targetName = segments[i + 1] as string;
    const def = requireField(owner, field, path);
    if (def.type !== 'entity' && def.type !== 'multi_entity') {
      throw new FilterError(`Invalid field path "${path}": ${owner}.${field} is a ${def.type} field, not a link`);
    }
    const target = entityTypes.find((t) => t === targetName);
    if (target === undefined || !(def.links ?? []).includes(target)) {
      throw new FilterError(`Invalid field path "${path}": ${owner}.${field} does not link to "${targetName}"`);
    }
    hops.push({ field, target, many: def.type === 'multi_entity' });
    owner = target;
  }
  const field = segments[segments.length - 1] as string;
  return { path, hops, owner, field, def: requireField(owner, field, path) };
}

function requireField(type: EntityType, field: string, path: string): FieldDef {
  const def = fieldDef(type, field);
  if (def === undefined) {
    throw new FilterError(path === field ? `Unknown field "${field}" on ${type}` : `Unknown field "${field}" on ${type} in path "${path}"`);
  }
  // A write-only field (a secret) must not be probed through filters either.
  if (def.writeOnly) throw new FilterError(`Field "${field}" on ${type} cannot be filtered or sorted`);
  return def;
}

function fieldValue(record: StoredRecord, field: string): unknown {
  if (field === 'id') return record.id;
  return record.fields[field] ?? null;
}

/** The final field's values for a record: one for plain paths; for deep paths one per record reached. */
function leafValues(record: StoredRecord, resolved: ResolvedPath, context: FilterContext): unknown[] {
  if (resolved.hops.length === 0) return [fieldValue(record, resolved.field)];
  const getRef = requireGetRef(context, resolved.path);
  let reached = [record];
  for (const hop of resolved.hops) {
    const next: StoredRecord[] = [];
    for (const from of reached) {
      const value = fieldValue(from, hop.field);
      const refs = hop.many ? asRefList(value) : asRef(value) === null ? [] : [value as EntityRef];
      for (const ref of refs) {
        const linked = ref.type === hop.target ? getRef(ref) : undefined;
        if (linked) next.push(linked);
      }
    }
    reached = next;
  }
  // Nothing linked: the deep field reads as unset (so `is null` matches), like an outer join.
  return reached.length === 0 ? [null] : reached.map((r) => fieldValue(r, resolved.field));
}

function requireGetRef(context: FilterContext, path: string): (ref: EntityRef) => StoredRecord | undefined {
  if (!context.getRef) throw new FilterError(`Deep path "${path}" is not supported here (no record lookup)`);
  return context.getRef.bind(context);
}

// ---------------------------------------------------------------------------------------------------------------
// Compiling filters into predicates

const relationsByType: Record<FieldType, readonly string[]> = {
  text: ['is', 'is_not', 'contains', 'not_contains', 'starts_with', 'ends_with', 'in', 'not_in'],
  number: ['is', 'is_not', 'less_than', 'greater_than', 'between', 'not_between', 'in', 'not_in'],
  float: ['is', 'is_not', 'less_than', 'greater_than', 'between', 'in', 'not_in'],
  checkbox: ['is', 'is_not'],
  date_time: ['is', 'is_not', 'less_than', 'greater_than', 'between', 'in', 'not_in'],
  status_list: ['is', 'is_not', 'in', 'not_in'],
  list: ['is', 'is_not', 'in', 'not_in'],
  entity: [
    'is', 'is_not', 'in', 'not_in', 'type_is', 'type_is_not',
    'name_is', 'name_contains', 'name_not_contains', 'name_starts_with', 'name_ends_with',
    // Text relations on a link compare its display name.
    'contains', 'not_contains', 'starts_with', 'ends_with',
  ],
  multi_entity: ['is', 'is_not', 'in', 'not_in', 'type_is', 'type_is_not', 'name_contains', 'name_not_contains', 'contains', 'not_contains'],
  // File and thumbnail fields: only "is there one" (`is`/`is_not` null).
  url: ['is', 'is_not'],
  image: ['is', 'is_not'],
};

// Real date relations relative to "now"; refused by name rather than as unknown so the gap is obvious.
const unimplemented = ['in_last', 'not_in_last', 'in_next', 'not_in_next', 'in_calendar_day', 'in_calendar_week', 'in_calendar_month', 'in_calendar_year'];
const knownRelations = new Set([...Object.values(relationsByType).flat(), ...unimplemented]);

type Test = (value: unknown) => boolean;
type Predicate = (record: StoredRecord) => boolean;

/** Validates every field, relation and value up front (FilterError), then returns a predicate over records. */
export function compileFilter(type: EntityType, group: FilterGroup, context: FilterContext): Predicate {
  const parts = group.conditions.map((c) => ('logical_operator' in c ? compileFilter(type, c, context) : compileCondition(type, c, context)));
  // An empty group restricts nothing, whichever its operator (`[].some` alone would make an empty "or" match none).
  if (parts.length === 0) return () => true;
  return group.logical_operator === 'or' ? (r) => parts.some((p) => p(r)) : (r) => parts.every((p) => p(r));
}

function compileCondition(type: EntityType, condition: Condition, context: FilterContext): Predicate {
  const resolved = resolvePath(type, condition.path);
  if (resolved.hops.length > 0) requireGetRef(context, resolved.path);
  const test = compileTest(resolved, condition, context);
  if (resolved.hops.length === 0) return (r) => test(fieldValue(r, resolved.field));
  return (r) => leafValues(r, resolved, context).some(test);
}

function compileTest(resolved: ResolvedPath, condition: Condition, context: FilterContext): Test {
  const { relation } = condition;
  const fieldType = resolved.def.type;
  if (!knownRelations.has(relation)) throw new FilterError(`Unknown relation "${relation}"`);
  if (fieldType === 'date_time' && unimplemented.includes(relation)) {
    throw new FilterError(`Relation "${relation}" is not supported by the sandbox`);
  }
  if (!relationsByType[fieldType].includes(relation)) {
    throw new FilterError(`Invalid relation "${relation}" for ${fieldType} field "${resolved.path}"`);
  }
  const arg = new Args(condition, resolved);
  switch (fieldType) {
    case 'entity':
      return entityTest(arg, context);
    case 'multi_entity':
      return multiEntityTest(arg, context);
    case 'url':
    case 'image': {
      if (arg.one() !== null) throw new FilterError(`Field "${resolved.path}" (${fieldType}) can only be compared with null`);
      return relation === 'is' ? (v) => !present(v) : present;
    }
    default:
      return scalarTest(arg, scalars[fieldType]);
  }
}

/** Reads a condition's values with arity and type checks, naming the condition in errors. */
class Args {
  readonly relation: string;
  readonly values: unknown[];
  readonly resolved: ResolvedPath;

  constructor(condition: Condition, resolved: ResolvedPath) {
    this.relation = condition.relation;
    this.values = condition.values;
    this.resolved = resolved;
  }

  one(): unknown {
    if (this.values.length !== 1) this.fail(`takes one value, got ${this.values.length}`);
    return this.values[0];
  }

  two(): [unknown, unknown] {
    if (this.values.length !== 2) this.fail(`takes two values [low, high], got ${this.values.length}`);
    return [this.values[0], this.values[1]];
  }

  string(): string {
    const value = this.one();
    if (typeof value !== 'string') this.fail(`needs a string, got ${describe(value)}`);
    return value as string;
  }

  fail(problem: string): never {
    throw new FilterError(`"${this.resolved.path}" ${this.relation} ${problem}`);
  }
}

type Key = string | number | null;

/** How a plain field's stored value and a filter's value become comparable keys. */
interface Scalar {
  stored(value: unknown): Key;
  /** Throws FilterError for a value of the wrong kind; null only when the relation accepts it. */
  given(value: unknown, arg: Args, nullable: boolean): Key;
}

// Strings compare case-insensitively on ShotGrid; '' and null are both "unset".
const textScalar: Scalar = {
  stored: (v) => (typeof v === 'string' && v !== '' ? v.toLowerCase() : null),
  given(v, arg, nullable) {
    if (v === null || v === '') return nullable ? null : arg.fail('needs a string, got null');
    if (typeof v !== 'string') return arg.fail(`needs a string, got ${describe(v)}`);
    return v.toLowerCase();
  },
};

const numberScalar: Scalar = {
  stored: (v) => (typeof v === 'number' ? v : null),
  given(v, arg, nullable) {
    if (v === null) return nullable ? null : arg.fail('needs a number, got null');
    // Query-string filters arrive as text.
    if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)) return Number(v);
    if (typeof v !== 'number' || !Number.isFinite(v)) return arg.fail(`needs a number, got ${describe(v)}`);
    return v;
  },
};

// Checkboxes are never unset on ShotGrid: a missing value reads as false.
const checkboxScalar: Scalar = {
  stored: (v) => (v === true ? 1 : 0),
  given(v, arg) {
    if (v === true || v === 'true') return 1;
    if (v === false || v === 'false') return 0;
    return arg.fail(`needs true or false, got ${describe(v)}`);
  },
};

// Date-times compare as instants, so `2024-01-01T00:00:00Z` and `2024-01-01T01:00:00+01:00` are equal.
const dateScalar: Scalar = {
  stored: (v) => (typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? Date.parse(v) : null),
  given(v, arg, nullable) {
    if (v === null) return nullable ? null : arg.fail('needs a date-time, got null');
    const time = typeof v === 'string' ? Date.parse(v) : Number.NaN;
    return Number.isNaN(time) ? arg.fail(`needs an ISO 8601 date-time, got ${describe(v)}`) : time;
  },
};

const scalars: Record<'text' | 'number' | 'float' | 'checkbox' | 'date_time' | 'status_list' | 'list', Scalar> = {
  text: textScalar,
  number: numberScalar,
  float: numberScalar,
  checkbox: checkboxScalar,
  date_time: dateScalar,
  status_list: textScalar,
  list: textScalar,
};

function scalarTest(arg: Args, scalar: Scalar): Test {
  const key = (v: unknown): Key => scalar.stored(v);
  switch (arg.relation) {
    case 'is': {
      const want = scalar.given(arg.one(), arg, true);
      return (v) => key(v) === want;
    }
    case 'is_not': {
      const want = scalar.given(arg.one(), arg, true);
      return (v) => key(v) !== want;
    }
    case 'in':
    case 'not_in': {
      const wants = new Set(arg.values.map((v) => scalar.given(v, arg, true)));
      const inside: Test = (v) => wants.has(key(v));
      return arg.relation === 'in' ? inside : (v) => !inside(v);
    }
    // Ordering relations exist only for number, float and date_time, whose keys are numbers.
    case 'less_than': {
      const want = scalar.given(arg.one(), arg, false) as number;
      return (v) => {
        const k = key(v) as number | null;
        return k !== null && k < want;
      };
    }
    case 'greater_than': {
      const want = scalar.given(arg.one(), arg, false) as number;
      return (v) => {
        const k = key(v) as number | null;
        return k !== null && k > want;
      };
    }
    case 'between':
    case 'not_between': {
      // A null bound leaves that side open; an unset field is neither between nor not between (SQL NULL).
      const [low, high] = arg.two().map((b) => scalar.given(b, arg, true)) as [Key, Key];
      const between = arg.relation === 'between';
      return (v) => {
        const k = key(v);
        if (k === null) return false;
        const inside = (low === null || k >= low) && (high === null || k <= high);
        return inside === between;
      };
    }
    default:
      return textRelation(arg, (v) => key(v) as string | null);
  }
}

/** contains / not_contains / starts_with / ends_with (and the name_ forms) over a lower-cased string. */
function textRelation(arg: Args, text: (value: unknown) => string | null): Test {
  const want = arg.string().toLowerCase();
  const relation = arg.relation.replace(/^name_/, '');
  const match = (s: string): boolean =>
    relation === 'starts_with' ? s.startsWith(want) : relation === 'ends_with' ? s.endsWith(want) : relation === 'is' ? s === want : s.includes(want);
  if (relation === 'not_contains') return (v) => !(text(v)?.includes(want) ?? false);
  return (v) => {
    const s = text(v);
    return s !== null && match(s);
  };
}

function entityTest(arg: Args, context: FilterContext): Test {
  const name = (v: unknown): string | null => {
    const ref = asRef(v);
    return ref === null ? null : (context.nameOf(ref)?.toLowerCase() ?? null);
  };
  switch (arg.relation) {
    case 'is':
    case 'is_not': {
      const want = givenRef(arg.one(), arg);
      const is: Test = (v) => sameRef(asRef(v), want);
      return arg.relation === 'is' ? is : (v) => !is(v);
    }
    case 'in':
    case 'not_in': {
      const wants = refSet(arg.values.map((v) => givenRef(v, arg)));
      const inside: Test = (v) => wants.has(asRef(v));
      return arg.relation === 'in' ? inside : (v) => !inside(v);
    }
    case 'type_is':
    case 'type_is_not': {
      const want = givenType(arg);
      const is: Test = (v) => (asRef(v)?.type ?? null) === want;
      return arg.relation === 'type_is' ? is : (v) => !is(v);
    }
    default:
      return textRelation(arg, name);
  }
}

function multiEntityTest(arg: Args, context: FilterContext): Test {
  // On multi_entity, `is` means "the list holds it" and `is null` means "the list is empty".
  const holds = (list: EntityRef[], want: EntityRef | null): boolean => (want === null ? list.length === 0 : list.some((r) => sameRef(r, want)));
  switch (arg.relation) {
    case 'is':
    case 'is_not': {
      const want = givenRef(arg.one(), arg);
      const is: Test = (v) => holds(asRefList(v), want);
      return arg.relation === 'is' ? is : (v) => !is(v);
    }
    case 'in':
    case 'not_in': {
      const wants = refSet(arg.values.map((v) => givenRef(v, arg)));
      const any: Test = (v) => {
        const list = asRefList(v);
        return list.length === 0 ? wants.has(null) : list.some((r) => wants.has(r));
      };
      return arg.relation === 'in' ? any : (v) => !any(v);
    }
    case 'type_is':
    case 'type_is_not': {
      const want = givenType(arg);
      const is: Test = (v) => {
        const list = asRefList(v);
        return want === null ? list.length === 0 : list.some((r) => r.type === want);
      };
      return arg.relation === 'type_is' ? is : (v) => !is(v);
    }
    default: {
      // contains / name_contains: any linked display name; the not_ forms: none of them.
      const want = arg.string().toLowerCase();
      const any: Test = (v) => asRefList(v).some((r) => context.nameOf(r)?.toLowerCase().includes(want) ?? false);
      return arg.relation.endsWith('not_contains') ? (v) => !any(v) : any;
    }
  }
}

/** A file or thumbnail is there; a thumbnail whose processing failed reads as null, as ShotGrid shows it. */
function present(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  return !(isImageValue(value) && value.failed);
}

function givenRef(value: unknown, arg: Args): EntityRef | null {
  if (value === null) return null;
  if (isPlainObject(value) && typeof value.type === 'string' && Number.isInteger(value.id)) {
    return { type: value.type as EntityType, id: value.id as number };
  }
  return arg.fail(`needs an entity {"type","id"} or null, got ${describe(value)}`);
}

function givenType(arg: Args): string | null {
  const value = arg.one();
  if (value === null || typeof value === 'string') return value;
  return arg.fail(`needs an entity type name, got ${describe(value)}`);
}

function asRef(value: unknown): EntityRef | null {
  return isPlainObject(value) && typeof value.type === 'string' && typeof value.id === 'number' ? (value as unknown as EntityRef) : null;
}

function asRefList(value: unknown): EntityRef[] {
  return Array.isArray(value) ? value.filter((v): v is EntityRef => asRef(v) !== null) : [];
}

/**
 * A set of entity refs (null included) looked up by type and id: an `in` list of 500 links tested against every
 * record stays linear, as on a site that answers it from an index.
 */
function refSet(refs: readonly (EntityRef | null)[]): { has(ref: EntityRef | null): boolean } {
  const keys = new Set(refs.map((ref) => (ref === null ? null : `${ref.type}:${ref.id}`)));
  return { has: (ref) => keys.has(ref === null ? null : `${ref.type}:${ref.id}`) };
}

function sameRef(a: EntityRef | null, b: EntityRef | null): boolean {
  return a === null || b === null ? a === b : a.type === b.type && a.id === b.id;
}

// ---------------------------------------------------------------------------------------------------------------
// Sorting

const unsortable: readonly FieldType[] = ['multi_entity', 'url', 'image'];

/** `"code,-created_at"` or `["code","-id"]`; a leading `-` sorts descending. Absent or empty: id ascending. */
export function parseSort(type: EntityType, sort: unknown): SortKey[] {
  let tokens: string[];
  if (sort === undefined || sort === null || sort === '') tokens = [];
  else if (typeof sort === 'string') tokens = sort.split(',');
  else if (Array.isArray(sort) && sort.every((s) => typeof s === 'string')) tokens = sort;
  else throw new FilterError('sort must be a comma-separated string or a list of field names');

  const keys = tokens.map((raw): SortKey => {
    const token = raw.trim();
    const direction = token.startsWith('-') ? 'desc' : 'asc';
    const path = direction === 'desc' ? token.slice(1) : token;
    if (path === '') throw new FilterError(`Invalid sort ${describe(sort)}: empty field name`);
    const resolved = resolvePath(type, path);
    if (unsortable.includes(resolved.def.type)) throw new FilterError(`Cannot sort by ${resolved.def.type} field "${path}"`);
    if (resolved.hops.some((h) => h.many)) throw new FilterError(`Cannot sort by "${path}": it goes through a multi_entity field`);
    return { path, direction, resolved };
  });
  return keys.length > 0 ? keys : [{ path: 'id', direction: 'asc', resolved: resolvePath(type, 'id') }];
}

/** Comparator for parsed sort keys. Unset values sort first ascending (last descending); ties fall back to id. */
export function compareRecords(keys: SortKey[], context: FilterContext): (a: StoredRecord, b: StoredRecord) => number {
  for (const key of keys) if (key.resolved.hops.length > 0) requireGetRef(context, key.path);
  const sortValue = (record: StoredRecord, key: SortKey): Key => {
    const [value] = leafValues(record, key.resolved, context);
    if (key.resolved.def.type === 'entity') {
      const ref = asRef(value);
      const name = ref === null ? null : context.nameOf(ref);
      return name === null || name === '' ? null : name.toLowerCase();
    }
    return scalars[key.resolved.def.type as keyof typeof scalars].stored(value);
  };
  return (a, b) => {
    for (const key of keys) {
      const order = compareKeys(sortValue(a, key), sortValue(b, key));
      if (order !== 0) return key.direction === 'asc' ? order : -order;
    }
    return a.id - b.id;
  };
}

function compareKeys(a: Key, b: Key): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return a < b ? -1 : 1;
}

// ---------------------------------------------------------------------------------------------------------------

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}
