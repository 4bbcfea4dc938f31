// The records storm keeps on a server, next to the layers in its pool: small JSON documents
// that make the host itself the source of truth, whichever process or machine reads it (a
// provider run, `storm fetch`, the controller). Their shapes are defined here, once.
import { readRecord } from '../drivers/volumes.ts';
import { SERVER_RECORD, layerRecordName, type DataDiskType } from './names.ts';
import type { HostSession } from './session.ts';

export type Accelerator = 'auto' | 'kvm' | 'tcg';

export interface ServerRecord {
  /** Memory placement keeps free for the host itself (the paper's 128 MiB rule by default). */
  reservedMemoryMib: number;
  accelerator?: Accelerator;
}

/** A shared layer's completion record: the layer was uploaded whole. */
export interface SharedLayerRecord {
  sha256: string;
}

/** A swap or user disk every instance of an appliance gets: a new empty volume of `sizeMib`. */
export interface DataDiskSpec {
  name: string;
  type: DataDiskType;
  sizeMib: number;
}

/** What instances need to know about an appliance. */
export interface ApplianceRecord {
  volume: string;
  /** Null: a single-layer appliance, its layer a whole image. */
  base: string | null;
  /** The hardware an instance gets unless it says otherwise (from the appliance's definition). */
  memoryMib: number;
  vcpus: number;
  boot: { kernel: string; initrd: string; cmdline: string } | null;
  /** In the order they are attached (absent in records written before appliances had disks). */
  disks?: DataDiskSpec[];
  /** Path of the appliance's web control panel, e.g. `/upload.php`. */
  webpanel?: string | null;
}

export interface DeploymentFile {
  path: string;
  content: string;
  permissions: string;
}

export interface DeploymentRecord {
  volume: string;
  appliance: string;
  files: DeploymentFile[];
  variables: Record<string, string>;
  /** The published layer it was made from (null: an empty layer); kept so import can restore it. */
  image?: { url: string; sha256: string } | null;
}

export const readServerRecord = (uri: string) => readRecord<ServerRecord>(uri, SERVER_RECORD);
export const writeServerRecord = (session: HostSession, uri: string, record: ServerRecord) => session.writeRecord(uri, SERVER_RECORD, record);

export const readLayerRecord = <T extends SharedLayerRecord | ApplianceRecord | DeploymentRecord>(uri: string, volume: string) => readRecord<T>(uri, layerRecordName(volume));
export const writeLayerRecord = (session: HostSession, uri: string, volume: string, record: SharedLayerRecord | ApplianceRecord | DeploymentRecord) =>
  session.writeRecord(uri, layerRecordName(volume), record);
