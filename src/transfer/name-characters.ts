// Characters no file name should carry, shared by upload names (what the site stores) and zip entry names (what
// lands on disk), so both strip them alike.

/** C0 controls, DEL and C1 controls. */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Bidirectional formatting characters let a name display other than it is (`invoice\u202Efdp.exe` shows as
 * `invoiceexe.pdf`); right-to-left text itself needs none of them to display correctly, so they go. The line and
 * paragraph separators would break a name across lines in listings.
 */
export const MISLEADING_CHARACTERS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

/** The text without control and misleading characters. */
export function withoutHiddenCharacters(text: string): string {
  return text.replace(MISLEADING_CHARACTERS, '').replace(CONTROL_CHARACTERS, '');
}
