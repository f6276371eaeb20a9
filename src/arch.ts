// CPU architectures, in one table, in the namings ctr meets: Node's `process.arch`, Go's
// GOARCH (SIF headers and OCI platforms speak it), and `uname -m` (what users type); with
// SIF's two-digit code and the OCI variant an architecture usually means.

interface Arch {
  go: string;
  /** SIF's code (sylabs/sif pkg/sif/arch.go), "00" being unknown. */
  sif: string;
  node: string;
  /** Node says 'ppc64' on both endiannesses: the row that matches the host's. */
  endian?: 'LE' | 'BE';
  uname?: string;
  variant?: string;
}

const ARCHES: readonly Arch[] = [
  { go: '386', sif: '01', node: 'ia32', uname: 'i686' },
  { go: 'amd64', sif: '02', node: 'x64', uname: 'x86_64' },
  { go: 'arm', sif: '03', node: 'arm', uname: 'armv7l', variant: 'v7' },
  { go: 'arm64', sif: '04', node: 'arm64', uname: 'aarch64', variant: 'v8' },
  { go: 'ppc64', sif: '05', node: 'ppc64', endian: 'BE', uname: 'ppc64' },
  { go: 'ppc64le', sif: '06', node: 'ppc64', endian: 'LE', uname: 'ppc64le' },
  { go: 'mips', sif: '07', node: 'mips' },
  { go: 'mipsle', sif: '08', node: 'mipsel' },
  { go: 'mips64', sif: '09', node: 'mips64' },
  { go: 'mips64le', sif: '10', node: 'mips64el' },
  { go: 's390x', sif: '11', node: 's390x', uname: 's390x' },
  { go: 'riscv64', sif: '12', node: 'riscv64', uname: 'riscv64' },
];

export const ARCH_UNKNOWN_CODE = '00';

/** Node's `process.arch` → GOARCH; the caller gives `os.endianness()` (ppc64). */
export function goArchFromNode(nodeArch: string, endianness: 'LE' | 'BE' = 'LE'): string | undefined {
  return ARCHES.find((a) => a.node === nodeArch && (!a.endian || a.endian === endianness))?.go;
}

/** Any of the namings (Go, Node, uname) → GOARCH, or undefined for an architecture we don't know. */
export function normalizeArch(arch: string): string | undefined {
  return ARCHES.find((a) => a.go === arch || a.uname === arch)?.go ?? goArchFromNode(arch);
}

/** GOARCH ('amd64') → SIF code ('02'), or undefined when SIF has no code for it. */
export function archCode(goArch: string): string | undefined {
  return ARCHES.find((a) => a.go === goArch)?.sif;
}

/** SIF code ('02') → GOARCH ('amd64'); 'unknown' as the reference tool says. */
export function archFromCode(code: string): string {
  return ARCHES.find((a) => a.sif === code)?.go ?? 'unknown';
}

/** The OCI platform variant that usually goes with GOARCH (arm64: v8), if any. */
export function archVariant(goArch: string): string | undefined {
  return ARCHES.find((a) => a.go === goArch)?.variant;
}
