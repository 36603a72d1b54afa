/**
 * A module that synchronous code loads only when it needs it. A compiled stor's first `require()`
 * costs it 1.1–1.9 ms, whatever is required (Bun sets up its CommonJS loading then), against
 * 0.2 ms for an `import()` (measured on compiled programs). So an asynchronous step that knows the
 * module will be needed loads it ahead with {@link Lazy.load}; {@link Lazy.get} requires it only
 * where nothing did.
 *
 * Both loaders are given as functions with the specifier written out: the bundler finds modules by
 * those literals.
 */
export class Lazy<T> {
  #module: T | undefined;
  readonly #imported: () => Promise<T>;
  readonly #required: () => T;

  constructor(imported: () => Promise<T>, required: () => T) {
    this.#imported = imported;
    this.#required = required;
  }

  /** Loads the module now, with `import()`. */
  async load(): Promise<void> {
    this.#module ??= await this.#imported();
  }

  /** The module: the one loaded ahead, else required now. */
  get(): T {
    return (this.#module ??= this.#required());
  }
}

// The lazy modules more than one module uses, declared once: one loaded ahead by any of them is
// loaded for all (the others are beside their one user).

/** Removing a tree (src/fs/removeTree.ts): snapshot and volume removals, btrfs's. */
export const treeRemoval = new Lazy(() => import("./fs/removeTree.ts"), () => require("./fs/removeTree.ts") as typeof import("./fs/removeTree.ts"));

/** What is mounted, in every mount namespace (src/sys/mountNamespaces.ts): rm, prune, cleanup, df. */
export const mountTables = new Lazy(() => import("./sys/mountNamespaces.ts"), () => require("./sys/mountNamespaces.ts") as typeof import("./sys/mountNamespaces.ts"));
