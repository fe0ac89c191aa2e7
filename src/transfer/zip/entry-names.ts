// Entry names for the download zip: `<Entity type>/<code or name or id>/<file name>`. Every part comes from the
// tracking site, where anyone who can name a file can write anything, and the zip is unpacked by Windows
// Explorer, macOS Archive Utility, unzip and 7-Zip alike. So each segment is made safe on all of them (no
// traversal, no separators, nothing Windows refuses or silently changes), kept short enough to extract under
// a deep folder, and the names are unique the way case-insensitive file systems compare them. Everything here
// is a pure function of the input and its order: the same selection gives the same layout every time.

import { MISLEADING_CHARACTERS } from '../name-characters.ts';

/** Longest segment, in UTF-8 bytes: under the 255 that ext4 and NTFS allow, with room for ` (n)`. */
export const MAX_SEGMENT_BYTES = 200;
/** Longest whole entry name, in UTF-8 bytes, leaving room for the folder it is extracted into. */
export const MAX_ENTRY_NAME_BYTES = 400;
/** Longest entity type folder: type names are short; this only bounds an absurd one. */
const MAX_TYPE_SEGMENT_BYTES = 64;
/** Longest text after the last dot still treated as an extension (kept when truncating, suffixed before). */
const MAX_EXTENSION_BYTES = 16;

// C0 controls, DEL and C1 controls; what Windows refuses in a name; both separators.
// eslint-disable-next-line no-control-regex
const REFUSED_CHARACTERS = /[\u0000-\u001f\u007f-\u009f<>:"/\\|?*]/g;
// Windows opens a device instead of a file for these, whatever the extension (`CON.txt`, `nul.tar.gz`).
const RESERVED_DEVICE_NAMES = /^(?:CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[0-9¹²³]|LPT[0-9¹²³])$/i;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

interface SplitName {
  stem: string;
  extension: string;
}

/**
 * One path segment safe to create on any common file system: separators, control characters and characters
 * Windows refuses become `_`, misleading bidi controls go, trailing dots and spaces (which Windows strips) go,
 * device names get a leading `_`, Unicode stays (NFC), at most `maxBytes` UTF-8 bytes (cut between characters,
 * keeping the extension). Empty, `.` or `..` gives the fallback, made safe the same way.
 */
export function safeEntrySegment(raw: string, fallback: string, maxBytes = MAX_SEGMENT_BYTES): string {
  const name = fitSegment(cleanSegment(raw), maxBytes);
  if (name !== '') return name;
  const safeFallback = fitSegment(cleanSegment(fallback), maxBytes);
  return safeFallback === '' ? '_' : safeFallback;
}

/** The name with unsafe characters replaced and edges trimmed, not yet bounded or checked for device names. */
function cleanSegment(raw: string): string {
  return trimEdges(
    String(raw)
      // A lone surrogate has no UTF-8 form; U+FFFD stands in for it.
      .toWellFormed()
      // Removed before composing, so a mark they separated from its letter still composes with it.
      .replace(MISLEADING_CHARACTERS, '')
      .normalize('NFC')
      .replace(REFUSED_CHARACTERS, '_'),
  );
}

/** Leading white space hides a name's start; trailing dots and spaces are dropped by Windows (so `..` → ``). */
function trimEdges(name: string): string {
  return name.replace(/^\s+/u, '').replace(/[\s.]+$/u, '');
}

/** Bounds a cleaned name to `maxBytes` and makes a device name safe; '' when nothing usable is left. */
function fitSegment(name: string, maxBytes: number): string {
  if (name === '') return '';
  const { stem, extension } = splitExtension(name);
  let fitted = joinWithin(stem, extension, maxBytes);
  if (isReservedDeviceName(fitted)) fitted = joinWithin(`_${stem}`, extension, maxBytes);
  return fitted;
}

/** Stem and extension joined, the stem shortened so the whole fits `maxBytes`. */
function joinWithin(stem: string, extension: string, maxBytes: number): string {
  const extensionBytes = Buffer.byteLength(extension);
  const shortStem = extensionBytes < maxBytes ? cutStem(stem, maxBytes - extensionBytes) : '';
  // A stem cut to nothing would leave a bare `.ext`, a hidden file on Unix: keep what the whole name can give.
  if (shortStem === '') return cutStem(stem + extension, maxBytes);
  return shortStem + extension;
}

/** `text` cut to `maxBytes`; where it was cut, no space or dot is left dangling at the cut. */
function cutStem(text: string, maxBytes: number): string {
  const cut = truncateToBytes(text, maxBytes);
  return cut === text ? text : trimEdges(cut);
}

/** The text after the last dot counts as an extension when short, without spaces, after a stem of more than dots. */
function splitExtension(name: string): SplitName {
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || !/[^.]/.test(name.slice(0, dot))) return { stem: name, extension: '' };
  const extension = name.slice(dot);
  if (extension.length < 2 || Buffer.byteLength(extension) > MAX_EXTENSION_BYTES || /\s/u.test(extension)) {
    return { stem: name, extension: '' };
  }
  return { stem: name.slice(0, dot), extension };
}

function isReservedDeviceName(name: string): boolean {
  // Windows looks at the part before the first dot, ignoring trailing spaces there (`CON .txt` is CON too).
  const base = name.split('.')[0]?.trimEnd() ?? '';
  return RESERVED_DEVICE_NAMES.test(base);
}

