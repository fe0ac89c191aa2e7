// What the service needs of a tracking site, whatever site it is (ShotGrid first, ftrack second). The
// actions and the transfer core speak only this; each adapter maps it onto its site's API.

/**
 * A record's id as the seam carries it: a string whatever the site (ftrack's are UUIDs; ShotGrid's numbers are
 * written as their digits). Each adapter turns it back into its site's own form at its boundary.
 */
export type EntityId = string;

/** An entity the user selected, as they may see it. */
export interface SelectedEntity {
  type: string;
  id: EntityId;
  /** Its code or name, as the site shows it. */
  name: string;
  project: { id: EntityId; name: string | null } | null;
  /** No thumbnail, one still being processed, or a short-lived URL to it (never stored). */
  thumbnail: { state: 'none' } | { state: 'pending' } | { state: 'ready'; url: string };
  /** The entity's page on the site. */
  siteUrl: string;
  /** For a Task: the entity it belongs to (a Shot, an Asset…), or null when it has none. Absent for other types. */
  parent?: { type: string; id: EntityId; name: string } | null;
  /** A Version's review media now (`withReviewMedia`): its file's name, or null when it has none. Absent when not asked. */
  reviewMedia?: { name: string } | null;
}

export interface Selection {
  /** The selected entities the user can see, in the order they were selected. */
  visible: SelectedEntity[];
  /** Selected ids the user cannot see (or that no longer exist): named as such, never shown. */
  hiddenIds: EntityId[];
}

/**
 * What an upload fills, in the actions' words; each adapter knows its site's fields: a Version's review media (its
 * movie: ShotGrid's configured file field), an entity's thumbnail, or a new attachment linked to the entity.
 */
export type UploadSlot = 'review-media' | 'thumbnail' | 'attachment';

/**
 * What beginning an upload takes, for every site up front: ShotGrid needs the name and whether it goes in parts;
 * ftrack also signs the size, the type and (for one PUT) the file's checksum into the links it gives.
 */
export interface NewUpload {
  name: string;
  /** Bytes, or null when not known before the bytes are read (the plain form streams them). */
  size: number | null;
  contentType: string;
  /** More than one part (the part count may still be unknown: the plain form). */
  multipart: boolean;
  partCount: number | null;
  /** The whole file's MD5, base64 (RFC 1864), when known before the upload begins. */
  checksum?: string;
}

/** Where an upload goes. */
export interface UploadTarget {
  type: string;
  id: EntityId;
  slot: UploadSlot;
}

/**
 * An upload begun at the site, as plain data: kept in the shared store between the page's requests, so any
 * instance can send the next part or complete it. What is inside is the adapter's own business.
 */
export interface TrackerUpload {
  target: UploadTarget;
  filename: string;
  multipart: boolean;
  /** Adapter state (JSON-serialisable). */
  state: Record<string, unknown>;
}

/**
 * Where one part's bytes go: a URL and what to send with it. `receipt` says what proves the part arrived: storage's
 * ETag (S3-style object storage, presigned, no header of ours), or the site's own answer (a local install takes
 * the bytes itself, with the user's token, and answers what completing needs).
 */
export interface PartLocation {
  url: string;
  /** Headers the PUT must carry besides Content-Length and Content-Type. */
  headers?: Record<string, string>;
  receipt: 'etag' | 'body';
}

/** What an upload created at the site. */
export interface UploadedFile {
  /** The Attachment that holds the file; null for a thumbnail, which has none. */
  attachmentId: EntityId | null;
  name: string;
  /** The record the file belongs to, on the site. */
  siteUrl: string;
}

/** A record the service created or changed at the site, as people see it there. */
export interface SiteRecord {
  type: string;
  id: EntityId;
  name: string;
  /** Its page on the site. */
  siteUrl: string;
}

/** A new Version for review, as the launching user creates it. */
export interface NewVersion {
  code: string;
  projectId: EntityId;
  /** What it is a version of: a Shot, an Asset… */
  entity: { type: string; id: EntityId };
  /** The Task it was made for, when there is one. */
  taskId: EntityId | null;
  /** The artist: the person who submits it. */
  userId: EntityId;
  description: string | null;
  /** A status code of the site's Version status list (e.g. `rev`); null leaves the site's default. */
  status: string | null;
}

/** Which of an entity's files a download gathers. */
export interface FileKinds {
  /** Attachments linked to the entity (its Files tab). */
  attachments: boolean;
  /** The entity's file/link fields (a Version's uploaded movie, any other file field). */
  fields: boolean;
  /** Its thumbnail. */
  thumbnails: boolean;
  /** Attachments of the Notes linked to it. */
  noteAttachments: boolean;
}

/** Where a file's bytes are: at the site (uploaded), behind a web link nobody checked, or on a studio file system. */
export type FileLink =
  | { type: 'upload' }
  | { type: 'web'; url: string }
  | { type: 'local'; storageCode: string | null; relativePath: string | null; localPath: string | null };

/** One file of one selected entity, as the site describes it. Names come from the site: never trusted as paths. */
export interface FileRef {
  entity: { type: string; id: EntityId; name: string };
  source: 'attachment' | 'field' | 'thumbnail' | 'note-attachment';
  /** The field, for `field` and `thumbnail` files. */
  field: string | null;
  /** The Attachment record holding the file, where there is one. */
  attachmentId: EntityId | null;
  name: string;
  /** Bytes, as the site states them; null when it does not say (thumbnails, web links). */
  size: number | null;
  contentType: string | null;
  link: FileLink;
}

