/**
 * Default validity of what `edgefwd certs` makes. Kept apart from generate.ts so the CLI can show
 * them in --help without loading node-forge.
 */

/** A development CA lasts 10 years. */
export const CA_VALIDITY_DAYS = 3650
/** A leaf certificate 397 days (the browser limit, a common policy). */
export const LEAF_VALIDITY_DAYS = 397
