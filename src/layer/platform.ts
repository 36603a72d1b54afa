/**
 * Platforms as containerd's platforms package reads them: names normalized (`x86_64` is amd64,
 * `aarch64` is arm64, `arm64/v8` is plain arm64, the OS lower-cased), and this host's platforms in
 * its order of preference (amd64 also runs 386; arm64 also runs arm/v8 down to arm/v5), by which an
 * index's manifests are ranked.
 */

/** An OCI platform, normalized: variant "" when there is none. */
export interface Platform {
  os: string;
  architecture: string;
  variant: string;
}

/** The platform `p` names (os, architecture and variant of an OCI descriptor), normalized. */
export function normalize(p: { os?: unknown; architecture?: unknown; variant?: unknown }): Platform {
  const text = (v: unknown) => (typeof v === "string" ? v.toLowerCase() : "");
  const os = text(p.os) || "linux";
  const [architecture, variant] = normalizeArch(text(p.architecture), text(p.variant));
  return { os: os === "macos" ? "darwin" : os, architecture, variant };
}

function normalizeArch(arch: string, variant: string): [string, string] {
  switch (arch) {
    case "i386":
      return ["386", ""];
    case "x86_64":
    case "x86-64":
    case "amd64":
      return ["amd64", variant === "v1" ? "" : variant];
    case "aarch64":
    case "arm64":
      return ["arm64", ["8", "v8", "v8.0"].includes(variant) ? "" : ["9", "9.0", "v9.0"].includes(variant) ? "v9" : variant];
    case "armhf":
      return ["arm", "v7"];
    case "armel":
      return ["arm", "v6"];
    case "arm":
      return ["arm", variant === "" || variant === "7" ? "v7" : ["5", "6", "8"].includes(variant) ? `v${variant}` : variant];
    default:
      return [arch, variant];
  }
}

/** This host's platform in GOARCH names, normalized (arm64 is v8, 32-bit arm v7 as containerd reads them). */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64", loong64: "loong64" };
  return normalize({ os: "linux", architecture: arch[process.arch] ?? process.arch });
}

/** The platforms this host runs, best first. */
function hostPlatforms(): Platform[] {
  const host = hostPlatform();
  const arm = (from: number) => Array.from({ length: from - 4 }, (_, i) => ({ os: host.os, architecture: "arm", variant: `v${from - i}` }));
  if (host.architecture === "amd64") return [host, { os: host.os, architecture: "386", variant: "" }];
  if (host.architecture === "arm64") return [host, ...arm(8)];
  if (host.architecture === "arm") return arm(Number(host.variant.slice(1)));
  return [host];
}

/** Where platform `p` ranks among those this host runs (0 is best), or -1 when it runs not at all. */
export function hostRank(p: { os?: unknown; architecture?: unknown; variant?: unknown }): number {
  const n = normalize(p);
  return hostPlatforms().findIndex((h) => h.os === n.os && h.architecture === n.architecture && h.variant === n.variant);
}
