// The ZIP records this writer emits, their exact lengths and their encodings: STORE only, CRC-32 and sizes in a
// data descriptor after the bytes (general purpose bit 3), UTF-8 names (bit 11), ZIP64 where a field overflows.
// Section numbers are those of PKWARE's APPNOTE.TXT 6.3.x. The plan and the writer both take lengths from here,
// so the size announced up front and the bytes written cannot drift apart.

/** A 4-byte size or offset field holding this value means "the real value is in the ZIP64 extra field" (4.4.8). */
export const ZIP64_MARKER = 0xffffffff;
/** A 2-byte entry count holding this value means "see the ZIP64 end of central directory record" (4.4.21). */
export const ZIP64_COUNT_MARKER = 0xffff;
export const MAX_NAME_BYTES = 0xffff;

const LOCAL_FILE_HEADER_SIGNATURE = 0x04034b50; // 4.3.7
const DATA_DESCRIPTOR_SIGNATURE = 0x08074b50; // 4.3.9.3: optional, but readers that scan for it need it
const CENTRAL_DIRECTORY_HEADER_SIGNATURE = 0x02014b50; // 4.3.12
const ZIP64_END_RECORD_SIGNATURE = 0x06064b50; // 4.3.14
const ZIP64_END_LOCATOR_SIGNATURE = 0x07064b50; // 4.3.15
const END_RECORD_SIGNATURE = 0x06054b50; // 4.3.16

const LOCAL_FILE_HEADER_FIXED_LENGTH = 30;
const CENTRAL_DIRECTORY_HEADER_FIXED_LENGTH = 46;
const ZIP64_END_RECORD_LENGTH = 56;
const ZIP64_END_LOCATOR_LENGTH = 20;
const END_RECORD_LENGTH = 22;

const ZIP64_EXTRA_ID = 0x0001; // 4.5.3
const EXTENDED_TIMESTAMP_EXTRA_ID = 0x5455; // 4.6.1 lists it; the layout is Info-ZIP's ("UT")
// Local: uncompressed and compressed size (4.5.3 requires both in a local header). Central: both sizes and the
// local header offset, all three always, with all three 4-byte fields set to the marker, so the field set is
// the same for every ZIP64 entry and every reader parses it the same way.
const LOCAL_ZIP64_EXTRA_LENGTH = 4 + 16;
const CENTRAL_ZIP64_EXTRA_LENGTH = 4 + 24;
const TIMESTAMP_EXTRA_LENGTH = 4 + 1 + 4; // flags byte, then the modification time only

const FLAG_DATA_DESCRIPTOR = 0x0008; // 4.4.4 bit 3: CRC-32 and sizes follow the data
const FLAG_UTF8_NAME = 0x0800; // 4.4.4 bit 11 (APPNOTE 6.3.0, appendix D)
const METHOD_STORE = 0; // 4.4.5
const VERSION_NEEDED_PLAIN = 20; // 4.4.3.2: 2.0 is the baseline
const VERSION_NEEDED_ZIP64 = 45; // 4.4.3.2: 4.5 for ZIP64
// 4.4.2: upper byte 3 = UNIX, so the external attributes carry a file mode (else unzip may apply a DOS code
// page to names and leave modes to chance); lower byte 63 = the APPNOTE version that defined the UTF-8 flag.
const VERSION_MADE_BY = (3 << 8) | 63;
const EXTERNAL_ATTRIBUTES = (0o100644 << 16) >>> 0; // 4.4.15: regular file, rw-r--r--

/** What it takes to encode one entry's records. `PlannedEntry` (zip-plan.ts) has these fields. */
export interface EntryRecordFields {
  readonly nameBytes: Buffer;
  readonly size: number;
  readonly dosTime: number;
  readonly dosDate: number;
  /** Seconds since 1970 for the extended timestamp, or undefined to leave that field out. */
  readonly unixTime: number | undefined;
  readonly zip64: boolean;
  readonly localHeaderOffset: number;
}

export function localFileHeaderLength(entry: Pick<EntryRecordFields, 'nameBytes' | 'unixTime' | 'zip64'>): number {
  return (
    LOCAL_FILE_HEADER_FIXED_LENGTH +
    entry.nameBytes.length +
    (entry.zip64 ? LOCAL_ZIP64_EXTRA_LENGTH : 0) +
    (entry.unixTime === undefined ? 0 : TIMESTAMP_EXTRA_LENGTH)
  );
}

/** 4.3.9: signature, CRC-32, then the two sizes in 4 bytes each, or 8 each when the entry is ZIP64 (4.3.9.2). */
export function dataDescriptorLength(zip64: boolean): number {
  return zip64 ? 24 : 16;
}

export function centralDirectoryHeaderLength(
  entry: Pick<EntryRecordFields, 'nameBytes' | 'unixTime' | 'zip64'>,
): number {
  return (
    CENTRAL_DIRECTORY_HEADER_FIXED_LENGTH +
    entry.nameBytes.length +
    (entry.zip64 ? CENTRAL_ZIP64_EXTRA_LENGTH : 0) +
    (entry.unixTime === undefined ? 0 : TIMESTAMP_EXTRA_LENGTH)
  );
}

