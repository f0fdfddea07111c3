/**
 * A remote configuration update's overlay on the configuration input (src/control/update.ts
 * describes the document): mappings merge key by key; anything else, lists and null included,
 * replaces what is below it, so a type mistake in the overlay reaches the schema as one.
 */

/** `overlay` merged onto `base`. Copies; mutates neither; a key named `__proto__` stays an own key. */
export function mergeOverlay (base: Record<string, unknown>, overlay: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out = clone(base) as Record<string, unknown>
  for (const [key, value] of Object.entries(overlay)) {
    const below = Object.hasOwn(out, key) ? out[key] : undefined
    setOwn(out, key, isPlainObject(below) && isPlainObject(value) ? mergeOverlay(below, value) : clone(value))
  }
  return out
}

/**
 * The paths mergeOverlay(base, overlay) replaces: where the overlay has a non-mapping, an empty
 * mapping, or a mapping where `base` has none (the whole value is then the overlay's).
 */
export function overlayPaths (base: unknown, overlay: Readonly<Record<string, unknown>>, prefix: readonly string[] = []): string[][] {
  const paths: string[][] = []
  for (const [key, value] of Object.entries(overlay)) {
    const path = [...prefix, key]
    const below = isPlainObject(base) && Object.hasOwn(base, key) ? base[key] : undefined
    if (isPlainObject(value) && Object.keys(value).length > 0 && (below === undefined || isPlainObject(below))) paths.push(...overlayPaths(below, value, path))
    else paths.push(path)
  }
  return paths
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function clone (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clone)
  if (!isPlainObject(value)) return value
  const out: Record<string, unknown> = {}
  for (const [key, child] of Object.entries(value)) setOwn(out, key, clone(child))
  return out
}

/** An own property even for a key named `__proto__`, which plain assignment would turn into a prototype. */
function setOwn (target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
}
