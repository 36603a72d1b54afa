/**
 * node:fs, loaded on the first call of one of its functions rather than when stor starts: loading
 * it costs a compiled stor 0.9 ms, more than most commands spend on their own work, and the
 * everyday ones (snapshot and volume commands, a native copy too) call none of it: they make their
 * file calls through src/sys (pathCalls.ts, dirent.ts). Modules import fs functions from here
 * instead of node:fs; each one is node's own, called through.
 */
import type * as NodeFs from "node:fs";
import { traceWithin } from "./trace.ts";

export type { BigIntStats } from "node:fs";

type Fs = typeof NodeFs;
let fs: Fs | undefined;

/** node:fs, loaded now if it was not yet (STOR_TRACE shows when, and what it cost). */
function load(): Fs {
  if (fs) return fs;
  const start = performance.now();
  fs = require("node:fs") as Fs;
  traceWithin("node:fs load", start);
  return fs;
}

/** Function `name` of node:fs, which it loads on its first call. */
const lazy = <K extends keyof Fs>(name: K): Fs[K] => ((...args: unknown[]) => (load()[name] as (...a: unknown[]) => unknown)(...args)) as Fs[K];

export const chmodSync = lazy("chmodSync");
export const closeSync = lazy("closeSync");
export const createReadStream = lazy("createReadStream");
export const createWriteStream = lazy("createWriteStream");
export const existsSync = lazy("existsSync");
export const fchmodSync = lazy("fchmodSync");
export const fchownSync = lazy("fchownSync");
export const fstatSync = lazy("fstatSync");
export const ftruncateSync = lazy("ftruncateSync");
export const lstatSync = lazy("lstatSync");
export const mkdirSync = lazy("mkdirSync");
export const mkdtempSync = lazy("mkdtempSync");
export const openSync = lazy("openSync");
export const readFileSync = lazy("readFileSync");
export const readSync = lazy("readSync");
export const readdirSync = lazy("readdirSync");
export const readlinkSync = lazy("readlinkSync");
export const realpathSync = lazy("realpathSync");
export const renameSync = lazy("renameSync");
export const rmSync = lazy("rmSync");
export const statSync = lazy("statSync");
export const writeFileSync = lazy("writeFileSync");
