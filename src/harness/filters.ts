/**
 * Check-ID patterns (`--only`, `--skip`, skips files, `runConformance({ only, skip })`).
 *
 * A pattern with `*` is a glob over the whole ID (`*` matches anything, `;` and `:` included).
 * A pattern without `*` matches the ID itself, or any ID that continues it at a `:` or `;`
 * boundary: `bn:edge:m1` matches every dtype and axis of that check, and
 * `bn:edge:m1:dtype=float32` matches every axis of it (the ID joins dtype and axis with `;`), as
 * it does `dtype=float32;params=…;axis=…` IDs of mixed precision. It never matches in the middle
 * of a name (`bn:edge:m` does not match `bn:edge:m1`). A pattern that ends at a boundary itself
 * (`ln:`, `bn:edge:m1:`) matches the IDs continuing it: `ln:` is every LayerNorm check.
 *
 * A pattern typed for this run (--only, --skip) that matches no planned check is a usage error
 * (NoMatchError, exit 2) naming the pattern and the closest IDs: otherwise a typo runs nothing
 * and passes, or skips nothing silently.
 */
import { NoMatchError } from '../contract/errors.js';

export function idMatcher(pattern: string): (id: string) => boolean {
  const p = pattern.trim();
  if (p.includes('*')) {
    const re = new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    return (id) => re.test(id);
  }
  const boundary = p.endsWith(':') || p.endsWith(';');
  return (id) => id === p || (id.startsWith(p) && (boundary || id[p.length] === ':' || id[p.length] === ';'));
}

/** Levenshtein distance (insertions, deletions, substitutions), two rows; IDs are short. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * The planned IDs closest to a pattern, at the pattern's own granularity: each ID is cut after as
 * many `:`/`;`-separated parts as the pattern has (so `bn:edge:m3` suggests `bn:edge:m1`, a
 * pattern itself), compared with the part of the pattern before any `*`.
 */
export function closestIds(pattern: string, ids: readonly string[], n = 3): string[] {
  const p = pattern.trim().split('*')[0]!;
  const parts = p.split(/[:;]/).length;
  const cut = (id: string) => {
    const pieces = id.split(/(?=[:;])/);
    return pieces.slice(0, parts).join('');
  };
  const scored = new Map<string, number>();
  for (const id of ids) {
    const c = cut(id);
    if (!scored.has(c)) scored.set(c, editDistance(p, c));
  }
  return [...scored.entries()]
    .sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))
    .slice(0, n)
    .map(([c]) => c);
}

/** Throw NoMatchError for the first pattern of `patterns` (given as `flag`) that matches none of `ids`. */
export function requireMatches(flag: string, patterns: readonly string[], ids: readonly string[]): void {
  for (const pattern of patterns) {
    const m = idMatcher(pattern);
    if (ids.some(m)) continue;
    const near = closestIds(pattern, ids);
    throw new NoMatchError(
      `${flag} '${pattern}' matches no check of this implementation${near.length ? `; closest: ${near.join(', ')}` : ''} (a pattern without * matches an ID or any ID continuing it at ':' or ';'; list every ID with \`bn-conformance list\`)`,
    );
  }
}
