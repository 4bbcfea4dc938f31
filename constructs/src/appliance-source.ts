// What a LayeredAppliance installs: an appliance's layers and hardware, resolved from a
// channel (signatures checked by the provider at plan time) or given directly as images (a
// publisher's own build, a test image). Either way one storm_appliance per server is made from it.
import { conditional, Op, propertyAccess, Token } from 'cdktf';
import type { Construct } from 'constructs';
import { imageUrlValidator, nameValidator, sha256Validator, versionValidator } from '../../provider/src/schema/validators.ts';
import { Appliance } from './generated/appliance/index.ts';
import type { Channel, ApplianceFromChannelOptions } from './channel.ts';
import { providerRule, type PropRule } from './validation.ts';

/** An image and its SHA-256 (storm refuses an image that does not match). */
export interface ImageSource {
  /** An http(s) URL, a file:/// URL or an absolute path. */
  readonly url: string;
  /** The 64 lowercase hex digits `sha256sum` prints (of the file as downloaded, e.g. the .tgz). */
  readonly sha256: string;
}

/** The appliance's own image: a layer over the base, or (single-layer) a whole disk, possibly a .tgz holding it. */
export interface ApplianceImageSource extends ImageSource {
  /**
   * When the image is a gzip'd tar (Figure 2's `webserv.tgz`): the system disk's file inside it.
   * @default - the image is the disk itself
   */
  readonly file?: string;
}

/** A swap or user disk every instance gets beside its system disk: an empty raw volume. */
export interface ApplianceDisk {
  /** The definition's name for it, e.g. `hda3`. */
  readonly name: string;
  /** `swap` or `user` (a user disk can outlive an instance's replacement: `keepUserDisks`). */
  readonly type: 'swap' | 'user';
  /** Its size (MiB). */
  readonly sizeMib: number;
}

/** The base-OS layer: shared by every appliance on a server that names the same base. */
export interface BaseImageSource extends ImageSource {
  /** Base name, e.g. `debian-12`. */
  readonly name: string;
}

/** Direct kernel boot, for an appliance whose disk has no boot loader. */
export interface DirectBoot {
  readonly kernelUrl: string;
  readonly kernelSha256: string;
  readonly initrdUrl: string;
  readonly initrdSha256: string;
  /**
   * Kernel command line.
   * @default 'console=ttyS0'
   */
  readonly cmdline?: string;
}

export interface ApplianceImages {
  /** Appliance name, e.g. `mail`. */
  readonly name: string;
  /** Appliance version, e.g. `1.0`. */
  readonly version: string;
  /**
   * The base-OS layer: a raw or qcow2 image without a backing file.
   * @default - none: a single-layer appliance, whose image is a whole disk (the paper's Figure 2)
   */
  readonly base?: BaseImageSource;
  /** The appliance layer: a qcow2 overlay whose backing file is the base image, or, without a base, a whole disk. */
  readonly image: ApplianceImageSource;
  /**
   * Swap and user disks its instances get.
   * @default - none
   */
  readonly disks?: readonly ApplianceDisk[];
  /**
   * Path of its web panel, e.g. `/upload.php`; instances then have `webpanelUrl`.
   * @default - none
   */
  readonly webpanel?: string;
  /**
   * Direct kernel boot.
   * @default - the disk boots itself
   */
  readonly boot?: DirectBoot;
  /**
   * Memory its instances get unless they say otherwise (MiB).
   * @default 256
   */
  readonly memoryMib?: number;
  /**
   * vCPUs its instances get unless they say otherwise.
   * @default 1
   */
  readonly vcpus?: number;
  /**
   * Services it provides (a ScalingGroup publishes SRV records and MX for them).
   * @default - none
   */
  readonly provides?: readonly string[];
}

/** The hardware a LayeredAppliance may set over the source's. */
export interface ApplianceHardware {
  /**
   * Memory its instances get unless they say otherwise (MiB).
   * @default - the source's
   */
  readonly memoryMib?: number;
  /**
   * vCPUs its instances get unless they say otherwise.
   * @default - the source's
   */
  readonly vcpus?: number;
}

/** A source bound to the construct that installs it. */
export interface BoundAppliance {
  readonly name: string;
  /** The version (from a channel: the one the constraint chose, known at plan time). */
  readonly version: string;
  readonly provides: string[] | undefined;
  /** Checks of the source's props, reported under the installing construct. */
  readonly rules: readonly (PropRule | undefined)[];
  /** Makes the storm_appliance for one server. */
  install(scope: Construct, id: string, server: string, hardware: ApplianceHardware): Appliance;
}