/**
 * The site keeps a file's bytes back: it is still being scanned for malware (try again later), or was quarantined
 * (never served). Thrown by `locateFile`; the site's own words are the message.
 */
export class FileHeldBySite extends Error {
  readonly reason: 'scanning' | 'quarantined';
  constructor(reason: 'scanning' | 'quarantined', message: string) {
    super(message);
    this.name = 'FileHeldBySite';
    this.reason = reason;
  }
}

/**
 * What an entity type is for the actions, whatever the site calls it: a version (review media), a shot-like thing a
 * version can be made of (ShotGrid's Shot and Asset, ftrack's Shot, Sequence and AssetBuild), a task, or other.
 */
export type EntityRole = 'version' | 'shot-like' | 'task' | 'other';

export interface Tracker {
  readonly kind: 'shotgrid' | 'ftrack';
  /** The role of one of the site's entity types (as the adapter names them: `Version`, `AssetVersion`…). */
  roleOf(entityType: string): EntityRole;
  /** The site's entity type for a version people review ("Version", "AssetVersion"): what createVersion makes. */
  readonly versionType: string;
  /** The statuses a new version may be given, as `login` may see them (`code` is what createVersion takes). */
  versionStatuses(login: string): Promise<{ code: string; name: string }[]>;
  /** The site's product as its users name it ("ShotGrid", "ftrack"), for the pages' words. */
  readonly siteName: string;
  /** Where its users pick an action for what they selected, as the pages name it ("ShotGrid's right-click menu"). */
  readonly actionMenu: string;
  /** An entity type as the site's users read it on its pages (ftrack's web UI says "Version" for AssetVersion). */
  typeLabel(entityType: string): string;
  /** The site's origin, e.g. https://studio.shotgrid.autodesk.com. */
  readonly siteUrl: string;
  /** Throws when the site cannot be reached or refuses the service's credentials. */
  checkReachable(): Promise<void>;
  /**
   * The selected entities as `login` sees them (their permissions apply); with `withReviewMedia`, also what each
   * Version's review media is now (a page says so before an upload replaces it).
   */
  lookupSelection(login: string, entityType: string, ids: readonly EntityId[], options?: { withReviewMedia?: boolean }): Promise<Selection>;
  /**
   * Whether the site takes an upload to this target in parts; where not, a file goes in one PUT (≤ 5 GiB). May ask
   * the site (as `login`) once what kind of storage it has.
   */
  multipartAllowed(login: string, target: UploadTarget): Promise<boolean>;
  /**
   * Whether a multipart upload may begin before its size and part count are known (a plain form's file, read as it
   * comes): ShotGrid signs each part when asked; ftrack signs the size and every part's link up front.
   */
  readonly unsizedMultipart: boolean;
  /** Begins an upload of `file` to `target` as `login`. */
  beginUpload(login: string, target: UploadTarget, file: NewUpload): Promise<TrackerUpload>;
  /**
   * Where to PUT part `n` (1-based; 1 for a single-part upload), freshly signed. `part.md5` is the part's MD5
   * (base64) when known: a site that signs a one-piece upload's checksum (ftrack) may ask for its link only then,
   * when the page has hashed the file.
   */
  partUrl(login: string, upload: TrackerUpload, n: number, part?: { md5?: string }): Promise<PartLocation>;
  /** Completes the upload with the parts' receipts (ETags, or the site's answer) in order, then reads back what it created. */
  completeUpload(login: string, upload: TrackerUpload, etags: readonly string[], data: { displayName?: string; tagIds?: readonly EntityId[] }): Promise<UploadedFile>;
  /** The files of the selected entities that `login` may see, by kind, in a stable order (entity, source, name). */
  listFiles(login: string, entityType: string, ids: readonly EntityId[], kinds: FileKinds): Promise<FileRef[]>;
  /**
   * A fresh short-lived location of an uploaded file or thumbnail's bytes (asked again when it expires); throws
   * FileHeldBySite for a file under scan or quarantined.
   */
  locateFile(login: string, file: FileRef): Promise<{ url: string; headers?: Record<string, string> }>;
  /** Gives up a multipart upload so no orphaned parts stay in storage (a no-op for single-part). */
  abortUpload(login: string, upload: TrackerUpload): Promise<void>;
  /** Creates a Version as `login` (their permissions; they are its creator). */
  createVersion(login: string, version: NewVersion): Promise<SiteRecord>;
  /** Deletes (retires) a record as `login`; one that is already gone counts as deleted. */
  deleteEntity(login: string, type: string, id: EntityId): Promise<void>;
  /** The Playlists of a project that `login` may see, newest first. */
  listPlaylists(login: string, projectId: EntityId): Promise<SiteRecord[]>;
  /** Creates a Playlist in the project holding the Versions, as `login`. */
  createPlaylist(login: string, playlist: { name: string; projectId: EntityId; versionIds: readonly EntityId[] }): Promise<SiteRecord>;
  /** Adds Versions to a Playlist as `login`, keeping those it holds. */
  addToPlaylist(login: string, playlistId: EntityId, versionIds: readonly EntityId[]): Promise<SiteRecord>;
  close(): Promise<void>;
}
