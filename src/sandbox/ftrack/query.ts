import { validationError } from './errors.ts';
import { parseQuery, type Condition, type Literal } from './expression.ts';
import { attributeDef, entityDef, type EntityDef, type ScalarKind } from './schema.ts';
import { buildProjection, renderEntities, type RenderContext } from './serialize.ts';
import type { Entity, StoredValue } from './store.ts';

// `query {expression}` → {action: "query", data: [...], metadata: {next: {offset: N | null}}} (ftrack.md). Every
// answer is cut to a page (at most `pageSize` entities, a `limit` included): a client pages until next.offset is
// null, as it must against a real server (see README).

export interface QueryContext extends RenderContext {
  /** Whether the acting user may see the entity (its project). */
  canRead(entity: Entity): boolean;
  pageSize: number;
}

export interface QueryReply {
  action: 'query';
  data: unknown[];
  metadata: { next: { offset: number | null } };
}

export function runQuery(context: QueryContext, expression: unknown): QueryReply {
  const parsed = parseQuery(expression);
  const def = entityDef(parsed.type);
  const projection = buildProjection(def, parsed.select);
  const where = parsed.where;
  if (where) checkCondition(def, where);
  const sortKeys = parsed.orderBy.map((order) => ({ ...order, kind: scalarAt(def, order.path) }));

  let matches = context.store.all(def.name).filter((entity) => context.canRead(entity) && (!where || test(context, entity, where)));
  if (sortKeys.length > 0) {
    matches = matches
      .map((entity) => ({ entity, keys: sortKeys.map((order) => firstValue(context, entity, order.path)) }))
      .sort((a, b) => {
        for (const [index, order] of sortKeys.entries()) {
          const difference = compareValues(order.kind, a.keys[index] ?? null, b.keys[index] ?? null);
          if (difference !== 0) return order.descending ? -difference : difference;
        }
        return 0;
      })
      .map((row) => row.entity);
  }
  const size = Math.min(parsed.limit ?? context.pageSize, context.pageSize);
  const page = matches.slice(parsed.offset, parsed.offset + size);
  const end = parsed.offset + page.length;
  // As the JS repo's fixture for `limit 1` shows: next.offset is set whenever more entities match, limit or not.
  const next = page.length > 0 && end < matches.length ? end : null;
  return { action: 'query', data: renderEntities(context, page, projection), metadata: { next: { offset: next } } };
}

/** Checks every path of a condition against the schema before any entity is read. */
function checkCondition(def: EntityDef, condition: Condition): void {
  switch (condition.kind) {
    case 'compare':
    case 'in':
      scalarAt(def, condition.path);
      return;
    case 'related': {
      const target = relationTarget(def, condition.path);
      checkCondition(target, condition.condition);
      return;
    }
    case 'not':
      checkCondition(def, condition.condition);
      return;
    default:
      for (const inner of condition.conditions) checkCondition(def, inner);
  }
}

/** The scalar kind at the end of `path` (each step before it a relation). */
function scalarAt(def: EntityDef, path: readonly string[]): ScalarKind {
  let at = def;
  for (const [index, name] of path.entries()) {
    const attribute = attributeDef(at, name);
    if (index === path.length - 1) {
      if (attribute.kind === 'ref' || attribute.kind === 'collection') {
        throw validationError(`"${path.join('.')}" is a relation: compare one of its attributes (e.g. "${path.join('.')}.id").`);
      }
      return attribute.kind;
    }
    if (attribute.kind !== 'ref' && attribute.kind !== 'collection') {
      throw validationError(`"${name}" on ${at.name} is not a relation in "${path.join('.')}".`);
    }
    at = entityDef(attribute.target);
  }
  throw validationError('Empty attribute path.');
}

function relationTarget(def: EntityDef, path: readonly string[]): EntityDef {
  let at = def;
  for (const name of path) {
    const attribute = attributeDef(at, name);
    if (attribute.kind !== 'ref' && attribute.kind !== 'collection') {
      throw validationError(`"${path.join('.')}" is not a relation: "has" and "any" need one.`);
    }
    at = entityDef(attribute.target);
  }
  return at;
}

/** The entities at the end of a relation path (collections fan out). */
function relatedAt(context: QueryContext, entity: Entity, path: readonly string[]): Entity[] {
  let current = [entity];
  for (const name of path) {
    const next: Entity[] = [];
    for (const item of current) {
      const attribute = entityDef(item.type).attributes[name];
      if (attribute?.kind === 'ref') {
        const related = context.store.refOf(item, attribute);
        if (related) next.push(related);
      } else if (attribute?.kind === 'collection') {
        next.push(...context.store.collectionOf(item, attribute));
      }
    }
    current = next;
  }
  return current;
}

