import { createHash, randomUUID } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import { createLogger } from '../src/log.ts';
import { seedId } from '../src/sandbox/ftrack/seed.ts';
import { createTracker } from '../src/trackers/create-tracker.ts';
import type { FtrackTracker } from '../src/trackers/ftrack/tracker.ts';
import { ShotgridClient, type ShotgridSession } from '../src/trackers/shotgrid/client.ts';
import type { FileRef } from '../src/trackers/tracker.ts';

// The sandbox sites a bench runs against, behind what the benches need of them: files stored as a script would
// store them, an action launched from the site's menu as a person would, and the lookups a script makes for a
// file's bytes. ShotGrid's through its REST API and the AMI menu; ftrack's through the ftrack adapter (the same
// batches a script sends) and the action menu played over its event hub. Both sandboxes hold storage to S3's rules.

export type BenchSiteKind = 'shotgrid' | 'ftrack';

/** A stored file the zip benches download: the site's id for it (an Attachment, a FileComponent), name, size. */
export interface BenchFile {
  id: string;
  name: string;
  size: number;
}

/** An upload a script began at the site, in parts: where each part goes, and how to complete it. */
export interface ScriptUpload {
  partLocation(n: number): Promise<{ url: string; headers: Record<string, string> }>;
  complete(etags: readonly string[]): Promise<void>;
}

