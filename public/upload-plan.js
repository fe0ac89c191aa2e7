// The mapping the page shows before anything starts: which file goes to which target, which files are refused
// and why (empty, too big, for thumbnails no image), which targets get nothing, and which files continue an
// unfinished upload. Pure: no DOM, no requests.

import { formatBytes } from './js/format-bytes.js';
import { matchFilesByName } from './js/match-files.js';

/**
 * @typedef {{ id: string, name: string, siteUrl: string, fileName?: string | null, hasThumbnail?: boolean }} Target
 * @typedef {{ id: string, name: string, size: number, targets: { type: string, id: string }[], partsDone: number[], partCount: number, status: string }} UploadView
 * @typedef {{
 *   file: File,
 *   targets: Target[],
 *   refused: string | null,
 *   skipped: { target: Target, reason: string }[],
 *   resume: UploadView | null,
 *   warnings: string[],
 * }} PlannedFile
 */

/**
 * @param {object} input
 * @param {File[]} input.files the chosen files, in the order chosen
 * @param {Target[]} input.targets the selected entities the user may upload to
 * @param {'upload-files' | 'attach-files' | 'set-thumbnail'} input.action
 * @param {'match' | 'all'} input.mode upload-files, set-thumbnail: by name, or every file to every target
 * @param {Set<string>} input.excluded attach-files: targets the user unticked
 * @param {number | null} input.maxBytes the service's limit per file
 * @param {UploadView[]} input.unfinished this launch's unfinished uploads, to continue instead of starting over
 * @param {(uploadId: string) => number | null} input.rememberedLastModified what this browser stored when it began one
 * @param {(file: File) => string | null} [input.contentProblem] why a file's content is refused (a thumbnail that is no image), or null
 * @param {(file: File) => string | null} [input.contentWarning] what is odd about a file's content (a "movie" that is text), or null
 * @returns {{ files: PlannedFile[], unmatchedTargets: Target[], toSend: PlannedFile[], replacing: number, odd: number }}
 */
export function planUploads({ files, targets, action, mode, excluded, maxBytes, unfinished, rememberedLastModified, contentProblem = () => null, contentWarning = () => null }) {
  // A Version holds one movie and an entity one thumbnail: those files are matched to their target by name.
  const onePerTarget = action === 'upload-files' || action === 'set-thumbnail';
  const chosenTargets = (file, index, matches) => {
    if (!onePerTarget) return targets.filter((target) => !excluded.has(target.id));
    if (mode === 'all') return targets;
    return matches[index]?.targets ?? [];
  };
  const matches = onePerTarget && mode === 'match' ? matchFilesByName(files.map((file) => file.name), targets).matches : [];

  // What each target already receives in this batch: a Version's movie field holds one file, and an entity
  // cannot take two attachments of the same name from one drop without people mixing them up.
  const taken = new Map();
  const usedTargets = new Set();
  const planned = files.map((file, index) => {
    /** @type {PlannedFile} */
    const entry = { file, targets: [], refused: null, skipped: [], resume: null, warnings: [] };
    if (file.size === 0) {
      entry.refused = 'This file is empty: there is nothing to upload.';
      return entry;
    }
    if (maxBytes !== null && file.size > maxBytes) {
      entry.refused = `This file is ${formatBytes(file.size)}; files may be at most ${formatBytes(maxBytes)}.`;
      return entry;
    }
    const problem = contentProblem(file);
    if (problem !== null) {
      entry.refused = problem;
      return entry;
    }
    for (const target of chosenTargets(file, index, matches)) {
      const key = onePerTarget ? String(target.id) : `${target.id}:${file.name}`;
      const earlier = taken.get(key);
      if (earlier !== undefined) {
        const reasons = {
          'upload-files': `${target.name} already gets ${earlier.name}: a Version holds one uploaded movie.`,
          'set-thumbnail': `${target.name} already gets ${earlier.name}: an entity has one thumbnail.`,
        };
        entry.skipped.push({ target, reason: reasons[action] ?? `Another file named ${file.name} already goes to ${target.name}.` });
        continue;
      }
      taken.set(key, file);
      entry.targets.push(target);
    }
    if (entry.targets.length === 0 && entry.skipped.length > 0) {
      entry.refused = entry.skipped.map((skip) => skip.reason).join(' ');
      entry.skipped = [];
    }
    for (const target of entry.targets) usedTargets.add(target.id);
    // Said before anything is replaced: a Version's movie, an entity's thumbnail.
    for (const target of entry.targets) {
      if (action === 'upload-files' && target.fileName) entry.warnings.push(`Replaces the movie ${target.name} has now (${target.fileName}).`);
      if (action === 'set-thumbnail' && target.hasThumbnail) entry.warnings.push(`Replaces the thumbnail ${target.name} has now.`);
    }
    const odd = entry.targets.length > 0 ? contentWarning(file) : null;
    if (odd !== null) entry.warnings.push(odd);
    entry.resume = entry.targets.length > 0 ? resumable(file, entry.targets, unfinished, rememberedLastModified) : null;
    return entry;
  });

  const toSend = planned.filter((entry) => entry.refused === null && entry.targets.length > 0);
  return {
    files: planned,
    unmatchedTargets: onePerTarget ? targets.filter((target) => !usedTargets.has(target.id)) : [],
    toSend,
    // What the user is asked to accept before the upload starts.
    replacing: toSend.reduce((sum, entry) => sum + entry.targets.filter((target) => (action === 'upload-files' && target.fileName) || (action === 'set-thumbnail' && target.hasThumbnail)).length, 0),
    odd: toSend.filter((entry) => contentWarning(entry.file) !== null).length,
  };
}

/**
 * The unfinished upload this file continues: same name, size and targets, and — where this browser began it —
 * the same modification time, so a different file that happens to share name and size is not mixed in.
 */
function resumable(file, targets, unfinished, rememberedLastModified) {
  // Ids are strings (a ShotGrid record's digits, an ftrack UUID): compared as text, in any order.
  const wanted = targets.map((target) => String(target.id)).sort().join(',');
  return (
    unfinished.find((upload) => {
      if (upload.status !== 'uploading' || upload.name !== file.name || upload.size !== file.size) return false;
      const ids = upload.targets.map((target) => String(target.id)).sort().join(',');
      if (ids !== wanted) return false;
      const remembered = rememberedLastModified(upload.id);
      return remembered === null || remembered === file.lastModified;
    }) ?? null
  );
}


/** Sizes as every page writes them (src/shared/format-bytes.ts), for the scripts that import them from here. */
export { formatBytes };
