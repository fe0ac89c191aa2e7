import { existsSync, readFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RequestHandler } from 'express';

// Modules written once in TypeScript and used on both sides (src/shared/): the page gets the same code as the
// service, so the two cannot drift apart. Built (dist/) the compiled .js sits beside this module's folder;
// from source, the .ts has its types stripped by Node (erasable syntax only).

export function sharedScript(name: 'match-files' | 'image-signature' | 'format-bytes' | 'text-signature' | 'abortable-sleep'): RequestHandler {
  const shared = join(dirname(fileURLToPath(import.meta.url)), '..', 'shared');
  const compiled = join(shared, `${name}.js`);
  const script = existsSync(compiled) ? readFileSync(compiled, 'utf8') : stripTypeScriptTypes(readFileSync(join(shared, `${name}.ts`), 'utf8'));
  return (_req, res) => {
    res.type('text/javascript').set('Cache-Control', 'no-cache').send(script);
  };
}