export abstract class ApplianceSource {
  /** The newest version of `name` in the channel (that fits `versionConstraint`). */
  static fromChannel(channel: Channel, name: string, options: ApplianceFromChannelOptions = {}): ApplianceSource {
    return new FromChannel(channel, name, options.versionConstraint);
  }

  /** An appliance given by its images. */
  static fromImages(images: ApplianceImages): ApplianceSource {
    return new FromImages(images);
  }

  abstract bind(scope: Construct): BoundAppliance;
}

class FromChannel extends ApplianceSource {
  constructor(
    private readonly channel: Channel,
    private readonly name: string,
    private readonly versionConstraint: string | undefined,
  ) {
    super();
  }

  bind(): BoundAppliance {
    const release = this.channel.release(this.name, this.versionConstraint);
    return {
      name: this.name,
      version: release.version,
      provides: release.provides,
      rules: [],
      install: (scope, id, server, hardware) => {
        const appliance = new Appliance(scope, id, {
          server,
          name: release.name,
          version: release.version,
          memoryMib: hardware.memoryMib ?? release.memoryMib,
          vcpus: hardware.vcpus ?? release.vcpus,
          // Everything the definition says passes straight through: a single-layer appliance
          // (no base), its .tgz's system disk file, its swap/user disks and web panel.
          disks: release.interpolationForAttribute('disks') as unknown as Appliance['disks'],
          webpanel: release.webpanel,
          image: { url: release.imageUrl, sha256: release.imageSha256, file: release.systemDiskFile },
        });
        // The base block only when the definition has a base (the data source's base_name is null otherwise).
        appliance.addOverride('dynamic.base', {
          for_each: conditional(Op.eq(release.interpolationForAttribute('base_name'), Token.nullValue()), [], [1]),
          content: { name: release.baseName, url: release.baseUrl, sha256: release.baseSha256 },
        });
        // The definition says at plan time whether the appliance boots a kernel directly: a
        // dynamic block over `boot[*]` (no block when boot is null). cdktf's dynamic blocks
        // render single blocks as expressions, which Terraform refuses, hence the override.
        appliance.addOverride('dynamic.boot', {
          for_each: propertyAccess(release.interpolationForAttribute('boot'), ['*']),
          content: Object.fromEntries(['kernel_url', 'kernel_sha256', 'initrd_url', 'initrd_sha256', 'cmdline'].map((k) => [k, `\${boot.value.${k}}`])),
        });
        return appliance;
      },
    };
  }
}

class FromImages extends ApplianceSource {
  constructor(private readonly images: ApplianceImages) {
    super();
  }

  bind(): BoundAppliance {
    const i = this.images;
    return {
      name: i.name,
      version: i.version,
      provides: i.provides && [...i.provides],
      rules: [
        providerRule('source name', i.name, nameValidator),
        providerRule('source version', i.version, versionValidator),
        providerRule('source base.name', i.base?.name, nameValidator),
        providerRule('source base.url', i.base?.url, imageUrlValidator),
        providerRule('source base.sha256', i.base?.sha256, sha256Validator),
        providerRule('source image.url', i.image.url, imageUrlValidator),
        providerRule('source image.sha256', i.image.sha256, sha256Validator),
        providerRule('source boot.kernelUrl', i.boot?.kernelUrl, imageUrlValidator),
        providerRule('source boot.kernelSha256', i.boot?.kernelSha256, sha256Validator),
        providerRule('source boot.initrdUrl', i.boot?.initrdUrl, imageUrlValidator),
        providerRule('source boot.initrdSha256', i.boot?.initrdSha256, sha256Validator),
      ],
      install: (scope, id, server, hardware) =>
        new Appliance(scope, id, {
          server,
          name: i.name,
          version: i.version,
          memoryMib: hardware.memoryMib ?? i.memoryMib,
          vcpus: hardware.vcpus ?? i.vcpus,
          base: i.base && { ...i.base },
          image: { ...i.image },
          disks: i.disks?.map((d) => ({ ...d })),
          webpanel: i.webpanel,
          boot: i.boot && { ...i.boot },
        }),
    };
  }
}