export interface BenchSite {
  readonly kind: BenchSiteKind;
  /** "ShotGrid", "ftrack": what the figures are printed under. */
  readonly label: string;
  readonly siteUrl: string;
  /** The type the zip benches store files on: Shots on ShotGrid (attachments), AssetVersions on ftrack (components). */
  readonly containerType: string;
  /** New containers in the demo project, named `${prefix}_01`…. */
  makeContainers(prefix: string, count: number): Promise<string[]>;
  /** One file stored on a container as a script stores it: the site's upload API and one storage PUT. */
  uploadFile(container: string, name: string, bytes: Buffer): Promise<void>;
  /** The containers' files in the order the service zips them; each checked to be `size` bytes where the site says. */
  filesOf(containers: readonly string[], size: number): Promise<BenchFile[]>;
  /** An action launched on `ids` as the artist from the site's menu: the action page's URL at the service. */
  launch(action: string, type: string, ids: readonly string[]): Promise<string>;
  /** A file's signed storage URL, asked as a script asks. */
  locate(file: BenchFile): Promise<string>;
  /**
   * What a pass-through asks the site for each file's storage URL, as the service does: a request answered with a
   * 302 (not followed), with the headers it needs (a token got beforehand, as the service holds one).
   */
  lookups(files: readonly BenchFile[]): Promise<{ urls: string[]; headers: Record<string, string> }>;
  /** A version the upload bench gives review media (its movie). */
  reviewTarget(): Promise<{ type: string; id: string }>;
  /** An upload of the target's review media, begun as a script: in parts, or (partCount 1, where the site allows) one PUT with the file's MD5. */
  beginReviewUpload(target: { type: string; id: string }, name: string, size: number, partCount: number, checksum?: string): Promise<ScriptUpload>;
  /** The target's review media if it is the file named so: the site's id for it and the size it states (null: none). */
  reviewMedia(target: { type: string; id: string }, fileName: string): Promise<{ id: string; size: number | null } | null>;
  /** The sandbox's fault settings (PUT /sandbox/admin/faults; {} clears them). */
  setFaults(settings: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

/** The sandbox's API script and the secrets the service is started with (the ShotGrid sandbox's own defaults). */
export const BENCH_SCRIPT = { name: 'ami-transfer', key: 'sandbox-key' } as const;
export const BENCH_AMI_SECRET = 'sandbox-secret';
/** The ftrack sandbox's site key (its seeded default, public by design) and the users the benches act as. */
export const FTRACK_SITE_KEY = seedId('site-api-key');
export const FTRACK_SERVICE_USER = 'ami-transfer';
const ARTIST = 'artist';

/** The sandbox as a child process: its script, its environment, and when it is ready. */
export function sandboxProcess(kind: BenchSiteKind, ports: { site: number; storage: number }, dataDir: string, publicUrl: string): { script: string; env: Record<string, string> } {
  if (kind === 'ftrack') {
    return {
      script: 'sandbox/ftrack/main.js',
      env: { FTRACK_SANDBOX_PORT: String(ports.site), FTRACK_SANDBOX_STORAGE_PORT: String(ports.storage), FTRACK_SANDBOX_HOST: '127.0.0.1', FTRACK_SANDBOX_DATA_DIR: dataDir, SANDBOX_FAULTS: '' },
    };
  }
  // The sandbox's menu items point at the service.
  return {
    script: 'sandbox/main.js',
    env: { SANDBOX_PORT: String(ports.site), SANDBOX_STORAGE_PORT: String(ports.storage), SANDBOX_HOST: '127.0.0.1', SANDBOX_DATA_DIR: dataDir, PUBLIC_URL: publicUrl, SANDBOX_FAULTS: '' },
  };
}

/** A path of the sandbox that answers `status` once it is up. */
export function sandboxReadiness(kind: BenchSiteKind): { path: string; status: number } {
  return kind === 'ftrack' ? { path: '/sandbox/menu', status: 200 } : { path: '/api/v1/entity/projects', status: 401 };
}

/** The service's settings for its site (the sandbox's credentials). */
export function siteEnv(kind: BenchSiteKind, siteUrl: string): Record<string, string> {
  if (kind === 'ftrack') return { FTRACK_SERVER_URL: siteUrl, FTRACK_API_USER: FTRACK_SERVICE_USER, FTRACK_API_KEY: FTRACK_SITE_KEY };
  return { SHOTGRID_URL: siteUrl, SHOTGRID_SCRIPT_NAME: BENCH_SCRIPT.name, SHOTGRID_SCRIPT_KEY: BENCH_SCRIPT.key, AMI_SECRET_TOKEN: BENCH_AMI_SECRET };
}

export async function openBenchSite(kind: BenchSiteKind, siteUrl: string, serviceUrl: string, dispatcher: Dispatcher): Promise<BenchSite> {
  return kind === 'ftrack' ? FtrackBenchSite.open(siteUrl, dispatcher) : ShotgridBenchSite.open(siteUrl, serviceUrl, dispatcher);
}

async function putFaults(siteUrl: string, dispatcher: Dispatcher, settings: Record<string, unknown>): Promise<void> {
  const response = await request(`${siteUrl}/sandbox/admin/faults`, { method: 'PUT', dispatcher, headers: { 'content-type': 'application/json' }, body: JSON.stringify(settings) });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`the sandbox refused the faults ${JSON.stringify(settings)}: ${response.statusCode} ${text}`);
}

/** One storage PUT with exactly the headers the site's link asks for; storage's ETag. */
async function putObject(url: string, headers: Record<string, string>, bytes: Buffer, dispatcher: Dispatcher): Promise<string> {
  const put = await request(url, { method: 'PUT', dispatcher, headers: { ...headers, 'content-length': String(bytes.length) }, body: bytes });
  const text = await put.body.text();
  if (put.statusCode !== 200) throw new Error(`storage refused a PUT: ${put.statusCode} ${text.slice(0, 300)}`);
  return String(put.headers.etag ?? '');
}

// ---- ShotGrid ----

export class ShotgridBenchSite implements BenchSite {
  readonly kind = 'shotgrid';
  readonly label = 'ShotGrid';
  readonly containerType = 'Shot';
  readonly siteUrl: string;
  readonly #serviceUrl: string;
  readonly #dispatcher: Dispatcher;
  readonly #client: ShotgridClient;
  /** The sandbox as its API script sees it. */
  readonly script: ShotgridSession;
  readonly #demoProjectId: number;

