// How storm resources name a server to each other. A provider cannot read another resource's
// state, so a reference must carry what is needed to reach the host: `NAME@LIBVIRT_URI`.
// What else others need (the memory reserve placement keeps free) lives on the host itself,
// as a record in its storm pool, so it is right whichever process or machine reads it.
import { DiagnosticError, type AttributePath } from '../protocol/diagnostics.ts';
import { readRecord, writeRecord } from '../drivers/volumes.ts';
import { NAME_PATTERN } from '../schema/validators.ts';

export interface ServerRef {
  name: string;
  uri: string;
}

export type Accelerator = 'auto' | 'kvm' | 'tcg';

export interface ServerRecord {
  reservedMemoryMib: number;
  accelerator?: Accelerator;
}

export const SERVER_RECORD = 'storm-server.json';

export function serverId(name: string, uri: string): string {
  return `${name}@${uri}`;
}

export function parseServerId(id: string): ServerRef | null {
  const at = id.indexOf('@');
  if (at <= 0) return null;
  const name = id.slice(0, at);
  const uri = id.slice(at + 1);
  return NAME_PATTERN.test(name) && /^qemu(\+[a-z0-9]+)?:\/\//.test(uri) ? { name, uri } : null;
}

export function requireServerId(id: string, path: AttributePath): ServerRef {
  const ref = parseServerId(id);
  if (!ref) {
    throw new DiagnosticError(
      'Not a server reference',
      `"${id}" is not a storm server reference (NAME@LIBVIRT_URI). Use the id of a storm_appliance_server, e.g. storm_appliance_server.blade1.id.`,
      path,
    );
  }
  return ref;
}

export async function writeServerRecord(uri: string, record: ServerRecord): Promise<void> {
  await writeRecord(uri, SERVER_RECORD, record);
}

export async function readServerRecord(uri: string): Promise<ServerRecord | null> {
  return readRecord<ServerRecord>(uri, SERVER_RECORD);
}

/** A layer on a server: `VOLUME@NAME@LIBVIRT_URI` (volume names never contain '@'). */
export interface LayerRef {
  volume: string;
  server: ServerRef;
  serverId: string;
}

export function layerId(volume: string, serverIdText: string): string {
  return `${volume}@${serverIdText}`;
}

export function parseLayerId(id: string, prefix: string, what: string, path: AttributePath): LayerRef {
  const at = id.indexOf('@');
  const volume = at > 0 ? id.slice(0, at) : '';
  const server = at > 0 ? parseServerId(id.slice(at + 1)) : null;
  if (!server || !volume.startsWith(prefix)) {
    throw new DiagnosticError(`Not ${what} reference`, `"${id}" is not ${what} reference. Use the id attribute of that resource.`, path);
  }
  return { volume, server, serverId: id.slice(at + 1) };
}
