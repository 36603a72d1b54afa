#!/usr/bin/env bun
/** Entry point of the stor executable. No top-level await: the build compiles to bytecode. */
import { main } from "./cli/main.ts";

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
