// The plan summary's model: what a reviewer needs from a plan, per appliance server, in words
// and numbers and no formatting. summary.ts makes it from a plan; markdown.ts renders it.
// Dependency-free, so a renderer of another format needs nothing else.

/** What happens to a resource, as a reviewer says it. */
export type ChangeKind = 'create' | 'update' | 'replace' | 'destroy' | 'forget';

export interface ChangeLine {
  /** Terraform's address, e.g. `storm_instance.mx["a"]`. */
  address: string;
  kind: ChangeKind;
  /** Why (a replacement, a destroy) or what (an update), one plain-text sentence each. */
  details: string[];
}

export interface Fit {
  verdict: 'fits' | 'does-not-fit' | 'unknown';
  /** Why it does not fit, or why it is not known; plain text. */
  problems: string[];
}

/** A server's committed resources before and after the apply, against what it may give. */
export interface CapacityDelta {
  /** Physical memory; null when not known (a new server, one never seen on). */
  memoryMib: number | null;
  reservedMemoryMib: number;
  cpus: number | null;
  committedMemoryBeforeMib: number;
  committedMemoryAfterMib: number;
  /** Free memory after the apply, the reserve kept (negative: over-committed); null when not known. */
  freeMemoryAfterMib: number | null;
  committedVcpusBefore: number;
  committedVcpusAfter: number;
  /** Instance disks (virtual size), before and after. */
  instanceDiskBeforeMib: number;
  instanceDiskAfterMib: number;
  /** Bytes of new layers uploaded to the server, of those whose size is known. */
  newLayerBytes: number;
  /** Instances whose memory or vCPUs are known only after apply (not counted above). */
  memoryUnknown: string[];
  /** Instances whose disk size is known only after apply (not counted above). */
  diskUnknown: string[];
  fit: Fit;
}

export interface PowerChange {
  from: string | null;
  to: string | null;
  /** What it means, or what happened outside Terraform. */
  note: string | null;
}

export type LayerKind = 'base' | 'appliance' | 'deployment' | 'kernel' | 'initrd';

/** A layer the apply uploads to a server. */
export interface NewLayer {
  kind: LayerKind;
  /** e.g. `mail 1.1`, `debian-12`. */
  label: string;
  /** Null when known only after apply (e.g. from a data source read during the apply). */
  sha256: string | null;
  url: string | null;
  sizeBytes: number | null;
  /** The resource that installs it. */
  address: string;
}

/** An image the apply fetches (once into the image cache, whatever the number of servers). */
export interface Download {
  sha256: string | null;
  url: string | null;
  kinds: LayerKind[];
  labels: string[];
  sizeBytes: number | null;
  /** Names of the servers it is uploaded to. */
  servers: string[];
}

export interface ServerSummary {
  /** `NAME@URI`. */
  id: string;
  name: string;
  uri: string;
  /** Its storm_appliance_server address, when this configuration manages it. */
  address: string | null;
  changes: ChangeLine[];
  capacity: CapacityDelta;
  power: PowerChange | null;
  /** Its power after the apply (`on`, `off`, `controller`); null when it goes or is not managed here. */
  powerAfter: string | null;
  layers: NewLayer[];
}

export interface PlanSummary {
  terraformVersion: string | null;
  counts: Record<ChangeKind, number>;
  servers: ServerSummary[];
  /** Changes on no single server: scaling groups, instances placement could not predict, other providers' resources. */
  elsewhere: ChangeLine[];
  downloads: Download[];
  fit: Fit;
  /** What will fail at apply for another reason than room (a server powered off under running instances). */
  warnings: string[];
  /** Things the reviewer should know about the plan as a whole. */
  notes: string[];
}
