import { isEntityRef, type RecordStore, type StoredRecord, type StoredValue } from './records.ts';
import type { EntityType } from './schema.ts';

// On a real site some multi-entity fields are the two ends of one connection: a Playlist's `versions` and a
// Version's `playlists` list each other. Writing either end shows on the other, and a retired record drops out
// of the other ends' lists, as ShotGrid does.

interface Connection {
  type: EntityType;
  field: string;
  otherType: EntityType;
  otherField: string;
}

const CONNECTIONS: readonly Connection[] = [
  { type: 'Playlist', field: 'versions', otherType: 'Version', otherField: 'playlists' },
  { type: 'Version', field: 'playlists', otherType: 'Playlist', otherField: 'versions' },
];

/** After `record` was created or changed: the other ends of the connections it changed gain or lose it. */
export function syncConnections(store: RecordStore, record: StoredRecord, before: Readonly<Record<string, StoredValue>>, changed: readonly string[]): void {
  for (const connection of CONNECTIONS) {
    if (connection.type !== record.type || !changed.includes(connection.field)) continue;
    const was = idsOf(before[connection.field]);
    const now = idsOf(record.fields[connection.field]);
    for (const id of now) if (!was.has(id)) link(store, connection, id, record, true);
    for (const id of was) if (!now.has(id)) link(store, connection, id, record, false);
  }
}

/** Before `record` is retired: it leaves every list that connects to it. */
export function dropConnections(store: RecordStore, record: StoredRecord): void {
  for (const connection of CONNECTIONS) {
    if (connection.type !== record.type) continue;
    for (const id of idsOf(record.fields[connection.field])) link(store, connection, id, record, false);
  }
}

function link(store: RecordStore, connection: Connection, otherId: number, record: StoredRecord, present: boolean): void {
  const other = store.get(connection.otherType, otherId);
  if (!other) return;
  const current = Array.isArray(other.fields[connection.otherField]) ? (other.fields[connection.otherField] as { type: EntityType; id: number }[]) : [];
  const without = current.filter((ref) => !(ref.type === record.type && ref.id === record.id));
  store.update(other, { [connection.otherField]: present ? [...without, { type: record.type, id: record.id }] : without });
}

function idsOf(value: StoredValue | undefined): Set<number> {
  return new Set(Array.isArray(value) ? value.filter(isEntityRef).map((ref) => ref.id) : []);
}
