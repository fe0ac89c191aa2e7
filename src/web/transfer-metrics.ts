import type { RequestHandler } from 'express';
import { amiActions, type AmiAction } from '../ami/actions.ts';
import { transferDuration, transferRequests, transfersInFlight } from '../net/metrics.ts';

// Transfer requests counted at the HTTP edge, whichever action serves them: how many are running, how they ended
// and how long they took. Bytes, retries and storage's refusals are counted by the transfer core, where they
// happen (src/net/metrics.ts).

export type TransferKind = 'part' | 'form' | 'complete' | 'zip';

/** The requests that move files (paths under the base path), as the nginx example routes them too. */
const transferRoutes: readonly { kind: TransferKind; method: string; path: RegExp }[] = [
  { kind: 'part', method: 'PUT', path: /^\/ami\/([a-z-]+)\/[A-Za-z0-9_-]+\/uploads\/[A-Za-z0-9_-]+\/parts\/\d+$/ },
  { kind: 'form', method: 'POST', path: /^\/ami\/([a-z-]+)\/[A-Za-z0-9_-]+\/form-upload$/ },
  { kind: 'complete', method: 'POST', path: /^\/ami\/([a-z-]+)\/[A-Za-z0-9_-]+\/uploads\/[A-Za-z0-9_-]+\/complete$/ },
  { kind: 'zip', method: 'GET', path: /^\/ami\/([a-z-]+)\/[A-Za-z0-9_-]+\/zip\/[A-Za-z0-9-]+\/file$/ },
];

/** Which transfer a request is, or null; only known actions, so no request can add a series. */
export function transferOf(method: string, path: string): { action: AmiAction; kind: TransferKind } | null {
  for (const route of transferRoutes) {
    if (route.method !== method) continue;
    const action = route.path.exec(path)?.[1];
    if (action !== undefined && (amiActions as readonly string[]).includes(action)) return { action: action as AmiAction, kind: route.kind };
  }
  return null;
}

export function countTransfers(basePath: string): RequestHandler {
  return (req, res, next) => {
    const path = req.path.startsWith(basePath) ? req.path.slice(basePath.length) : null;
    const transfer = path === null ? null : transferOf(req.method, path);
    if (transfer === null) {
      next();
      return;
    }
    const started = process.hrtime.bigint();
    transfersInFlight.inc(transfer);
    res.once('close', () => {
      transfersInFlight.dec(transfer);
      const outcome = !res.writableFinished ? 'aborted' : res.statusCode >= 500 ? 'failed' : res.statusCode >= 400 ? 'refused' : 'ok';
      const labels = { ...transfer, outcome };
      transferRequests.inc(labels);
      transferDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  };
}
