import { validationError } from './errors.ts';

// The query expressions a service sends (ftrack.md, "Operations"), parsed into a small tree:
//   [select <path>, <path>… from] <Type> [where <condition>] [order by <path> [ascending|descending], …]
//   [offset <n>] [limit <n>]
// conditions: <path> is|is_not|=|!=|>|<|>=|<=|like|not_like <value>, <path> in|not_in (<value>, …),
// <path> has|any (<condition>), not, and, or, parentheses. Values: "…" or '…' (backslash escapes), numbers,
// true, false, none, null. Paths are dotted attribute names (asset.parent.name). Anything else is refused with a
// ValidationError, as a real server refuses what it cannot parse.

export const maxExpressionLength = 65_536;
const maxTokens = 20_000;
const maxDepth = 32;
const maxInValues = 10_000;
const uuidAt = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![\w-])/i;

export type Literal = string | number | boolean | null;

export type Condition =
  | { kind: 'compare'; path: string[]; op: CompareOp; value: Literal }
  | { kind: 'in'; path: string[]; negate: boolean; values: Literal[] }
  | { kind: 'related'; path: string[]; quantifier: 'has' | 'any'; condition: Condition }
  | { kind: 'not'; condition: Condition }
  | { kind: 'and' | 'or'; conditions: Condition[] };

export type CompareOp = 'is' | 'is_not' | '>' | '<' | '>=' | '<=' | 'like' | 'not_like';

export interface ParsedQuery {
  /** null: no select clause, the type's default projections. */
  select: string[][] | null;
  type: string;
  where: Condition | null;
  orderBy: { path: string[]; descending: boolean }[];
  offset: number;
  limit: number | null;
}

type Token =
  | { kind: 'word'; text: string }
  | { kind: 'string'; text: string }
  | { kind: 'number'; value: number }
  | { kind: 'punct'; text: '(' | ')' | ',' }
  | { kind: 'op'; text: '=' | '!=' | '>' | '<' | '>=' | '<=' };

export function parseQuery(expression: unknown): ParsedQuery {
  if (typeof expression !== 'string') throw validationError('The query expression must be a string.');
  if (expression.length > maxExpressionLength) {
    throw validationError(`The query expression is longer than ${maxExpressionLength} characters.`);
  }
  return new Parser(tokenize(expression)).query();
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    if (tokens.length > maxTokens) throw validationError('The query expression is too complex.');
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) throw validationError(`Unterminated string in expression: ${text}`);
        const d = text[i]!;
        if (d === '\\' && i + 1 < text.length) {
          value += text[i + 1];
          i += 2;
        } else if (d === c) {
          i++;
          break;
        } else {
          value += d;
          i++;
        }
      }
      tokens.push({ kind: 'string', text: value });
    } else if (c === '(' || c === ')' || c === ',') {
      tokens.push({ kind: 'punct', text: c });
      i++;
    } else if ('=!<>'.includes(c)) {
      const two = text.slice(i, i + 2);
      if (two === '!=' || two === '>=' || two === '<=') {
        tokens.push({ kind: 'op', text: two });
        i += 2;
      } else if (c === '!') {
        throw validationError(`Unexpected "!" in expression: ${text}`);
      } else {
        tokens.push({ kind: 'op', text: c as '=' | '<' | '>' });
        i++;
      }
    } else if (uuidAt.test(text.slice(i, i + 37))) {
      // A bare UUID (the JS client's getStatuses sends `id is <uuid>` unquoted): read as a string.
      tokens.push({ kind: 'string', text: text.slice(i, i + 36) });
      i += 36;
    } else {
      const match = /^(-?\d+(?:\.\d+)?(?![\w.])|[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)/.exec(text.slice(i, i + 4096));
      if (!match) throw validationError(`Could not parse the expression at "${text.slice(i, i + 20)}".`);
      const word = match[1]!;
      tokens.push(/^-?\d/.test(word) ? { kind: 'number', value: Number(word) } : { kind: 'word', text: word });
      i += word.length;
    }
  }
  return tokens;
}

class Parser {
  readonly #tokens: Token[];
  #at = 0;
  #depth = 0;

  constructor(tokens: Token[]) {
    this.#tokens = tokens;
  }

