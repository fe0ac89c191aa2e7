import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// src/paths.ts and dist/paths.js sit one level below the project root, so the root is found the same way
// whether the service runs from source (type stripping) or from the build.
export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
export const viewsDir = join(projectRoot, 'views');
export const publicDir = join(projectRoot, 'public');
