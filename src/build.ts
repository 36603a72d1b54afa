/**
 * Builds the single executable, dist/stor (`bun run build`): `bun build --compile` with its
 * options as flags (ESM, split into chunks loaded when used, minified, compiled to bytecode), and
 * one change to a dependency, which only this API can make. Not part of the executable.
 *
 * cac extends node:events' EventEmitter only to emit `command:*` events, which stor never
 * listens to, and loading node:events (with the internal modules it pulls in) cost every command
 * about 0.17 ms of start-up. The build gives cac a class with the one method it calls.
 *
 * A compiled Bun program reads `.env` and `bunfig.toml` from the working directory unless told
 * not to. stor runs as root wherever an operator stands: a `.env` there would move its root and
 * a bunfig's `preload` would run any script as root. So it reads neither (and each cost start-up).
 */
import { readFileSync } from "node:fs";

const CAC_IMPORT = "import { EventEmitter } from 'events';";

const result = await Bun.build({
  entrypoints: [new URL("main.ts", import.meta.url).pathname],
  compile: {
    outfile: new URL("../dist/stor", import.meta.url).pathname,
    autoloadDotenv: false,
    autoloadBunfig: false,
    autoloadTsconfig: false,
    autoloadPackageJson: false,
  },
  format: "esm",
  splitting: true,
  minify: true,
  bytecode: true,
  plugins: [
    {
      name: "cac without node:events",
      setup(build) {
        build.onLoad({ filter: /[\\/]cac[\\/]dist[\\/]index\.mjs$/ }, ({ path }) => {
          const source = readFileSync(path, "utf8");
          // A cac that no longer imports it this way fails the build rather than loading node:events unseen.
          if (!source.includes(CAC_IMPORT)) throw new Error(`${path}: no "${CAC_IMPORT}" to replace (has cac changed?)`);
          return { contents: source.replace(CAC_IMPORT, "class EventEmitter { emit() { return false; } }"), loader: "js" };
        });
      },
    },
  ],
});
if (!result.success) {
  for (const message of result.logs) console.error(message);
  process.exit(1);
}
