/**
 * The JIT policy. The executable starts with JavaScriptCore's tier-up thresholds scaled by
 * {@link START_UP_JIT_SCALE} (src/build.ts): a command's run-once code stays in the interpreter
 * instead of starting JIT threads to compile functions it calls a few dozen times (a native
 * prepare of a small parent: 0.85 ms less, measured on fresh copies). Work that grows with its input goes
 * back to the normal policy: serve and the helper threads at once, a tree walk or a layer once it
 * has passed {@link BULK_ENTRIES} entries.
 */

/** The scale the build gives the executable's JIT thresholds. */
export const START_UP_JIT_SCALE = 8;

/** Entries of a tree or a layer past which a command is bulk work. */
const BULK_ENTRIES = 1000;

let normal = false;
let entries = 0;

/** Puts the JIT back to its normal policy, for the rest of this thread's life. */
export function useNormalJit(): void {
  if (normal) return;
  normal = true;
  Bun.unsafe.setJITPolicy(1);
}

/** Counts `n` entries of a tree or a layer done; past {@link BULK_ENTRIES}, {@link useNormalJit}. */
export function entriesDone(n = 1): void {
  if (!normal && (entries += n) >= BULK_ENTRIES) useNormalJit();
}
