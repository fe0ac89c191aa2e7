import {
  centralDirectoryHeaderLength,
  dataDescriptorLength,
  endRecordsLength,
  localFileHeaderLength,
  MAX_NAME_BYTES,
  toDosDateTime,
  toExtendedTimestamp,
  ZIP64_COUNT_MARKER,
  ZIP64_MARKER,
  type EntryRecordFields,
} from './zip-format.ts';

// The whole layout of a stored (uncompressed) zip, worked out from names and sizes alone before a byte is
// written: stored entries take exactly their size, and every header's length is known, so the HTTP layer can
// announce the exact Content-Length and the writer can check it keeps to it.

export interface ArchiveEntryInput {
  /** The path inside the archive, already made safe and unique by the caller. */
  readonly name: string;
  readonly size: number;
  /** Defaults to the time the archive is planned. */
  readonly modified?: Date | undefined;
}

export interface PlannedEntry extends EntryRecordFields {
  readonly index: number;
  readonly name: string;
  /** Set when its size or its local header offset does not fit 4 bytes (>= 0xFFFFFFFF). */
  readonly zip64: boolean;
  readonly localHeaderOffset: number;
  /** Where its bytes start, after the local header. */
  readonly dataOffset: number;
  readonly dataDescriptorOffset: number;
  /** Where the next entry (or the central directory) starts. */
  readonly endOffset: number;
}

export interface ArchivePlan {
  readonly entries: readonly PlannedEntry[];
  readonly centralDirectoryOffset: number;
  readonly centralDirectorySize: number;
  /** Set when the entry count, or the central directory's offset or size, needs the ZIP64 end records. */
  readonly zip64EndRecords: boolean;
  /** Exact length of the archive in bytes. */
  readonly totalSize: number;
}

/**
 * Plans the archive: entries in the given order, each stored, each followed by a data descriptor. Refuses what
 * the format cannot carry faithfully (names: empty, over 65,535 UTF-8 bytes, unpaired surrogates, NUL, a
 * trailing `/` that would make it a directory, duplicates; sizes: not a whole number of bytes; a total beyond
 * what a JavaScript number counts exactly, about 8 PiB).
 */
export function planArchive(entries: readonly ArchiveEntryInput[]): ArchivePlan {
  const plannedAt = new Date();
  const seen = new Set<string>();
  const planned: PlannedEntry[] = [];
  let offset = 0;
  for (const [index, input] of entries.entries()) {
    const nameBytes = checkedNameBytes(input.name, index, seen);
    if (!Number.isSafeInteger(input.size) || input.size < 0) {
      throw new RangeError(`zip entry ${index} (${describe(input.name)}): size must be a whole number of bytes, got ${input.size}`);
    }
    const modified = input.modified ?? plannedAt;
    if (Number.isNaN(modified.getTime())) throw new RangeError(`zip entry ${index} (${describe(input.name)}): invalid modification date`);
    const localHeaderOffset = offset;
    const zip64 = input.size >= ZIP64_MARKER || localHeaderOffset >= ZIP64_MARKER;
    const timing = { ...toDosDateTime(modified), unixTime: toExtendedTimestamp(modified) };
    const dataOffset = localHeaderOffset + localFileHeaderLength({ nameBytes, zip64, unixTime: timing.unixTime });
    const dataDescriptorOffset = dataOffset + input.size;
    const endOffset = checkedOffset(dataDescriptorOffset + dataDescriptorLength(zip64));
    planned.push({
      index,
      name: input.name,
      nameBytes,
      size: input.size,
      ...timing,
      zip64,
      localHeaderOffset,
      dataOffset,
      dataDescriptorOffset,
      endOffset,
    });
    offset = endOffset;
  }
  const centralDirectoryOffset = offset;
  let centralDirectorySize = 0;
  for (const entry of planned) centralDirectorySize += centralDirectoryHeaderLength(entry);
  const zip64EndRecords =
    planned.length >= ZIP64_COUNT_MARKER || centralDirectoryOffset >= ZIP64_MARKER || centralDirectorySize >= ZIP64_MARKER;
  const totalSize = checkedOffset(centralDirectoryOffset + centralDirectorySize + endRecordsLength(zip64EndRecords));
  return { entries: planned, centralDirectoryOffset, centralDirectorySize, zip64EndRecords, totalSize };
}

function checkedNameBytes(name: string, index: number, seen: Set<string>): Buffer {
  const problem =
    typeof name !== 'string' || name.length === 0
      ? 'an empty name'
      : !name.isWellFormed()
        ? 'a name with an unpaired surrogate (not encodable as UTF-8)'
        : name.includes('\0')
          ? 'a name with a NUL character'
          : name.endsWith('/')
            ? 'a name ending in "/" (that marks a directory)'
            : seen.has(name)
              ? 'a duplicate name'
              : undefined;
  if (problem) throw new RangeError(`zip entry ${index} (${describe(name)}): ${problem}`);
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length > MAX_NAME_BYTES) {
    throw new RangeError(`zip entry ${index} (${describe(name)}): name is ${bytes.length} UTF-8 bytes, at most ${MAX_NAME_BYTES} fit`);
  }
  seen.add(name);
  return bytes;
}

function checkedOffset(offset: number): number {
  if (!Number.isSafeInteger(offset)) throw new RangeError('zip archive too large to plan exactly');
  return offset;
}

function describe(name: unknown): string {
  const text = String(name);
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}
