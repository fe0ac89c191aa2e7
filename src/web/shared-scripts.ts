import { readFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { join } from 'node:path';
import type { RequestHandler } from 'express';
import { projectRoot } from '../paths.ts';

// Modules written once in TypeScript and used on both sides (src/shared/): the page gets the same file with its
// types stripped (Node's own stripper: erasable syntax only), so the browser and the service cannot drift apart.

export function sharedScript(name: 'match-files'): RequestHandler {
  const source = readFileSync(join(projectRoot, 'src', 'shared', `${name}.ts`), 'utf8');
  const script = stripTypeScriptTypes(source);
  return (_req, res) => {
    res.type('text/javascript').set('Cache-Control', 'no-cache').send(script);
  };
}
