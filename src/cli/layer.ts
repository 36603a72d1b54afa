/** `stor snapshot changes|diff|apply`: a snapshot's changes as an OCI layer and back. */
import type { CAC } from "cac";
import type { SnapshotService } from "../snapshot/service.ts";

/** Adds the layer commands to the `stor snapshot` group. */
export function registerLayerCommands(_cli: CAC, _svc: () => SnapshotService): void {}