export function endRecordsLength(zip64: boolean): number {
  return (zip64 ? ZIP64_END_RECORD_LENGTH + ZIP64_END_LOCATOR_LENGTH : 0) + END_RECORD_LENGTH;
}

/** 4.3.7. CRC-32 and sizes are zero here (bit 3); a ZIP64 entry marks its sizes as being in the extra field. */
export function encodeLocalFileHeader(entry: EntryRecordFields): Buffer {
  const header = Buffer.alloc(localFileHeaderLength(entry));
  header.writeUInt32LE(LOCAL_FILE_HEADER_SIGNATURE, 0);
  header.writeUInt16LE(entry.zip64 ? VERSION_NEEDED_ZIP64 : VERSION_NEEDED_PLAIN, 4);
  header.writeUInt16LE(FLAG_DATA_DESCRIPTOR | FLAG_UTF8_NAME, 6);
  header.writeUInt16LE(METHOD_STORE, 8);
  header.writeUInt16LE(entry.dosTime, 10);
  header.writeUInt16LE(entry.dosDate, 12);
  // 14: CRC-32 stays 0 until the data descriptor.
  if (entry.zip64) {
    header.writeUInt32LE(ZIP64_MARKER, 18);
    header.writeUInt32LE(ZIP64_MARKER, 22);
  }
  header.writeUInt16LE(entry.nameBytes.length, 26);
  header.writeUInt16LE(localFileHeaderLength(entry) - LOCAL_FILE_HEADER_FIXED_LENGTH - entry.nameBytes.length, 28);
  let at = LOCAL_FILE_HEADER_FIXED_LENGTH + entry.nameBytes.copy(header, LOCAL_FILE_HEADER_FIXED_LENGTH);
  if (entry.zip64) {
    // Both sizes 0: unknown when the header is written, as bit 3 says; the data descriptor carries them.
    header.writeUInt16LE(ZIP64_EXTRA_ID, at);
    header.writeUInt16LE(LOCAL_ZIP64_EXTRA_LENGTH - 4, at + 2);
    at += LOCAL_ZIP64_EXTRA_LENGTH;
  }
  if (entry.unixTime !== undefined) at = writeTimestampExtra(header, at, entry.unixTime);
  return header;
}

/** 4.3.9. STORE: the compressed size is the uncompressed size. */
export function encodeDataDescriptor(entry: Pick<EntryRecordFields, 'size' | 'zip64'>, crc: number): Buffer {
  const descriptor = Buffer.alloc(dataDescriptorLength(entry.zip64));
  descriptor.writeUInt32LE(DATA_DESCRIPTOR_SIGNATURE, 0);
  descriptor.writeUInt32LE(crc, 4);
  if (entry.zip64) {
    writeUInt64LE(descriptor, entry.size, 8);
    writeUInt64LE(descriptor, entry.size, 16);
  } else {
    descriptor.writeUInt32LE(entry.size, 8);
    descriptor.writeUInt32LE(entry.size, 12);
  }
  return descriptor;
}

/** 4.3.12, written into `target` at `at` (the central directory is built in batches); returns the end offset. */
export function writeCentralDirectoryHeader(target: Buffer, at: number, entry: EntryRecordFields, crc: number): number {
  const length = centralDirectoryHeaderLength(entry);
  target.fill(0, at, at + length);
  target.writeUInt32LE(CENTRAL_DIRECTORY_HEADER_SIGNATURE, at);
  target.writeUInt16LE(VERSION_MADE_BY, at + 4);
  target.writeUInt16LE(entry.zip64 ? VERSION_NEEDED_ZIP64 : VERSION_NEEDED_PLAIN, at + 6);
  target.writeUInt16LE(FLAG_DATA_DESCRIPTOR | FLAG_UTF8_NAME, at + 8);
  target.writeUInt16LE(METHOD_STORE, at + 10);
  target.writeUInt16LE(entry.dosTime, at + 12);
  target.writeUInt16LE(entry.dosDate, at + 14);
  target.writeUInt32LE(crc, at + 16);
  target.writeUInt32LE(entry.zip64 ? ZIP64_MARKER : entry.size, at + 20);
  target.writeUInt32LE(entry.zip64 ? ZIP64_MARKER : entry.size, at + 24);
  target.writeUInt16LE(entry.nameBytes.length, at + 28);
  target.writeUInt16LE(length - CENTRAL_DIRECTORY_HEADER_FIXED_LENGTH - entry.nameBytes.length, at + 30);
  // 32: comment length, 34: disk number start, 36: internal attributes, all 0.
  target.writeUInt32LE(EXTERNAL_ATTRIBUTES, at + 38);
  target.writeUInt32LE(entry.zip64 ? ZIP64_MARKER : entry.localHeaderOffset, at + 42);
  let end = at + CENTRAL_DIRECTORY_HEADER_FIXED_LENGTH;
  end += entry.nameBytes.copy(target, end);
  if (entry.zip64) {
    // 4.5.3: the fields appear in this order, each because its 4-byte field above holds the marker.
    target.writeUInt16LE(ZIP64_EXTRA_ID, end);
    target.writeUInt16LE(CENTRAL_ZIP64_EXTRA_LENGTH - 4, end + 2);
    writeUInt64LE(target, entry.size, end + 4);
    writeUInt64LE(target, entry.size, end + 12);
    writeUInt64LE(target, entry.localHeaderOffset, end + 20);
    end += CENTRAL_ZIP64_EXTRA_LENGTH;
  }
  if (entry.unixTime !== undefined) end = writeTimestampExtra(target, end, entry.unixTime);
  return end;
}

