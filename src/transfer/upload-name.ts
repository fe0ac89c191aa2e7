// A file name as the browser sends it may carry a path (old browsers send C:\fakepath\x.mov; a crafted request
// anything) or control characters. What reaches the tracker is the last path component, without control
// characters, trimmed; nothing else is changed, so non-ASCII names stay as people wrote them.

export class UploadNameError extends Error {}

const MAX_NAME_LENGTH = 255;

export function cleanUploadName(raw: string): string {
  const last = raw.split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  const cleaned = last.replace(/[\u0000-\u001f\u007f-\u009f]/g, '').trim();
  if (cleaned === '' || cleaned === '.' || cleaned === '..') throw new UploadNameError(`"${raw.slice(0, 80)}" is not a usable file name`);
  if ([...cleaned].length > MAX_NAME_LENGTH) throw new UploadNameError(`file names may be at most ${MAX_NAME_LENGTH} characters long`);
  return cleaned;
}
