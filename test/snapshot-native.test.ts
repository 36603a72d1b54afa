import { snapshotterSuite } from "./snapshotterSuite.ts";

snapshotterSuite("native");