  private constructor(siteUrl: string, serviceUrl: string, dispatcher: Dispatcher, client: ShotgridClient, demoProjectId: number) {
    this.siteUrl = siteUrl;
    this.#serviceUrl = serviceUrl;
    this.#dispatcher = dispatcher;
    this.#client = client;
    this.script = client.as(null);
    this.#demoProjectId = demoProjectId;
  }

  static async open(siteUrl: string, serviceUrl: string, dispatcher: Dispatcher): Promise<ShotgridBenchSite> {
    const client = new ShotgridClient({ siteUrl, scriptName: BENCH_SCRIPT.name, scriptKey: BENCH_SCRIPT.key });
    const [demo] = await client.as(null).find('Project', [['name', 'is', 'Demo']], ['name']);
    if (!demo) throw new Error('the sandbox has no project Demo');
    return new ShotgridBenchSite(siteUrl, serviceUrl, dispatcher, client, demo.id);
  }

  async makeContainers(prefix: string, count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let s = 1; s <= count; s++) {
      const shot = await this.script.create('Shot', { code: `${prefix}_${String(s).padStart(2, '0')}`, description: 'bench', project: { type: 'Project', id: this.#demoProjectId } });
      ids.push(String(shot.id));
    }
    return ids;
  }

  async uploadFile(container: string, name: string, bytes: Buffer): Promise<void> {
    const begun = await this.script.beginUpload({ type: 'Shot', id: Number(container), field: null }, name, false);
    // Storage's upload links sign the host only: nothing but the length goes with the bytes.
    await putObject(begun.uploadUrl, {}, bytes, this.#dispatcher);
    await this.script.completeUpload(begun.completePath, begun.info, {});
  }

  async filesOf(containers: readonly string[], size: number): Promise<BenchFile[]> {
    const shotIds = containers.map(Number);
    const found = await this.script.find('Attachment', [['attachment_links', 'in', shotIds.map((id) => ({ type: 'Shot', id }))]], ['filename', 'file_size', 'attachment_links'], { sort: 'id' });
    const position = new Map(shotIds.map((id, index) => [id, index]));
    const shotOf = (attachment: (typeof found)[number]) => (attachment.attachment_links as { id: number }[])[0]?.id ?? -1;
    // The site states no size for these (file_size null); one it did state would have to be right.
    if (found.some((attachment) => (attachment.file_size ?? size) !== size)) throw new Error(`the site lists an attachment of the Shots that is not ${size} bytes`);
    // The service's order: Shot by Shot as selected, then by name.
    return found
      .map((attachment) => ({ attachment, shot: position.get(shotOf(attachment)) ?? -1 }))
      .sort((x, y) => x.shot - y.shot || String(x.attachment.filename).localeCompare(String(y.attachment.filename)))
      .map(({ attachment }) => ({ id: String(attachment.id), name: String(attachment.filename), size }));
  }

  /** The sandbox's menu signs the AMI post; the service's answer is the page. */
  async launch(action: string, type: string, ids: readonly string[]): Promise<string> {
    const items = await this.script.find('ActionMenuItem', [], ['url', 'entity_type']);
    const item = items.find((candidate) => String(candidate.url).endsWith(`/ami/${action}`) && (candidate.entity_type === null || candidate.entity_type === type));
    if (!item) throw new Error(`the sandbox has no menu item for ${action}`);
    const numbers = ids.map(Number);
    const signed = await request(`${this.siteUrl}/sandbox/menu/launch`, {
      method: 'POST',
      dispatcher: this.#dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ami_id: item.id, login: ARTIST, entity_type: type, selected_ids: numbers, page_ids: numbers, sort_column: 'code', sort_direction: 'asc', grouping_column: '', session_uuid: randomUUID() }),
    });
    const { fields } = (await signed.body.json()) as { fields: [string, string][] };
    if (signed.statusCode !== 200) throw new Error(`the sandbox refused the launch: ${JSON.stringify(fields)}`);
    const posted = await request(`${this.#serviceUrl}/ami/${action}`, {
      method: 'POST',
      dispatcher: this.#dispatcher,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
    await posted.body.dump();
    if (posted.statusCode !== 303) throw new Error(`the launch answered ${posted.statusCode}`);
    return new URL(String(posted.headers.location), this.#serviceUrl).toString();
  }

  locate(file: BenchFile): Promise<string> {
    return this.script.locate(`/api/v1/entity/attachments/${file.id}/this_file`, { alt: 'original' });
  }

  async lookups(files: readonly BenchFile[]): Promise<{ urls: string[]; headers: Record<string, string> }> {
    // A token as the script acting as the artist (sudo), as the service holds one.
    const response = await request(`${this.siteUrl}/api/v1/auth/access_token`, {
      method: 'POST',
      dispatcher: this.#dispatcher,
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: BENCH_SCRIPT.name, client_secret: BENCH_SCRIPT.key, scope: `sudo_as_login:${ARTIST}` }).toString(),
    });
    const grant = (await response.body.json()) as { access_token?: string };
    if (response.statusCode !== 200 || typeof grant.access_token !== 'string') throw new Error(`the site refused a token: ${response.statusCode}`);
    return {
      urls: files.map((file) => `${this.siteUrl}/api/v1/entity/attachments/${file.id}/this_file?alt=original`),
      headers: { authorization: `Bearer ${grant.access_token}`, accept: 'application/json' },
    };
  }

  async reviewTarget(): Promise<{ type: string; id: string }> {
    const [version] = await this.script.find('Version', [['project', 'is', { type: 'Project', id: this.#demoProjectId }]], ['code'], { sort: 'id', limit: 1 });
    if (!version) throw new Error('the sandbox has no Version in Demo');
    return { type: 'Version', id: String(version.id) };
  }

  async beginReviewUpload(target: { type: string; id: string }, name: string): Promise<ScriptUpload> {
    const start = await this.script.beginUpload({ type: target.type, id: Number(target.id), field: 'sg_uploaded_movie' }, name, true);
    const nextPartPath = start.nextPartPath;
    if (nextPartPath === null) throw new Error('the site began a multipart upload without get_next_part');
    return {
      // Part n's presigned URL: the first came with the upload, the others by number from get_next_part's link.
      partLocation: async (n) => {
        if (n === 1) return { url: start.uploadUrl, headers: {} };
        const path = new URL(nextPartPath, this.siteUrl);
        path.searchParams.set('part_number', String(n));
        return { url: (await this.script.nextPart(`${path.pathname}${path.search}`)).uploadUrl, headers: {} };
      },
      complete: async (etags) => {
        await this.script.completeUpload(start.completePath, { ...start.info, etags }, {});
      },
    };
  }

  /** The Version's movie field holds one file: the upload just made, whatever its name there. */
  async reviewMedia(target: { type: string; id: string }): Promise<{ id: string; size: number | null } | null> {
    const version = await this.script.read(target.type, Number(target.id), ['sg_uploaded_movie']);
    const movie = version?.sg_uploaded_movie as { id?: unknown } | null | undefined;
    if (typeof movie?.id !== 'number') return null;
    const attachment = await this.script.read('Attachment', movie.id, ['file_size']);
    const size = attachment?.file_size;
    return { id: String(movie.id), size: typeof size === 'number' ? size : null };
  }

  setFaults(settings: Record<string, unknown>): Promise<void> {
    return putFaults(this.siteUrl, this.#dispatcher, settings);
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}

// ---- ftrack ----

export class FtrackBenchSite implements BenchSite {
  readonly kind = 'ftrack';
  readonly label = 'ftrack';
  readonly containerType = 'AssetVersion';
  readonly siteUrl: string;
  readonly #dispatcher: Dispatcher;
  /** The adapter the service uses, here as a script would use ftrack's API (the batches are the same). */
  readonly #tracker: FtrackTracker;
  readonly #demo: { projectId: string; shotId: string; artistId: string };
  /** MD5s of the bytes stored (every file is a prefix of one buffer): ftrack signs each single PUT's checksum. */
  readonly #md5s = new WeakMap<ArrayBufferLike, Map<string, string>>();

  private constructor(siteUrl: string, dispatcher: Dispatcher, tracker: FtrackTracker, demo: { projectId: string; shotId: string; artistId: string }) {
    this.siteUrl = siteUrl;
    this.#dispatcher = dispatcher;
    this.#tracker = tracker;
    this.#demo = demo;
  }

  static async open(siteUrl: string, dispatcher: Dispatcher): Promise<FtrackBenchSite> {
    const tracker = createTracker(
      { kind: 'ftrack', serverUrl: siteUrl, apiUser: FTRACK_SERVICE_USER, apiKey: FTRACK_SITE_KEY, maxConcurrentRequests: 8 },
      { log: createLogger({ level: 'silent' }), dispatcher },
    ) as FtrackTracker;
    const one = async (expression: string): Promise<string> => {
      const [found] = await tracker.api.query(null, expression);
      if (typeof found?.id !== 'string') throw new Error(`the ftrack sandbox has nothing for: ${expression}`);
      return found.id;
    };
    const projectId = await one('select id from Project where name is "demo"');
    const demo = { projectId, shotId: await one(`select id from Shot where name is "sh040" and project_id is "${projectId}"`), artistId: await one(`select id from User where username is "${ARTIST}"`) };
    return new FtrackBenchSite(siteUrl, dispatcher, tracker, demo);
  }

  async makeContainers(prefix: string, count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let v = 1; v <= count; v++) {
      const version = await this.#tracker.createVersion(ARTIST, {
        code: `${prefix}_${String(v).padStart(2, '0')}`,
        projectId: this.#demo.projectId,
        entity: { type: 'Shot', id: this.#demo.shotId },
        taskId: null,
        userId: this.#demo.artistId,
        description: 'bench',
        status: null,
      });
      ids.push(version.id);
    }
    return ids;
  }

  async uploadFile(container: string, name: string, bytes: Buffer): Promise<void> {
    const target = { type: 'AssetVersion', id: container, slot: 'attachment' as const };
    const upload = await this.#tracker.beginUpload(ARTIST, target, { name, size: bytes.length, contentType: 'application/octet-stream', multipart: false, partCount: 1, checksum: this.#md5(bytes) });
    const part = await this.#tracker.partUrl(ARTIST, upload, 1);
    // Exactly the headers ftrack signed (its Content-MD5 among them), and the length.
    const etag = await putObject(part.url, part.headers ?? {}, bytes, this.#dispatcher);
    await this.#tracker.completeUpload(ARTIST, upload, [etag], {});
  }

  async filesOf(containers: readonly string[], size: number): Promise<BenchFile[]> {
    // The service's listing (the same adapter and kinds as a zip of attachments): its order is the zip's.
    const refs: FileRef[] = await this.#tracker.listFiles(ARTIST, 'AssetVersion', containers, { attachments: true, fields: false, thumbnails: false, noteAttachments: false });
    if (refs.some((ref) => ref.size !== null && ref.size !== size)) throw new Error(`ftrack lists a component of the versions that is not ${size} bytes`);
    return refs.map((ref) => ({ id: String(ref.attachmentId), name: ref.name, size }));
  }

  /** The sandbox's menu as ftrack's web UI plays it: discover over the hub, launch the item, open the widget's URL. */
  async launch(action: string, type: string, ids: readonly string[]): Promise<string> {
    const menu = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
      const response = await request(`${this.siteUrl}/sandbox/menu/${path}`, { method: 'POST', dispatcher: this.#dispatcher, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const answer = (await response.body.json()) as Record<string, unknown>;
      if (response.statusCode !== 200) throw new Error(`the ftrack sandbox's menu refused ${path}: ${JSON.stringify(answer)}`);
      return answer;
    };
    const selection = { login: ARTIST, type, ids };
    // The service's listener joins the hub a moment after it answers (its /readyz says 200 even while it has not):
    // the menu lists its actions once it has.
    let items: { actionIdentifier: string }[] = [];
    for (const deadline = Date.now() + 15_000; items.length === 0 && Date.now() < deadline; ) {
      ({ items } = (await menu('discover', selection)) as { items: { actionIdentifier: string }[] });
      if (items.length === 0) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const item = items.find((candidate) => candidate.actionIdentifier.endsWith(action));
    if (!item) throw new Error(`the service offers no ${action} for ${type} (${JSON.stringify(items)})`);
    const { reply } = (await menu('launch', { ...selection, item })) as { reply: { type?: string; url?: string } | null };
    if (reply?.type !== 'widget' || typeof reply.url !== 'string') throw new Error(`the launch was answered ${JSON.stringify(reply)}`);
    const opened = await request(reply.url, { dispatcher: this.#dispatcher });
    await opened.body.dump();
    if (opened.statusCode !== 303) throw new Error(`the widget's link answered ${opened.statusCode}`);
    return new URL(String(opened.headers.location), reply.url).toString();
  }

  locate(file: BenchFile): Promise<string> {
    return this.#tracker.api.componentUrl(ARTIST, file.id);
  }

  async lookups(files: readonly BenchFile[]): Promise<{ urls: string[]; headers: Record<string, string> }> {
    // /component/get with the user and key in its query, as the service asks (ftrack.md, "Download and thumbnails").
    const url = (id: string) => `${this.siteUrl}/component/get?${new URLSearchParams({ id, username: ARTIST, apiKey: FTRACK_SITE_KEY }).toString()}`;
    return { urls: files.map((file) => url(file.id)), headers: {} };
  }

  async reviewTarget(): Promise<{ type: string; id: string }> {
    const [version] = await this.#tracker.api.query(ARTIST, `select id from AssetVersion where asset.context_id is "${this.#demo.shotId}" or asset.name is "sh030_comp"`);
    if (typeof version?.id !== 'string') throw new Error('the ftrack sandbox has no AssetVersion of sh030');
    return { type: 'AssetVersion', id: version.id };
  }

  async beginReviewUpload(target: { type: string; id: string }, name: string, size: number, partCount: number, checksum?: string): Promise<ScriptUpload> {
    const multipart = partCount > 1;
    const upload = await this.#tracker.beginUpload(ARTIST, { ...target, slot: 'review-media' }, { name, size, contentType: 'video/quicktime', multipart, partCount, ...(checksum ? { checksum } : {}) });
    return {
      partLocation: async (n) => {
        const part = await this.#tracker.partUrl(ARTIST, upload, n);
        return { url: part.url, headers: part.headers ?? {} };
      },
      complete: async (etags) => {
        await this.#tracker.completeUpload(ARTIST, upload, etags, {});
      },
    };
  }

  async reviewMedia(target: { type: string; id: string }, fileName: string): Promise<{ id: string; size: number | null } | null> {
    // A version's review media is one of its components (the newest of that name is the upload just made).
    const files = await this.#tracker.listFiles(ARTIST, target.type, [target.id], { attachments: false, fields: true, thumbnails: false, noteAttachments: false });
    const media = files.filter((file) => file.name === fileName).at(-1);
    return media ? { id: String(media.attachmentId), size: media.size } : null;
  }

  setFaults(settings: Record<string, unknown>): Promise<void> {
    return putFaults(this.siteUrl, this.#dispatcher, settings);
  }

  close(): Promise<void> {
    return this.#tracker.close();
  }

  #md5(bytes: Buffer): string {
    let byRange = this.#md5s.get(bytes.buffer);
    if (!byRange) this.#md5s.set(bytes.buffer, (byRange = new Map()));
    const key = `${bytes.byteOffset}:${bytes.length}`;
    let digest = byRange.get(key);
    if (digest === undefined) byRange.set(key, (digest = createHash('md5').update(bytes).digest('base64')));
    return digest;
  }
}