export interface CentralDirectoryExtent {
  readonly entryCount: number;
  readonly centralDirectoryOffset: number;
  readonly centralDirectorySize: number;
  readonly zip64: boolean;
}

/**
 * The ZIP64 end of central directory record and its locator (4.3.14, 4.3.15) when the archive needs them, then
 * the end of central directory record (4.3.16), whose overflowing fields hold markers (4.4.1.4).
 */
export function encodeEndRecords(extent: CentralDirectoryExtent): Buffer {
  const records = Buffer.alloc(endRecordsLength(extent.zip64));
  let at = 0;
  if (extent.zip64) {
    const zip64RecordOffset = extent.centralDirectoryOffset + extent.centralDirectorySize;
    records.writeUInt32LE(ZIP64_END_RECORD_SIGNATURE, 0);
    writeUInt64LE(records, ZIP64_END_RECORD_LENGTH - 12, 4); // 4.3.14.1: size of what follows this field
    records.writeUInt16LE(VERSION_MADE_BY, 12);
    records.writeUInt16LE(VERSION_NEEDED_ZIP64, 14);
    // 16: this disk, 20: disk where the central directory starts, both 0 (one disk).
    writeUInt64LE(records, extent.entryCount, 24);
    writeUInt64LE(records, extent.entryCount, 32);
    writeUInt64LE(records, extent.centralDirectorySize, 40);
    writeUInt64LE(records, extent.centralDirectoryOffset, 48);
    at = ZIP64_END_RECORD_LENGTH;
    records.writeUInt32LE(ZIP64_END_LOCATOR_SIGNATURE, at);
    // at + 4: disk holding the ZIP64 record, 0.
    writeUInt64LE(records, zip64RecordOffset, at + 8);
    records.writeUInt32LE(1, at + 16); // total number of disks
    at += ZIP64_END_LOCATOR_LENGTH;
  }
  const count = Math.min(extent.entryCount, ZIP64_COUNT_MARKER);
  records.writeUInt32LE(END_RECORD_SIGNATURE, at);
  // at + 4: this disk, at + 6: disk where the central directory starts, both 0.
  records.writeUInt16LE(count, at + 8);
  records.writeUInt16LE(count, at + 10);
  records.writeUInt32LE(Math.min(extent.centralDirectorySize, ZIP64_MARKER), at + 12);
  records.writeUInt32LE(Math.min(extent.centralDirectoryOffset, ZIP64_MARKER), at + 16);
  // at + 20: comment length, 0.
  return records;
}

/** MS-DOS date and time (4.4.6) in the service's local time zone, as readers without the extended timestamp expect. */
export function toDosDateTime(date: Date): { dosDate: number; dosTime: number } {
  const year = date.getFullYear();
  // The format covers 1980 to 2107; outside it, the nearest representable moment.
  if (year < 1980) return { dosDate: (1 << 5) | 1, dosTime: 0 };
  if (year > 2107) return { dosDate: (127 << 9) | (12 << 5) | 31, dosTime: (23 << 11) | (59 << 5) | 29 };
  return {
    dosDate: ((year - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate(),
    dosTime: (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1),
  };
}

/** Seconds since 1970 when they fit the extended timestamp's signed 32-bit field, else undefined. */
export function toExtendedTimestamp(date: Date): number | undefined {
  const seconds = Math.floor(date.getTime() / 1000);
  return seconds >= -0x80000000 && seconds <= 0x7fffffff ? seconds : undefined;
}

function writeTimestampExtra(target: Buffer, at: number, unixTime: number): number {
  target.writeUInt16LE(EXTENDED_TIMESTAMP_EXTRA_ID, at);
  target.writeUInt16LE(TIMESTAMP_EXTRA_LENGTH - 4, at + 2);
  target.writeUInt8(1, at + 4); // bit 0: modification time present
  target.writeInt32LE(unixTime, at + 5);
  return at + TIMESTAMP_EXTRA_LENGTH;
}

/** Two 32-bit halves: exact for any safe integer, and no BigInt per field. */
function writeUInt64LE(target: Buffer, value: number, at: number): void {
  target.writeUInt32LE(value % 0x1_0000_0000, at);
  target.writeUInt32LE(Math.floor(value / 0x1_0000_0000), at + 4);
}