/**
 * The longest prefix of `text` within `maxBytes` UTF-8 bytes, cut between user-perceived characters (an emoji
 * sequence or a letter with its accents stays whole). Should the first such character alone be longer than the
 * budget, it is cut between code points, which never splits a surrogate pair either.
 */
function truncateToBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  // The longest whole-code-point prefix: back off from the byte limit past UTF-8 continuation bytes (10xxxxxx).
  const bytes = Buffer.from(text, 'utf8');
  let end = Math.max(0, maxBytes);
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  const byCodePoint = bytes.toString('utf8', 0, end);
  // Then back to the start of the character the cut falls in, unless that leaves nothing.
  const cutInside = graphemes.segment(text).containing(byCodePoint.length);
  return cutInside && cutInside.index > 0 && cutInside.index < byCodePoint.length ? byCodePoint.slice(0, cutInside.index) : byCodePoint;
}

/**
 * The key names compare by on case-insensitive file systems (NTFS, APFS, HFS+ by default): `Shot.MOV` and
 * `shot.mov` would overwrite each other there. Folding through upper then lower case also catches pairs like
 * `ſ`/`s` and the Kelvin sign/`k`; folding more than a file system does only costs an extra ` (2)`.
 */
export function nameCollisionKey(name: string): string {
  return name.normalize('NFC').toUpperCase().toLowerCase();
}

/** `name (n)` for n ≥ 2, before the extension when `keepExtension`, still within `maxBytes`. */
function numbered(name: string, n: number, maxBytes: number, keepExtension: boolean): string {
  const suffix = ` (${n})`;
  const { stem, extension } = keepExtension ? splitExtension(name) : { stem: name, extension: '' };
  const room = maxBytes - Buffer.byteLength(suffix) - Buffer.byteLength(extension);
  return `${cutStem(stem, room) || '_'}${suffix}${extension}`;
}

/** Names taken in one folder, compared case-insensitively; hands out `name`, `name (2)`, `name (3)`... */
class FolderNames {
  readonly #taken = new Set<string>();
  /** Per wanted name, the number to try next: a folder of 1,000 equal names costs 1,000 tries, not 500,000. */
  readonly #nextNumber = new Map<string, number>();

  claim(name: string, maxBytes: number, keepExtension: boolean): string {
    const wanted = nameCollisionKey(name);
    if (!this.#taken.has(wanted)) {
      this.#taken.add(wanted);
      return name;
    }
    for (let n = this.#nextNumber.get(wanted) ?? 2; ; n++) {
      const candidate = numbered(name, n, maxBytes, keepExtension);
      const key = nameCollisionKey(candidate);
      if (this.#taken.has(key)) continue;
      this.#taken.add(key);
      this.#nextNumber.set(wanted, n + 1);
      return candidate;
    }
  }
}

export interface EntryNameInput {
  entityType: string;
  entityId: string;
  /** The entity's code or name; the id stands in when it is empty. */
  entityName: string;
  fileName: string;
}

interface EntityFolder {
  path: string;
  files: FolderNames;
}

/**
 * Hands out entry names in the order asked, each unique in the archive. Each entity gets its own folder: two
 * entities with the same code (in different projects, say) get `sh010` and `sh010 (2)` rather than sharing one,
 * and every file of an entity lands in the same folder. Folder names are fixed at the entity's first file, so
 * the file name gets what remains of the 400-byte budget (never under 134 bytes).
 */
export class EntryNamer {
  readonly #typeFolders = new Map<string, string>();
  readonly #typeNames = new FolderNames();
  readonly #entityFolders = new Map<string, EntityFolder>();
  readonly #entityNames = new Map<string, FolderNames>();

  name(input: EntryNameInput): string {
    const folder = this.#entityFolder(input);
    const fileBudget = Math.min(MAX_SEGMENT_BYTES, MAX_ENTRY_NAME_BYTES - Buffer.byteLength(folder.path) - 1);
    const fileName = safeEntrySegment(input.fileName, 'file', fileBudget);
    return `${folder.path}/${folder.files.claim(fileName, fileBudget, true)}`;
  }

  #entityFolder(input: EntryNameInput): EntityFolder {
    const typeFolder = this.#typeFolder(input.entityType);
    const key = `${input.entityType}\u0000${input.entityId}`;
    const known = this.#entityFolders.get(key);
    if (known) return known;
    let siblings = this.#entityNames.get(typeFolder);
    if (!siblings) {
      siblings = new FolderNames();
      this.#entityNames.set(typeFolder, siblings);
    }
    const entityName = safeEntrySegment(input.entityName, String(input.entityId));
    const folder = { path: `${typeFolder}/${siblings.claim(entityName, MAX_SEGMENT_BYTES, false)}`, files: new FolderNames() };
    this.#entityFolders.set(key, folder);
    return folder;
  }

  #typeFolder(entityType: string): string {
    let folder = this.#typeFolders.get(entityType);
    if (folder === undefined) {
      folder = this.#typeNames.claim(safeEntrySegment(entityType, 'Entity', MAX_TYPE_SEGMENT_BYTES), MAX_TYPE_SEGMENT_BYTES, false);
      this.#typeFolders.set(entityType, folder);
    }
    return folder;
  }
}
