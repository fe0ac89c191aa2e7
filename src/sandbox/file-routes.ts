import express, { type Router } from 'express';
import { visibilityFor, viewerOf } from './access.ts';
import { badRequest, notFound } from './api-errors.ts';
import { entityTypeParam, visibleRecord } from './entity-routes.ts';
import { QUARANTINED_MESSAGE, SCANNING_MESSAGE } from './malware-scan.ts';
import { transientThumbnailPng } from './media.ts';
import { isFileValue, isImageValue, type FileValue } from './records.ts';
import { linkPath, renderFileValue, renderImage, TRANSIENT_THUMBNAIL_PATH } from './render.ts';
import { fieldDef } from './schema.ts';
import type { SiteContext } from './site-context.ts';
import { attachmentDisposition } from '../web/content-disposition.ts';

// Downloads: a file field's value, `?alt=original|thumbnail` and /file_serve/attachment/<id> answer 302 to a
// short-lived signed storage URL, as ShotGrid does; the client follows it without the Bearer token.
// A file under malware scan answers 409 instead, a quarantined one 410 (malware-scan.ts).

export function publicFileRouter(): Router {
  const router = express.Router();
  const placeholder = transientThumbnailPng();
  router.get(TRANSIENT_THUMBNAIL_PATH, (_req, res) => {
    res.type('image/png').set('Cache-Control', 'no-store').send(placeholder);
  });
  return router;
}

export function fileRouter(site: SiteContext): Router {
  const router = express.Router();

  router.get('/file_serve/attachment/:id', async (req, res) => {
    const id = Number(req.params.id);
    const attachment = Number.isSafeInteger(id) ? site.store.get('Attachment', id) : undefined;
    if (!attachment || !visibilityFor(site.store, viewerOf(req))(attachment)) throw notFound(`Attachment ${req.params.id} not found`);
    const file = attachment.fields.this_file;
    if (!isFileValue(file)) throw notFound(`Attachment ${id} has no file`);
    // python-api's download_attachment reads these two from /file_serve and expects the body to be the message
    // itself (its live tests compare the lines), so here they are plain text, not the API's JSON.
    const verdict = site.scans.verdict(file.attachmentId);
    if (verdict !== 'clean') {
      res.status(verdict === 'scanning' ? 409 : 410).type('text/plain').send(verdict === 'scanning' ? SCANNING_MESSAGE : QUARANTINED_MESSAGE);
      return;
    }
    res.redirect(302, await fileLocation(site, file));
  });

  router.get('/api/v1/entity/:entity/:id/:field', async (req, res) => {
    const type = entityTypeParam(req);
    const field = String(req.params.field);
    const def = fieldDef(type, field);
    if (!def) throw badRequest(`${type} does not have a field named '${field}'`);
    if (def.type !== 'url' && def.type !== 'image') throw badRequest(`${type}.${field} is not a file or image field`);
    const record = visibleRecord(site, req, type);
    const value = record.fields[field] ?? null;
    const alt = req.query.alt;
    if (alt === undefined) {
      const data = isFileValue(value) ? renderFileValue(site, value) : await renderImage(site, value);
      res.json({ data, links: { self: `${linkPath(record)}/${field}` } });
      return;
    }
    if (alt !== 'original' && alt !== 'thumbnail') throw badRequest("alt must be 'original' or 'thumbnail'");
    if (def.type === 'image' || alt === 'thumbnail') {
      const image = def.type === 'image' ? value : record.fields.image;
      const url = await renderImage(site, image ?? null);
      if (!url || !isImageValue(image)) throw notFound(`${type} ${record.id} has no thumbnail`);
      res.redirect(302, url);
      return;
    }
    if (!isFileValue(value)) throw notFound(`Field ${field} is empty.`);
    site.scans.assertDownloadable(value.attachmentId);
    res.redirect(302, await fileLocation(site, value));
  });

  return router;
}

async function fileLocation(site: SiteContext, file: FileValue): Promise<string> {
  switch (file.link_type) {
    case 'upload':
      return site.storage.presign('GET', file.key, {
        expiresIn: site.signedUrlSeconds,
        query: { 'response-content-disposition': attachmentDisposition(file.name) },
      });
    case 'web':
      return file.url;
    case 'local':
      throw notFound('A local file link has no download: it lives on the studio file system');
  }
}


