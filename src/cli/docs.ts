/** `stor completion`, `stor man` and the hidden `stor __complete`: placeholders filled below. */
import { Group, type Context } from "./command.ts";

export function docsGroup(_ctx: Context): Group {
  return new Group("stor");
}
