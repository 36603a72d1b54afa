#!/usr/bin/env bun
/**
 * Entry point of the stor executable, and of its worker threads (`stor serve` starts them from
 * this same entry, which is found inside the compiled binary as from the sources). No top-level
 * await: the build compiles to bytecode.
 */
import { main } from "./cli/main.ts";

if (Bun.isMainThread) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
} else {
  void import("./serve/thread.ts");
}
