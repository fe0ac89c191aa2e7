// Which selected entity a dropped file belongs to, by name: `sh010_comp_v003.mov` goes to the Version
// `sh010_comp_v003`. Case does not matter, nor do the separators `_`, `.`, `-` and spaces, so
// `SH010_comp.v003.mov` matches too. Shared by the page (served to the browser with its types stripped) and the
// service (the no-JavaScript form), so both match the same way. No imports: it must run as-is in a browser.

export interface NamedTarget {
  type: string;
  id: string | number;
  name: string;
}

export interface FileMatch<T extends NamedTarget> {
  file: string;
  /** The targets the file goes to: one when matched by name, none when unmatched. */
  targets: T[];
}

export interface MatchResult<T extends NamedTarget> {
  matches: FileMatch<T>[];
  /** Targets no file matched. */
  unmatchedTargets: T[];
}

/** A name reduced to what matching compares: lower case, one `_` for any run of separators. */
export function matchKey(name: string): string {
  return name
    .normalize('NFC')
    .toLowerCase()
    .replace(/[\s._-]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/** A file name without its extension (the part after the last dot, when there is one and it is short). */
export function stem(fileName: string): string {
  const dot = fileName.lastIndexOf('.');
  return dot > 0 && fileName.length - dot <= 6 ? fileName.slice(0, dot) : fileName;
}

/** Matches each file to the target whose name equals the file's stem, ignoring case and separators. */
export function matchFilesByName<T extends NamedTarget>(files: readonly string[], targets: readonly T[]): MatchResult<T> {
  const byKey = new Map<string, T[]>();
  for (const target of targets) {
    const key = matchKey(target.name);
    byKey.set(key, [...(byKey.get(key) ?? []), target]);
  }
  const used = new Set<T>();
  const matches = files.map((file) => {
    const found = byKey.get(matchKey(stem(file))) ?? [];
    for (const target of found) used.add(target);
    return { file, targets: found };
  });
  return { matches, unmatchedTargets: targets.filter((target) => !used.has(target)) };
}

/**
 * Matches each file to the target whose name begins the file's stem, up to a separator: a new Version's movie
 * `sh010_comp_v004.mov` goes to the Shot `sh010`. A target may answer to several names (a Task: `sh010_comp`, and
 * its entity's `sh010`); the longest name that fits wins, and a file two targets fit equally well is unmatched,
 * for the person to choose.
 */
export function matchFilesByPrefix<T extends NamedTarget>(
  files: readonly string[],
  targets: readonly T[],
  namesOf: (target: T) => readonly string[] = (target) => [target.name],
): MatchResult<T> {
  const keyed = targets.map((target) => ({ target, keys: namesOf(target).map(matchKey).filter((key) => key !== '') }));
  const used = new Set<T>();
  const matches = files.map((file) => {
    const key = matchKey(stem(file));
    let longest = 0;
    let found: T[] = [];
    for (const { target, keys } of keyed) {
      for (const name of keys) {
        if (key !== name && !key.startsWith(`${name}_`)) continue;
        if (name.length > longest) {
          longest = name.length;
          found = [target];
        } else if (name.length === longest && !found.includes(target)) {
          found.push(target);
        }
      }
    }
    const targetsOfFile = found.length === 1 ? found : [];
    for (const target of targetsOfFile) used.add(target);
    return { file, targets: targetsOfFile };
  });
  return { matches, unmatchedTargets: targets.filter((target) => !used.has(target)) };
}
