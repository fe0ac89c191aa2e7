// The hub's two small expression languages (ftrack.md, "Right-click actions: the event hub"):
// - a subscription, matched against an event: `topic=ftrack.action.discover` (the only form @ftrack/api 1.11.2
//   sends, with a trailing `*` wildcard allowed), and the `and`-joined `key=value` terms Python clients add
//   (`topic=ftrack.action.launch and data.actionIdentifier=x`);
// - a target, matched against a subscriber's metadata: `id=<subscriber id>` on replies.
// Anything else is not understood: a subscription that cannot be parsed receives nothing, and an event whose target
// cannot be parsed reaches no one (see README).

export const maxExpressionLength = 1024;

interface Term {
  path: string[];
  negate: boolean;
  value: string;
  prefix: boolean;
}

export type Matcher = (subject: unknown) => boolean;

const termPattern = /^([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)\s*(!=|=)\s*(?:"([^"]*)"|'([^']*)'|([^\s"']+))$/;

/** A matcher for `expression`, or null when it is not one the sandbox understands. */
export function compileExpression(expression: unknown): Matcher | null {
  if (typeof expression !== 'string' || expression.length > maxExpressionLength) return null;
  const trimmed = expression.trim();
  if (trimmed === '') return null;
  const terms: Term[] = [];
  for (const part of trimmed.split(/\s+and\s+/i)) {
    const match = termPattern.exec(part.trim());
    if (!match) return null;
    const raw = match[3] ?? match[4] ?? match[5] ?? '';
    const prefix = raw.endsWith('*');
    terms.push({ path: match[1]!.split('.'), negate: match[2] === '!=', value: prefix ? raw.slice(0, -1) : raw, prefix });
  }
  return (subject) =>
    terms.every((term) => {
      const found = valueAt(subject, term.path);
      const text = found === undefined || found === null ? null : typeof found === 'object' ? null : String(found);
      const hit = text !== null && (term.prefix ? text.startsWith(term.value) : text === term.value);
      return term.negate ? !hit : hit;
    });
}

function valueAt(subject: unknown, path: readonly string[]): unknown {
  let at = subject;
  for (const name of path) {
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, name)) return undefined;
    at = (at as Record<string, unknown>)[name];
  }
  return at;
}
