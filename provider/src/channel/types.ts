// The appliance definition: the paper's Figure 2 XML plus what layering and trust need.
// Dependency-free on purpose: the provider, the catalog site and the CLI all import it.
//
//   <appliance version='1.0'>
//     <name>webserv</name>                      storm, optional: the id used in HCL (lowercase, a-z0-9-);
//                                               left out: from the folder the site finds it in, else the label
//     <label>Simple Web Server</label>
//     <description>A very simple and efficient test web server.</description>
//     <version>1.0.0-0</version>
//     <size>1024</size>                         MiB, the appliance's disk
//     <url>https://images.example/webserv-1.0.0-0.qcow2</url>   the appliance layer: a qcow2 overlay on the base, a
//                                               whole image when there is no base, or a .tgz holding the system disk's file
//     <sha256>…64 hex…</sha256>                 storm, optional: checksum of that image; left out: the site
//                                               computes it from the image file beside the definition
//     <sig>https://images.example/webserv-1.0.0-0.qcow2.sig</sig>  signature of the image
//     <base name='debian-12' url='…' sha256='…' sig='…'/>  storm, optional: the base-OS layer it stands on;
//                                               left out: a single-layer appliance (its image is its own base)
//     <boot kernel='…' kernel-sha256='…' initrd='…' initrd-sha256='…' cmdline='console=ttyS0'/>  storm, optional
//     <provides>webserv</provides>              zero or more
//     <webpanel>/upload.php</webpanel>          optional
//     <hardware>
//       <cpus>1</cpus> <memory>524288</memory>  KiB, as in the paper
//       <ostype>linux</ostype>
//       <disk name='hda1' type='system' file='sys.img'/>  at most one system disk: the image (file= names it inside a .tgz)
//       <disk name='hda3' type='swap' size='128'/>       swap and user disks: new empty volumes of size MiB on every instance
//     </hardware>
//     <dependency>emailserv:1.0.0-0</dependency>  name[:version], zero or more
//   </appliance>

export interface ImageRef {
  url: string;
  sha256: string;
  /** URL of the detached signature (storm's Ed25519 format). */
  sig: string | null;
}

export interface BaseLayerRef extends ImageRef {
  name: string;
}

export interface BootSpec {
  kernel: ImageRef;
  initrd: ImageRef;
  cmdline: string;
}

export interface DiskSpec {
  name: string;
  type: 'system' | 'swap' | 'user';
  file: string | null;
  sizeMib: number | null;
}

export interface Dependency {
  name: string;
  /** Null: any version. */
  version: string | null;
}

export interface ApplianceDefinition {
  formatVersion: string;
  name: string;
  label: string;
  description: string;
  version: string;
  sizeMib: number;
  /** The appliance's image; its sha256 may be left to the channel site, which computes it from the file it publishes. */
  image: Omit<ImageRef, 'sha256'> & { sha256: string | null };
  /** Null: a single-layer appliance, its image its own base (the paper's Figure 2). */
  base: BaseLayerRef | null;
  boot: BootSpec | null;
  provides: string[];
  webpanel: string | null;
  hardware: {
    cpus: number;
    memoryKib: number;
    ostype: string;
    disks: DiskSpec[];
  };
  dependencies: Dependency[];
}

/**
 * One problem in a definition: where (an XPath-like path, a 1-based line and column; null for the
 * document as a whole) and what to do.
 */
export interface DefinitionProblem {
  path: string;
  line: number | null;
  /** In characters, as editors count them. */
  column: number | null;
  message: string;
}

export type ParseResult = { ok: true; definition: ApplianceDefinition } | { ok: false; problems: DefinitionProblem[] };
