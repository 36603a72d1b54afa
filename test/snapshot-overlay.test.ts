import { snapshotterSuite } from "./snapshotterSuite.ts";

snapshotterSuite("overlay");
