/**
 * Maps of names a user chose (labels, options) to strings. A plain object would answer for the
 * names it inherits (`toString`, `constructor`) and drop `__proto__` when assigned it; one without
 * a prototype holds exactly what was put in it. Read a key with `Object.hasOwn` before its value
 * when the map may have come from elsewhere.
 */

/** An empty map with no inherited names. */
export function stringMap(): Record<string, string> {
  return Object.create(null) as Record<string, string>;
}
