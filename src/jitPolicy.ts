/**
 * The JIT policy. The executable starts with JavaScriptCore's tier-up thresholds scaled by
 * {@link START_UP_JIT_SCALE} (src/build.ts): a command's run-once code stays in the interpreter
 * instead of starting JIT threads to compile functions it calls a few dozen times (a native
 * prepare of a small parent: 0.85 ms less, measured on fresh copies). A command's bulk work keeps
 * it too: its hot loops still reach the optimizing tiers, only later, and an apply of a 26k-entry
 * layer compiled less and finished sooner so (cold, 2 cores: 0.90 s against 1.08 s with the normal
 * policy from its 1000th entry), its hash thread and the compiler threads sharing the cores.
 * Serve and the helper threads, which live on, take the normal policy at once.
 */

/** The scale the build gives the executable's JIT thresholds. */
export const START_UP_JIT_SCALE = 8;

/** Puts the JIT back to its normal policy, for a thread that lives on (serve, a helper thread). */
export function useNormalJit(): void {
  Bun.unsafe.setJITPolicy(1);
}
