// What the review page proposes for each movie dropped, and what stops a proposal from going: the Version's name
// from the file's, the Shot, Asset or Task it is for by name (or the only one selected). Pure: no DOM, no requests.

import { matchFilesByPrefix, stem } from './js/match-files.js';
import { formatBytes } from './upload-plan.js';

/**
 * @typedef {{ id: number, type: string, name: string, parentName: string | null, siteUrl: string }} ReviewTarget
 *   parentName: a Task's Shot or Asset (null for a Task linked to none, and for Shots and Assets)
 * @typedef {{ key: number, file: File, code: string, targetId: string | null, description: string, status: string }} Proposal
 */

const MAX_CODE_LENGTH = 255;
let nextKey = 1;

/** The names a movie may carry to go to a target: a Shot's or Asset's code; for a Task, "sh010_comp" or "sh010". */
export function namesOf(target) {
  if (target.type !== 'Task') return [target.name];
  return target.parentName === null ? [] : [`${target.parentName}_${target.name}`, target.parentName];
}

/** How a target reads in a list: "sh010", or for a Task "comp · sh010". */
export function targetLabel(target) {
  return target.type === 'Task' ? `${target.name} · ${target.parentName ?? 'no Shot or Asset'}` : target.name;
}

/**
 * A proposal per file: named like the file (without its extension), for the selected entity whose name begins
 * the file's (`sh010_comp_v004.mov` → sh010), or for the only one selected.
 * @param {File[]} files
 * @param {ReviewTarget[]} targets
 * @param {{ status: string }} defaults
 * @returns {Proposal[]}
 */
export function proposeVersions(files, targets, defaults) {
  const { matches } = matchFilesByPrefix(files.map((file) => file.name), targets, namesOf);
  return files.map((file, index) => {
    const matched = matches[index]?.targets[0] ?? null;
    const only = targets.length === 1 ? targets[0] : null;
    return {
      key: nextKey++,
      file,
      code: stem(file.name).trim(),
      targetId: (matched ?? only)?.id ?? null,
      description: '',
      status: defaults.status,
    };
  });
}

/**
 * Why each proposal cannot go yet (in order), or null when it can: an empty or too big file, a missing or
 * repeated name, no target, or a Task that belongs to no Shot or Asset.
 * @param {Proposal[]} proposals
 * @param {{ maxBytes: number | null, targets: ReviewTarget[] }} limits
 * @returns {(string | null)[]}
 */
export function proposalProblems(proposals, { maxBytes, targets }) {
  const byId = new Map(targets.map((target) => [target.id, target]));
  const codes = new Map();
  for (const proposal of proposals) {
    const key = proposal.code.trim().toLowerCase();
    codes.set(key, (codes.get(key) ?? 0) + 1);
  }
  return proposals.map((proposal) => {
    const code = proposal.code.trim();
    if (proposal.file.size === 0) return 'This file is empty: there is no movie to upload.';
    if (maxBytes !== null && proposal.file.size > maxBytes) return `This file is ${formatBytes(proposal.file.size)}; files may be at most ${formatBytes(maxBytes)}.`;
    if (code === '') return 'Give the new Version a name.';
    if (code.length > MAX_CODE_LENGTH) return `A Version name may be at most ${MAX_CODE_LENGTH} characters.`;
    if ((codes.get(code.toLowerCase()) ?? 0) > 1) return 'Another movie in this list makes a Version of the same name.';
    const target = proposal.targetId === null ? undefined : byId.get(proposal.targetId);
    if (!target) return 'Choose what this Version is for: no selected entity is named like the file.';
    if (target.type === 'Task' && target.parentName === null) return `The Task ${target.name} is linked to no Shot or Asset: a Version needs one.`;
    return null;
  });
}