/** The values at `path`; a broken chain reads as one null (an outer join). */
function valuesAt(context: QueryContext, entity: Entity, path: readonly string[]): StoredValue[] {
  const owners = relatedAt(context, entity, path.slice(0, -1));
  const name = path[path.length - 1]!;
  if (owners.length === 0) return [null];
  return owners.map((owner) => {
    const attribute = entityDef(owner.type).attributes[name];
    return attribute && attribute.kind !== 'ref' && attribute.kind !== 'collection' && attribute.computed
      ? context.computed(owner, name)
      : (owner.attrs[name] ?? null);
  });
}

function firstValue(context: QueryContext, entity: Entity, path: readonly string[]): StoredValue {
  return valuesAt(context, entity, path)[0] ?? null;
}

function test(context: QueryContext, entity: Entity, condition: Condition): boolean {
  switch (condition.kind) {
    case 'and':
      return condition.conditions.every((inner) => test(context, entity, inner));
    case 'or':
      return condition.conditions.some((inner) => test(context, entity, inner));
    case 'not':
      return !test(context, entity, condition.condition);
    case 'related':
      return relatedAt(context, entity, condition.path).some((related) => test(context, related, condition.condition));
    case 'in': {
      const kind = scalarAt(entityDef(entity.type), condition.path);
      const wanted = condition.values.map((value) => literalAs(kind, value));
      const found = valuesAt(context, entity, condition.path).some((value) => wanted.some((w) => compareValues(kind, value, w) === 0 && sameNullness(value, w)));
      return condition.negate ? !found : found;
    }
    case 'compare': {
      const kind = scalarAt(entityDef(entity.type), condition.path);
      const literal = literalAs(kind, condition.value);
      const values = valuesAt(context, entity, condition.path);
      switch (condition.op) {
        case 'is':
          return values.some((value) => sameNullness(value, literal) && compareValues(kind, value, literal) === 0);
        case 'is_not':
          return !values.some((value) => sameNullness(value, literal) && compareValues(kind, value, literal) === 0);
        case 'like':
          return values.some((value) => like(value, literal));
        case 'not_like':
          return !values.some((value) => like(value, literal));
        default: {
          const op = condition.op;
          return values.some((value) => {
            if (value === null || literal === null) return false;
            const difference = compareValues(kind, value, literal);
            return op === '>' ? difference > 0 : op === '<' ? difference < 0 : op === '>=' ? difference >= 0 : difference <= 0;
          });
        }
      }
    }
  }
}

function sameNullness(a: StoredValue, b: StoredValue): boolean {
  return (a === null) === (b === null);
}

/** A literal read as the attribute's kind; a value that cannot be one is refused as a server refuses it. */
function literalAs(kind: ScalarKind, value: Literal): StoredValue {
  if (value === null) return null;
  switch (kind) {
    case 'integer':
    case 'number': {
      const number = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
      if (!Number.isFinite(number)) throw validationError(`"${String(value)}" is not a number.`);
      return number;
    }
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === 'false' || value === 1 || value === 0) return value === 'true' || value === 1;
      throw validationError(`"${String(value)}" is not a boolean.`);
    case 'datetime':
      return normalizeDatetime(String(value));
    default:
      return String(value);
  }
}

/** "2024-05-01T10:00:00" from any ISO 8601 form (no offset means UTC, as the server stores it). */
export function normalizeDatetime(text: string): string {
  const withZone = /([zZ]|[+-]\d\d:?\d\d)$/.test(text) ? text : `${text}Z`;
  const date = new Date(withZone);
  if (Number.isNaN(date.getTime())) throw validationError(`"${text}" is not a datetime.`);
  return date.toISOString().slice(0, 19);
}

function compareValues(kind: ScalarKind, a: StoredValue, b: StoredValue): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  if (kind === 'integer' || kind === 'number') return Number(a) - Number(b);
  if (kind === 'boolean') return Number(a === true) - Number(b === true);
  const x = typeof a === 'string' ? a : JSON.stringify(a);
  const y = typeof b === 'string' ? b : JSON.stringify(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * SQL LIKE: % any run, _ one character; case-insensitive, as the server's collation. Matched by the greedy
 * wildcard walk (backtracking only to the last %), not a regular expression: a pattern of many % cannot make it
 * exponential.
 */
function like(value: StoredValue, pattern: StoredValue): boolean {
  if (typeof value !== 'string' || typeof pattern !== 'string') return false;
  const text = value.toLowerCase();
  const glob = pattern.toLowerCase();
  let t = 0;
  let g = 0;
  let starAt = -1;
  let resumeAt = 0;
  while (t < text.length) {
    if (g < glob.length && (glob[g] === '_' || glob[g] === text[t])) {
      t++;
      g++;
    } else if (g < glob.length && glob[g] === '%') {
      starAt = g++;
      resumeAt = t;
    } else if (starAt !== -1) {
      g = starAt + 1;
      t = ++resumeAt;
    } else {
      return false;
    }
  }
  while (g < glob.length && glob[g] === '%') g++;
  return g === glob.length;
}
