// How storm names a server and the layers on it to each other. A Terraform resource cannot
// read another's state, and the controller reads no Terraform state at all, so a reference
// carries what is needed to reach the host: `NAME@LIBVIRT_URI` for a server, and
// `VOLUME@NAME@LIBVIRT_URI` for a layer on it (volume names never contain '@').
import { DiagnosticError, type AttributePath } from '../protocol/diagnostics.ts';
import { LIBVIRT_URI_PATTERN, NAME_PATTERN } from '../rules.ts';
import type { LayerKind } from './names.ts';

export interface ServerRef {
  name: string;
  uri: string;
}

export function serverId(name: string, uri: string): string {
  return `${name}@${uri}`;
}

export function parseServerId(id: string): ServerRef | null {
  const at = id.indexOf('@');
  if (at <= 0) return null;
  const name = id.slice(0, at);
  const uri = id.slice(at + 1);
  return NAME_PATTERN.test(name) && LIBVIRT_URI_PATTERN.test(uri) ? { name, uri } : null;
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

/** A layer on a server. */
export interface LayerRef {
  volume: string;
  server: ServerRef;
  serverId: string;
}

export function layerId(volume: string, serverIdText: string): string {
  return `${volume}@${serverIdText}`;
}

const KIND_NAMES: Record<LayerKind, string> = { base: 'a base', app: 'an appliance', dep: 'a deployment', inst: 'an instance' };

export function parseLayerId(id: string, kind: LayerKind, path: AttributePath): LayerRef {
  const at = id.indexOf('@');
  const volume = at > 0 ? id.slice(0, at) : '';
  const server = at > 0 ? parseServerId(id.slice(at + 1)) : null;
  if (!server || !volume.startsWith(`${kind}-`)) {
    const what = KIND_NAMES[kind];
    throw new DiagnosticError(`Not ${what} reference`, `"${id}" is not ${what} reference. Use the id attribute of that resource.`, path);
  }
  return { volume, server, serverId: id.slice(at + 1) };
}

/** `NAME@SERVER_ID`, the import id of deployments and instances, as the layer it names. */
export function parseImportId(id: string, kind: 'dep' | 'inst', example: string): { name: string; ref: LayerRef } {
  const at = id.indexOf('@');
  const name = at > 0 ? id.slice(0, at) : '';
  try {
    if (!NAME_PATTERN.test(name)) throw new Error('bad name');
    return { name, ref: parseLayerId(`${kind}-${name}@${id.slice(at + 1)}`, kind, []) };
  } catch {
    throw new DiagnosticError('Invalid import id', `"${id}" is not NAME@SERVER_ID, e.g. ${example}.`);
  }
}
