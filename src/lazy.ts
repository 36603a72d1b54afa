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

  constructor(
    readonly imported: () => Promise<T>,
    readonly required: () => T,
  ) {}

  /** Loads the module now, with `import()`. */
  async load(): Promise<void> {
    this.#module ??= await this.imported();
  }

  /** The module: the one loaded ahead, else required now. */
  get(): T {
    return (this.#module ??= this.required());
  }
}
