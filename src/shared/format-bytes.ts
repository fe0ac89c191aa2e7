// A byte count as every page shows it: 818 B, 65.9 KiB, 5.5 MiB, 100 MiB. Shared by the page's script (served to
// the browser with its types stripped) and the service's rendering of the page, so the figures the script
// rewrites read like the ones the server wrote. No imports: it must run as-is in a browser.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `n` bytes in binary units, one decimal from KiB up; '—' for a size not known. */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  // One decimal, none where it would be .0: 7 MiB, 12.4 MiB.
  return `${unit === 0 ? value : value.toFixed(1).replace(/\.0$/, '')} ${UNITS[unit]}`;
}
