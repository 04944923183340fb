// Three-way merge of JSON values, by the rules of optimist.merge (src/optimist/merge.py),
// applied at every path from the root down:
//   both sides agree (the same value, or both deleted)  -> that value;
//   one side left the value as it was in base           -> the other side's value;
//   both sides hold objects                             -> merged member by member
//                                                          (a base that is no object counts as {});
//   otherwise both changed it differently               -> a conflict at this path.
// Arrays and scalars are replaced whole. Equality is JSON's: true is not 1.

/** The value at a path that does not exist (a deleted or never-added member). */
export const MISSING = Symbol('missing');

const isObject = (value) =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** Whether two JSON values are equal as JSON (member order does not matter). */
export function jsonEqual(a, b) {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length
      && a.every((item, index) => jsonEqual(item, b[index]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length
      && keys.every((key) => Object.hasOwn(b, key) && jsonEqual(a[key], b[key]));
  }
  return false;
}

function mergeAt(base, theirs, mine, path, conflicts) {
  if (jsonEqual(theirs, mine)) return theirs;
  if (jsonEqual(base, theirs)) return mine;
  if (jsonEqual(base, mine)) return theirs;
  if (isObject(theirs) && isObject(mine)) {
    const parent = isObject(base) ? base : {};
    const merged = {};
    // Their member order first, as optimist.merge does, so the result reads like theirs.
    const keys = new Set([...Object.keys(theirs), ...Object.keys(mine), ...Object.keys(parent)]);
    for (const key of keys) {
      const at = (value) => (Object.hasOwn(value, key) ? value[key] : MISSING);
      const value = mergeAt(at(parent), at(theirs), at(mine), [...path, key], conflicts);
      if (value !== MISSING) merged[key] = value;
    }
    return merged;
  }
  conflicts.push(path);
  return theirs;
}

/**
 * Merge two changes of `base`: `theirs` (the server's) and `mine` (the user's).
 * Returns {value, conflicts}: the merged value (theirs where they conflict) and every
 * conflicting path, as an array of member names ([] is the value itself).
 */
export function merge(base, theirs, mine) {
  const conflicts = [];
  const value = mergeAt(base, theirs, mine, [], conflicts);
  return { value, conflicts };
}
