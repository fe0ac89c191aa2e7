import { withoutHiddenCharacters } from './name-characters.ts';

// A file name as the browser sends it may carry a path (old browsers send C:\fakepath\x.mov; a crafted request
// anything), control characters or bidi overrides that make it display as another name. What reaches the tracker
// is the last path component without those (name-characters.ts, as zip entries strip them), trimmed; nothing else
// is changed: non-ASCII names stay as people wrote them, and Windows' reserved names are the zip's business
// (renaming them here would rename files at the site and break matching by name).

export class UploadNameError extends Error {}

const MAX_NAME_LENGTH = 255;

export function cleanUploadName(raw: string): string {
  const last = raw.split(/[\\/]/).pop() ?? '';
  const cleaned = withoutHiddenCharacters(last).trim();
  if (cleaned === '' || cleaned === '.' || cleaned === '..') throw new UploadNameError(`"${raw.slice(0, 80)}" is not a usable file name`);
  if ([...cleaned].length > MAX_NAME_LENGTH) throw new UploadNameError(`file names may be at most ${MAX_NAME_LENGTH} characters long`);
  return cleaned;
}