  query(): ParsedQuery {
    let select: string[][] | null = null;
    if (this.#keyword('select')) {
      select = [this.#path()];
      while (this.#punct(',')) select.push(this.#path());
      if (!this.#keyword('from')) throw this.#error('Expected "from" after the projections');
    }
    const type = this.#word('an entity type');
    let where: Condition | null = null;
    const orderBy: ParsedQuery['orderBy'] = [];
    let offset = 0;
    let limit: number | null = null;
    if (this.#keyword('where')) where = this.#or();
    while (this.#at < this.#tokens.length) {
      if (this.#keyword('order')) {
        if (!this.#keyword('by')) throw this.#error('Expected "by" after "order"');
        do {
          const path = this.#path();
          const descending = this.#keyword('descending') || this.#keyword('desc');
          if (!descending) void (this.#keyword('ascending') || this.#keyword('asc'));
          orderBy.push({ path, descending });
        } while (this.#punct(','));
      } else if (this.#keyword('offset')) {
        offset = this.#count('offset');
      } else if (this.#keyword('limit')) {
        limit = this.#count('limit');
      } else {
        throw this.#error('Unexpected input');
      }
    }
    return { select, type, where, orderBy, offset, limit };
  }

  #or(): Condition {
    const conditions = [this.#and()];
    while (this.#keyword('or')) conditions.push(this.#and());
    return conditions.length === 1 ? conditions[0]! : { kind: 'or', conditions };
  }

  #and(): Condition {
    const conditions = [this.#not()];
    while (this.#keyword('and')) conditions.push(this.#not());
    return conditions.length === 1 ? conditions[0]! : { kind: 'and', conditions };
  }

  #not(): Condition {
    if (this.#keyword('not')) return { kind: 'not', condition: this.#nested(() => this.#not()) };
    return this.#primary();
  }

  #primary(): Condition {
    if (this.#punct('(')) {
      const inner = this.#nested(() => this.#or());
      if (!this.#punct(')')) throw this.#error('Expected ")"');
      return inner;
    }
    const path = this.#path();
    const next = this.#tokens[this.#at];
    if (next?.kind === 'op') {
      this.#at++;
      const op: CompareOp = next.text === '=' ? 'is' : next.text === '!=' ? 'is_not' : next.text;
      return { kind: 'compare', path, op, value: this.#literal() };
    }
    const word = this.#word('an operator').toLowerCase();
    if (word === 'is' || word === 'is_not' || word === 'like' || word === 'not_like') {
      // "is not" is accepted as is_not.
      const op = word === 'is' && this.#keyword('not') ? 'is_not' : word;
      return { kind: 'compare', path, op, value: this.#literal() };
    }
    if (word === 'in' || word === 'not_in') {
      if (!this.#punct('(')) throw this.#error(`Expected "(" after "${word}"`);
      const values: Literal[] = [];
      if (!this.#punct(')')) {
        do {
          if (values.length >= maxInValues) throw this.#error(`More than ${maxInValues} values in "${word}"`);
          values.push(this.#literal());
        } while (this.#punct(','));
        if (!this.#punct(')')) throw this.#error('Expected ")"');
      }
      return { kind: 'in', path, negate: word === 'not_in', values };
    }
    if (word === 'has' || word === 'any') {
      if (!this.#punct('(')) throw this.#error(`Expected "(" after "${word}"`);
      const condition = this.#nested(() => this.#or());
      if (!this.#punct(')')) throw this.#error('Expected ")"');
      return { kind: 'related', path, quantifier: word, condition };
    }
    throw this.#error(`Unknown operator "${word}"`);
  }

  #nested<T>(parse: () => T): T {
    if (++this.#depth > maxDepth) throw this.#error('The expression is nested too deeply');
    try {
      return parse();
    } finally {
      this.#depth--;
    }
  }

  #literal(): Literal {
    const token = this.#tokens[this.#at++];
    if (token?.kind === 'string') return token.text;
    if (token?.kind === 'number') return token.value;
    if (token?.kind === 'word') {
      const word = token.text.toLowerCase();
      if (word === 'true') return true;
      if (word === 'false') return false;
      if (word === 'none' || word === 'null') return null;
    }
    this.#at--;
    throw this.#error('Expected a value');
  }

  #path(): string[] {
    return this.#word('an attribute').split('.');
  }

  #count(name: string): number {
    const token = this.#tokens[this.#at++];
    if (token?.kind !== 'number' || !Number.isSafeInteger(token.value) || token.value < 0) {
      throw this.#error(`Expected a whole number after "${name}"`);
    }
    return token.value;
  }

  #word(what: string): string {
    const token = this.#tokens[this.#at];
    if (token?.kind !== 'word') throw this.#error(`Expected ${what}`);
    this.#at++;
    return token.text;
  }

  #keyword(name: string): boolean {
    const token = this.#tokens[this.#at];
    if (token?.kind === 'word' && token.text.toLowerCase() === name) {
      this.#at++;
      return true;
    }
    return false;
  }

  #punct(text: '(' | ')' | ','): boolean {
    const token = this.#tokens[this.#at];
    if (token?.kind === 'punct' && token.text === text) {
      this.#at++;
      return true;
    }
    return false;
  }

  #error(message: string) {
    return validationError(`${message} at token ${this.#at + 1} of the query expression.`);
  }
}
