import { join } from 'node:path';
import ejs from 'ejs';
import express, { type Router } from 'express';
import { viewsDir } from '../paths.ts';
import { isEntityRef, isFileValue, type EntityRef, type StoredValue } from './records.ts';
import { resolveEntityType } from './schema.ts';
import type { SiteContext } from './site-context.ts';

// `/detail/<Type>/<id>`: the page a site shows for one entity, where the service's result links and the header's
// site link lead. A plain listing of the record's fields, with its links to other entities followed the same way.

interface ShownField {
  name: string;
  text: string;
  /** Another entity's detail page, for entity fields. */
  links: { href: string; text: string }[];
}

export function detailRouter(site: SiteContext): Router {
  const router = express.Router();
  router.get('/detail/:type/:id', async (req, res) => {
    const type = resolveEntityType(String(req.params['type']));
    const id = Number(req.params['id']);
    const record = type !== undefined && Number.isSafeInteger(id) ? site.store.get(type, id) : undefined;
    if (!record || record.retired) {
      res.status(404).type('text/plain').send('No such entity on this site.\n');
      return;
    }
    const name = site.store.nameOf(record) ?? `${record.type} ${id}`;
    const fields: ShownField[] = Object.entries(record.fields).map(([field, value]) => shown(site, field, value));
    res.type('html').send(await ejs.renderFile(join(viewsDir, 'sandbox', 'detail.ejs'), { siteHost: new URL(site.siteUrl()).host, type: record.type, id, name, fields }));
  });
  return router;
}

function shown(site: SiteContext, name: string, value: StoredValue): ShownField {
  const link = (ref: EntityRef) => ({ href: `/detail/${encodeURIComponent(ref.type)}/${ref.id}`, text: site.store.nameOf(ref) ?? `${ref.type} ${ref.id}` });
  if (isEntityRef(value)) return { name, text: '', links: [link(value)] };
  if (Array.isArray(value)) return { name, text: '', links: value.filter(isEntityRef).map(link) };
  if (isFileValue(value)) return { name, text: `${value.name} (${value.link_type})`, links: [] };
  if (value !== null && typeof value === 'object') return { name, text: value.failed ? 'thumbnail failed' : 'thumbnail', links: [] };
  return { name, text: value === null ? '' : String(value), links: [] };
}
