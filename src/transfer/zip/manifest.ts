import type { FileLink, FileRef } from '../../trackers/tracker.ts';

// `manifest.csv`, the last entry of every download zip: one row per file the tracker listed, saying what became
// of it, so a file left out is never silently missing. It is read by people in a spreadsheet as much as by
// scripts, so it is written for both: RFC 4180 (quoted where needed, CRLF line ends) in UTF-8 with a byte order
// mark — Excel opens a BOM-less CSV in the system's legacy code page, which garbles every non-ASCII name — and
// with cells that a spreadsheet would run as a formula defused, since names come from the tracking site.

export type ManifestStatus = 'included' | 'skipped';

export interface ManifestRow {
  entityType: string;
  entityId: string;
  entityName: string;
  source: FileRef['source'];
  field: string | null;
  linkType: FileLink['type'];
  /** Where a web or local link points (empty for uploaded files, whose signed URLs are never written down). */
  link: string | null;
  /** The file's name as the site gives it. */
  fileName: string;
  /** Bytes, where known. */
  size: number | null;
  /** The file's path in the zip; null when it is not in it. */
  entryName: string | null;
  status: ManifestStatus;
  /** Why it was skipped (empty when included). */
  reason: string | null;
}

export const MANIFEST_ENTRY_NAME = 'manifest.csv';

const HEADER = [
  'entity_type',
  'entity_id',
  'entity_name',
  'source',
  'field',
  'link_type',
  'link',
  'file_name',
  'size_bytes',
  'zip_entry',
  'status',
  'reason',
] as const;

const BYTE_ORDER_MARK = '\ufeff';
const LINE_END = '\r\n';

/** The bytes of `manifest.csv` for these rows, header first. */
export function manifestCsv(rows: readonly ManifestRow[]): Buffer {
  const lines = [HEADER.map(csvCell).join(',')];
  for (const row of rows) {
    lines.push(
      [
        row.entityType,
        row.entityId,
        row.entityName,
        row.source,
        row.field,
        row.linkType,
        row.link,
        row.fileName,
        row.size,
        row.entryName,
        row.status,
        row.reason,
      ]
        .map(csvCell)
        .join(','),
    );
  }
  return Buffer.from(BYTE_ORDER_MARK + lines.join(LINE_END) + LINE_END, 'utf8');
}

/** One cell: formula-safe, NUL-free, quoted when it holds a comma, a quote or a line break. */
export function csvCell(value: string | number | null): string {
  if (value === null) return '';
  // NUL ends strings in C-based CSV readers, cutting the row short: U+FFFD shows something was there.
  let text = defuseFormula(String(value).replaceAll('\0', '\ufffd'));
  if (/[",\r\n]/.test(text)) text = `"${text.replaceAll('"', '""')}"`;
  return text;
}

/**
 * Spreadsheets run a cell starting with `=`, `+`, `-` or `@` as a formula (`=HYPERLINK(...)` in a file name
 * would become a live link). A leading tab or carriage return is on the usual list too, and leading white space
 * before a sign is treated alike to be safe rather than trust every spreadsheet to keep it. Such a cell gets a
 * leading `'`, which spreadsheets show as text. Our own numbers never start so; only the site's text changes.
 */
function defuseFormula(text: string): string {
  return /^[\t\r]|^\s*[=+\-@]/.test(text) ? `'${text}` : text;
}
