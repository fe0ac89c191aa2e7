import type { Viewer } from './access.ts';
import type { TokenIssuer } from './auth.ts';
import type { FaultInjector } from './faults.ts';
import type { MalwareScans } from './malware-scan.ts';
import type { RecordStore } from './records.ts';
import type { ObjectStorage } from './storage/object-storage.ts';

/** What the sandbox site's route modules share. */
export interface SiteContext {
  store: RecordStore;
  storage: ObjectStorage;
  tokens: TokenIssuer;
  faults: FaultInjector;
  /** The API's own origin (http://127.0.0.1:PORT), known once it listens. */
  siteUrl(): string;
  /** Lifetime of the signed storage URLs the site hands out (S3 presigned), seconds. */
  signedUrlSeconds: number;
  /** How long a new thumbnail shows the transient placeholder before the real one, ms. */
  thumbnailDelayMs: number;
  /** Where uploads go: 's3' (signed storage URLs, ShotGrid's cloud) or 'sg' (a local install: the site itself). */
  storageService: 's3' | 'sg';
  /** Attachments under malware scan or quarantined: their downloads answer 409 or 410. */
  scans: MalwareScans;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Locals {
      viewer: Viewer;
    }
  }
}
