// The zod schema of a published appliance: the definition the validator returned (typed from
// ApplianceDefinition, checked both ways below) plus what publishing adds. Layouts take their
// types from here, through CollectionEntry<'appliances'>['data'].
import { z } from 'astro/zod';
import type { ApplianceDefinition } from './definition.ts';
import type { Download } from '../../../provider/src/channel/publish.ts';

const imageRef = z.object({ url: z.string(), sha256: z.string(), sig: z.string().nullable() });

export const definitionSchema = z.object({
  formatVersion: z.string(),
  name: z.string(),
  label: z.string(),
  description: z.string(),
  version: z.string(),
  sizeMib: z.number(),
  image: imageRef.extend({ sha256: z.string().nullable() }),
  base: imageRef.extend({ name: z.string() }).nullable(),
  boot: z.object({ kernel: imageRef, initrd: imageRef, cmdline: z.string() }).nullable(),
  provides: z.array(z.string()),
  webpanel: z.string().nullable(),
  hardware: z.object({
    cpus: z.number(),
    memoryKib: z.number(),
    ostype: z.string(),
    disks: z.array(
      z.object({
        name: z.string(),
        type: z.enum(['system', 'swap', 'user']),
        file: z.string().nullable(),
        sizeMib: z.number().nullable(),
      }),
    ),
  }),
  dependencies: z.array(z.object({ name: z.string(), version: z.string().nullable() })),
});

export const publishedApplianceSchema = z.object({
  definition: definitionSchema,
  /** The definition file, relative to the appliances directory. */
  source: z.string(),
  /** SHA-256 of the definition as published (appliance.xml, byte for byte): storm:definition-sha256. */
  definitionSha256: z.string(),
  /** pubDate in the feed: the definition file's modification time. */
  published: z.coerce.date(),
  /** What users download: the image's checksum (the definition's, or computed from the file beside it), its size when the build saw it, its format. */
  download: z.object({
    sha256: z.string(),
    bytes: z.number().nullable(),
    path: z.string().nullable(),
    format: z.enum(['qcow2', 'tgz', 'raw']),
  }),
});

export type PublishedAppliance = z.infer<typeof publishedApplianceSchema>;

// Compile-time: the schema and ApplianceDefinition describe the same shape, both ways.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameShape: Same<z.infer<typeof definitionSchema>, ApplianceDefinition> = true;
void sameShape;
const sameDownload: Same<PublishedAppliance['download'], Download> = true;
void sameDownload;
