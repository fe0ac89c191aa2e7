// What an Attachment states about its own file. On a current site `file_size` and `file_extension` are null on
// every Attachment created since 2025 (live probe, shotgrid-rest.md "File and link field values"): a client learns
// a size from storage, not from the record. Older attachments still carry both. The sandbox dates its seeded
// attachments on either side of that line, and everything uploaded at run time falls after it.

/** Attachments created at or after this instant state no size and no extension. */
export const SIZELESS_SINCE = '2025-01-01T00:00:00Z';

/** Seed dates (ShotGrid's ISO form): one before the line, one after it. */
export const SEEDED_BEFORE_2025 = '2024-09-16T10:30:00Z';
export const SEEDED_SINCE_2025 = '2025-11-03T14:05:00Z';

export interface StatedFile {
  file_size: number | null;
  file_extension: string | null;
}

/** The size and extension an Attachment created at `createdAt` shows for a file of `size` bytes named `filename`. */
export function statedFile(createdAt: string, filename: string, size: number | null): StatedFile {
  if (createdAt >= SIZELESS_SINCE) return { file_size: null, file_extension: null };
  const dot = filename.lastIndexOf('.');
  return { file_size: size, file_extension: dot > 0 ? filename.slice(dot + 1).toLowerCase() : null };
}
