// libvirt domain XML for a storm instance. Pure string building; the metadata element lets
// storm recognise its own domains (placement counts them, import reads them back).

import { escapeXml } from './xml.ts';

import { INSTANCE_METADATA_NAMESPACE } from '../rules.ts';

/** Marks a domain storm defined. */
export const STORM_XMLNS = INSTANCE_METADATA_NAMESPACE;

export interface DomainSpec {
  name: string;
  /** Set when redefining an existing domain: libvirt matches definitions by UUID. */
  uuid?: string;
  type: 'kvm' | 'qemu';
  memoryMib: number;
  vcpus: number;
  diskPath: string;
  seedPath: string;
  /** Raw volumes attached after the system disk and the seed, in order (vdc, vdd, …). */
  dataDisks?: readonly DataDiskAttachment[];
  network: string;
  mac?: string;
  consoleLog: string;
  kernel?: { kernelPath: string; initrdPath: string; cmdline: string };
  metadata: Record<string, string>;
}

export interface DataDiskAttachment {
  path: string;
  /** What the guest reads as the disk's serial: /dev/disk/by-id/virtio-SERIAL finds it whatever its order. */
  serial: string;
}

/** The first data disk's place: vda is the system disk, vdb the seed. */
export const FIRST_DATA_DISK = 2;

/** libvirt's virtio target names: 0 → vda, 25 → vdz, 26 → vdaa. */
export function virtioDevice(index: number): string {
  let n = index;
  let letters = '';
  do {
    letters = String.fromCharCode(97 + (n % 26)) + letters;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return `vd${letters}`;
}

export function domainXml(d: DomainSpec): string {
  const e = escapeXml;
  const boot = d.kernel
    ? `<kernel>${e(d.kernel.kernelPath)}</kernel><initrd>${e(d.kernel.initrdPath)}</initrd><cmdline>${e(d.kernel.cmdline)}</cmdline>`
    : `<boot dev='hd'/>`;
  const meta = Object.entries(d.metadata)
    .map(([k, v]) => `<storm:${k}>${e(v)}</storm:${k}>`)
    .join('');
  return [
    `<domain type='${d.type}'>`,
    `<name>${e(d.name)}</name>`,
    d.uuid ? `<uuid>${e(d.uuid)}</uuid>` : '',
    `<metadata><storm:instance xmlns:storm='${STORM_XMLNS}'>${meta}</storm:instance></metadata>`,
    `<memory unit='MiB'>${d.memoryMib}</memory>`,
    `<vcpu>${d.vcpus}</vcpu>`,
    `<os><type arch='x86_64' machine='pc'>hvm</type>${boot}</os>`,
    // ACPI lets a guest hear a graceful shutdown request (virsh shutdown).
    `<features><acpi/></features>`,
    `<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>`,
    `<devices>`,
    `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${e(d.diskPath)}'/><target dev='vda' bus='virtio'/></disk>`,
    `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${e(d.seedPath)}'/><target dev='vdb' bus='virtio'/><readonly/></disk>`,
    ...(d.dataDisks ?? []).map(
      (x, i) => `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${e(x.path)}'/><target dev='${virtioDevice(FIRST_DATA_DISK + i)}' bus='virtio'/><serial>${e(x.serial)}</serial></disk>`,
    ),
    `<interface type='network'><source network='${e(d.network)}'/>${d.mac ? `<mac address='${e(d.mac)}'/>` : ''}<model type='virtio'/></interface>`,
    // append: the console log keeps earlier boots, which is what an operator wants after a restart.
    `<serial type='file'><source path='${e(d.consoleLog)}' append='on'/><target port='0'/></serial>`,
    `<memballoon model='none'/>`,
    `</devices>`,
    `</domain>`,
  ].join('\n');
}

/** What storm reads back from a defined domain. */
export interface DomainFacts {
  uuid: string | null;
  consoleLog: string | null;
  memoryMib: number;
  vcpus: number;
  mac: string | null;
  diskPath: string | null;
  /** The disks after the system disk and the seed (vdc, vdd, …), in device order. */
  dataDisks: (DataDiskAttachment & { device: string })[];
  /** The libvirt network its NIC is on. */
  network: string | null;
  metadata: Record<string, string>;
}

export function parseDomainXml(xml: string): DomainFacts {
  const mem = /<memory unit='KiB'>(\d+)<\/memory>/.exec(xml)?.[1];
  const memMib = /<memory unit='MiB'>(\d+)<\/memory>/.exec(xml)?.[1];
  const metadata: Record<string, string> = {};
  const block = /<storm:instance[^>]*>([\s\S]*?)<\/storm:instance>/.exec(xml)?.[1] ?? '';
  for (const m of block.matchAll(/<storm:([a-z_]+)>([^<]*)<\/storm:\1>/g)) metadata[m[1]!] = unescapeXml(m[2]!);
  return {
    uuid: /<uuid>([^<]+)<\/uuid>/.exec(xml)?.[1] ?? null,
    consoleLog: /<serial type='file'>\s*<source path='([^']+)'/.exec(xml)?.[1] ?? null,
    memoryMib: mem ? Math.round(Number(mem) / 1024) : Number(memMib ?? 0),
    vcpus: Number(/<vcpu[^>]*>(\d+)<\/vcpu>/.exec(xml)?.[1] ?? 0),
    mac: /<mac address='([^']+)'/.exec(xml)?.[1] ?? null,
    diskPath: /<target dev='vda'/.test(xml) ? (/<source file='([^']+)'[^>]*\/>\s*(?:<backingStore[\s\S]*?<\/backingStore>\s*)?<target dev='vda'/.exec(xml)?.[1] ?? null) : null,
    dataDisks: dataDisksOf(xml),
    network: /<interface type='network'>[\s\S]*?<source network='([^']+)'/.exec(xml)?.[1] ?? null,
    metadata,
  };
}

function dataDisksOf(xml: string): (DataDiskAttachment & { device: string })[] {
  const out: (DataDiskAttachment & { device: string })[] = [];
  for (const m of xml.matchAll(/<disk\b[^>]*>([\s\S]*?)<\/disk>/g)) {
    const body = m[1]!;
    // The disk's own source and target, not those of a <backingStore> inside it.
    const own = body.replace(/<backingStore\b[\s\S]*?<\/backingStore>/g, '');
    const device = /<target dev='([^']+)'/.exec(own)?.[1];
    const path = /<source file='([^']+)'/.exec(own)?.[1];
    const serial = /<serial>([^<]*)<\/serial>/.exec(own)?.[1] ?? '';
    if (device && path && device !== 'vda' && device !== 'vdb') out.push({ device, path: unescapeXml(path), serial: unescapeXml(serial) });
  }
  return out.sort((a, b) => a.device.length - b.device.length || a.device.localeCompare(b.device));
}

function unescapeXml(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&');
}
