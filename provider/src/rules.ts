// The rules and units every part of storm shares — the provider's schema, the appliance
// definition parser, the catalog site, the CLI and the controller — stated once so that
// a name or a version the catalog accepts is one the provider accepts too.
// Dependency-free: anything may import it.
import pkg from '../package.json' with { type: 'json' };

/** The provider's version: package.json's, read at build time (esbuild inlines it). */
export const PROVIDER_VERSION: string = pkg.version;

/** A name that is also safe inside libvirt object names and file names (servers, appliances, instances...). */
export const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const NAME_RULE = 'use 1–63 lowercase letters, digits and "-", starting and ending with a letter or digit (e.g. "blade-1")';

/**
 * An appliance version, as publishers write it (Debian-style `1.0~rc1`, semver-style
 * `1.0.0+build.5`). It becomes part of a volume name (`app-NAME-VERSION`), so no "/" or "@".
 */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$/;
export const VERSION_RULE = 'use 1–64 letters, digits, ".", "_", "+", "~" and "-", starting with a letter or digit (e.g. "1.0.2" or "1.0~rc1")';

/** A SHA-256 as `sha256sum` prints it. */
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

/** The XML namespace of storm's elements in a channel's rss.xml. */
export const CHANNEL_FEED_NAMESPACE = 'https://storm.invalid/xmlns/channel/1';
/** The XML namespace of storm's metadata inside a libvirt domain (marks what storm made). */
export const INSTANCE_METADATA_NAMESPACE = 'https://storm.invalid/xmlns/instance/1';

export const KIB = 1024;
export const MIB = 1024 * 1024;

/** Bytes → MiB, rounded to the nearest MiB (disk sizes libvirt reports). */
export const bytesToMib = (bytes: number): number => Math.round(bytes / MIB);

/** The largest channel document storm reads (a feed: some 19,000 appliance versions); definitions are smaller still. */
export const MAX_CHANNEL_DOCUMENT_BYTES = 16 * MIB;
/** KiB → MiB, rounded up: memory a definition asks for must not shrink on the way to a domain. */
export const kibToMibCeil = (kib: number): number => Math.ceil(kib / KIB);
/** KiB → MiB, rounded down: capacity a host reports must not be overstated. */
export const kibToMibFloor = (kib: number): number => Math.floor(kib / KIB);

/**
 * A libvirt URI for a QEMU host, as a server's `libvirt_uri` and inside every reference to a
 * server (`NAME@URI`): the one rule for both.
 */
export const LIBVIRT_URI_PATTERN = /^qemu(\+(tcp|tls|ssh|libssh|libssh2|unix))?:\/\/[^\s/]*\/system(\?\S*)?$/;

/** An instance's hardware when neither it nor its appliance says otherwise. */
/** Memory every server keeps for itself, never given to appliances: the paper's 128 MB rule (storm_appliance_server's default). */
export const HOST_RESERVE_MIB = 128;

export const DEFAULT_MEMORY_MIB = 256;
export const DEFAULT_VCPUS = 1;
