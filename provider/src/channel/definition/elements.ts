// The one table of the appliance definition's elements (format in ../types.ts): which elements
// and attributes exist, how often, what values they take, where each lands in the parsed
// ApplianceDefinition, what it means, and what a publisher is told when it is wrong. The
// checker, the serializer, the JSON Schema and the XSD are all walks over this table, so a
// rule changed here changes all four.
//
// A value rule (ValueRule) is a kind of value: its pattern is spelled once (names, versions and
// checksums come from ../../rules.ts, shared with the provider's own schema) and feeds the
// checker, the JSON Schema and the XSD; its messages are completed by the element's Wording.

import { NAME_PATTERN, SHA256_PATTERN, VERSION_PATTERN } from '../../rules.ts';
import type { Dependency } from '../types.ts';
import { closest, convertUnits, quote } from './wording.ts';

/** The only definition format version this storm reads (the paper's `<appliance version='1.0'>`). */
export const DEFINITION_FORMAT_VERSION = '1.0';

// Far above anything real (the paper's examples have one or two of each), low enough that one
// definition cannot make a site build, a plan or an install do unbounded work.
export const MAX_DEPENDENCIES = 256;
export const MAX_PROVIDES = 64;
export const MAX_DISKS = 64;

/**
 * Versions that are a path the channel site itself writes beside an appliance's version folders
 * (appliances/NAME/index.html is its catalog page), compared ignoring case as some file systems
 * do. Names cannot collide: they live one folder down (appliances/NAME/) and take no dots.
 */
export const RESERVED_VERSIONS: readonly string[] = ['index.html'];
export const APPLIANCE_START_TAG = `<appliance version='${DEFINITION_FORMAT_VERSION}'>`;

export type JsonSchema = { [keyword: string]: unknown };

// ---------------------------------------------------------------------------------------------
// Value rules.

/** An XSD simple type: a restriction of a built-in type. */
export interface XsdRestriction {
  base: 'xs:token' | 'xs:positiveInteger';
  /** Written anchored, as JavaScript tests it; the XSD writer drops the anchors (XSD patterns are implicitly anchored). */
  pattern?: RegExp;
  enumeration?: readonly string[];
  minLength?: number;
  maxInclusive?: number;
}

/** What a message about a bad value says beyond what the value rule knows. */
export interface Wording {
  /** Who the message is about: "size", "the base url". */
  subject: string;
  /** What a good value is, when the element says it better than the value rule ("a whole number of virtual CPUs, at least 1"). */
  must?: string;
  example?: string;
  /** For counts: the unit, so "512MB" gets "(for 512 MiB write 524288)". */
  unit?: 'KiB' | 'MiB';
}

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

export interface ValueRule<T> {
  /** Name of the XSD simple type, or null to spell it inline where it is used. */
  readonly xsdName: string | null;
  /** The XSD built-in type it is, or the restriction it is. */
  readonly xsd: 'xs:string' | XsdRestriction;
  /** Name of the JSON Schema `$defs` entry, or null to spell it inline. */
  readonly jsonDef: string | null;
  readonly json: JsonSchema;
  /** The value of an element's trimmed text or an attribute's trimmed value. */
  check(text: string, wording: Wording): Checked<T>;
  /** The text that reads back as `value`. */
  write(value: T): string;
}

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const no = (message: string): Checked<never> => ({ ok: false, message });
const itself = (text: string): string => text;

/** A string of one pattern; the message is "<subject> must be <must>, e.g. <example>; got …". */
function patterned(spec: { pattern: RegExp; must: string; example: string; xsdName: string | null; jsonDef?: string; description: string }): ValueRule<string> {
  return {
    xsdName: spec.xsdName,
    xsd: { base: 'xs:token', pattern: spec.pattern },
    jsonDef: spec.jsonDef ?? null,
    json: { type: 'string', pattern: spec.pattern.source, description: spec.description },
    check: (text, w) =>
      spec.pattern.test(text) ? ok(text) : no(`${w.subject} must be ${w.must ?? spec.must}, e.g. ${w.example ?? spec.example}; got ${quote(text)}`),
    write: itself,
  };
}

const HTTP_URL_PATTERN = /^https?:\/\/[^\s/?#@]+([/?#][^\s]*)?$/;
const DIGITS = /^[0-9]+$/;
export const EXAMPLE_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export const NAME: ValueRule<string> = {
  xsdName: 'nameType',
  xsd: { base: 'xs:token', pattern: NAME_PATTERN },
  jsonDef: 'name',
  json: { type: 'string', pattern: NAME_PATTERN.source, description: 'lowercase letters, digits and hyphens, 1-63 characters' },
  check(text, w) {
    if (NAME_PATTERN.test(text)) return ok(text);
    // The name the publisher probably meant is the best example.
    const fixed = text.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
    const example = fixed && NAME_PATTERN.test(fixed) ? quote(fixed) : '"webserv"';
    return no(`${w.subject} must be 1-63 lowercase letters, digits and hyphens, not starting or ending with a hyphen, e.g. ${example}; got ${quote(text)}`);
  },
  write: itself,
};

export const VERSION: ValueRule<string> = patterned({
  pattern: VERSION_PATTERN,
  must: "up to 64 letters, digits and . _ + ~ - starting with a letter or digit (no spaces or ':')",
  example: '1.0.0-0',
  xsdName: 'versionType',
  jsonDef: 'version',
  description: 'letters, digits and . _ + ~ -, e.g. 1.0.0-0',
});

export const SHA256: ValueRule<string> = {
  xsdName: 'sha256Type',
  xsd: { base: 'xs:token', pattern: SHA256_PATTERN },
  jsonDef: 'sha256',
  json: { type: 'string', pattern: SHA256_PATTERN.source, description: '64 lowercase hex digits, as printed by sha256sum' },
  check(text, w) {
    if (SHA256_PATTERN.test(text)) return ok(text);
    let hint = '';
    if (/^[0-9a-fA-F]{64}$/.test(text)) hint = ' (write it in lowercase)';
    else if (/^sha256[:-]/i.test(text)) hint = ' (leave out the "sha256:" prefix)';
    else if (/^[0-9a-fA-F]+$/.test(text)) hint = ` (that is ${text.length} hex digits, not 64)`;
    return no(`${w.subject} must be 64 lowercase hex digits, the SHA-256 as printed by sha256sum${hint}, e.g. ${EXAMPLE_SHA256}; got ${quote(text)}`);
  },
  write: itself,
};

export const HTTP_URL: ValueRule<string> = {
  xsdName: 'httpUrl',
  xsd: { base: 'xs:token', pattern: HTTP_URL_PATTERN },
  jsonDef: 'httpUrl',
  json: { type: 'string', pattern: HTTP_URL_PATTERN.source, format: 'uri', description: 'absolute http:// or https:// URL' },
  check(text, w) {
    // The pattern keeps the XSD and the JSON Schema honest; a real URL parser has the last word.
    let good = HTTP_URL_PATTERN.test(text);
    if (good) {
      try {
        const u = new URL(text);
        good = (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
      } catch {
        good = false;
      }
    }
    if (good) return ok(text);
    const why =
      /^[a-z][a-z0-9+.-]*:/i.test(text) && !/^https?:/i.test(text)
        ? ' (only http and https are fetched)'
        : /^https?:\/\/[^/?#]*@/i.test(text)
          ? ' (no user:password@ in published URLs)'
          : '';
    return no(`${w.subject} must be an absolute http:// or https:// URL${why}, e.g. ${w.example ?? 'https://images.example/app.qcow2'}; got ${quote(text)}`);
  },
  write: itself,
};

/** A whole number, at least 1, that JavaScript holds exactly. */
export const COUNT: ValueRule<number> = {
  xsdName: 'positiveCount',
  xsd: { base: 'xs:positiveInteger', pattern: DIGITS, maxInclusive: Number.MAX_SAFE_INTEGER },
  jsonDef: null,
  json: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
  check(text, w) {
    if (DIGITS.test(text)) {
      const n = Number(text);
      if (Number.isSafeInteger(n) && n >= 1) return ok(n);
    }
    const what = `${w.subject} must be ${w.must ?? 'a whole number, at least 1'}${w.example ? `, e.g. ${w.example}` : ''}`;
    const meant = w.unit ? convertUnits(text, w.unit) : null;
    // The example may already be that conversion ("524288 for 512 MiB"); say it once.
    const hint = meant && !what.includes(`${meant.value} for ${meant.amount}`) ? ` (for ${meant.amount} write ${meant.value})` : '';
    return no(`${what}; got ${quote(text)}${hint}`);
  },
  write: String,
};

/** Any text that is not blank (emptiness is refused before the value rule is asked). */
export const TEXT: ValueRule<string> = {
  xsdName: 'nonEmptyText',
  xsd: { base: 'xs:token', minLength: 1 },
  jsonDef: null,
  json: { type: 'string', minLength: 1, pattern: '\\S' },
  check: (text) => ok(text),
  write: itself,
};

/** Any text at all, blank included. */
export const FREE_TEXT: ValueRule<string> = {
  xsdName: null,
  xsd: 'xs:string',
  jsonDef: null,
  json: { type: 'string' },
  check: (text) => ok(text),
  write: itself,
};

export const WEBPANEL: ValueRule<string> = patterned({
  pattern: /^\/[^\s]*$/,
  must: 'a path on the appliance\'s own web server, starting with "/" and without spaces',
  example: '/upload.php',
  xsdName: 'webpanelType',
  description: "a path on the appliance's own web server",
});

export const OSTYPE: ValueRule<string> = patterned({
  pattern: /^[a-z][a-z0-9_-]{0,31}$/,
  must: 'a lowercase OS type word (letters, digits, _ and -)',
  example: 'linux',
  xsdName: 'ostypeType',
  description: '<ostype>, e.g. linux',
});

export const DISK_NAME: ValueRule<string> = patterned({
  pattern: /^[a-z][a-z0-9_-]{0,31}$/,
  must: 'a device name of lowercase letters, digits, _ and - starting with a letter',
  example: 'hda1 or vdb',
  xsdName: null,
  description: 'device name, e.g. hda1',
});

// No '/' and no leading '.', so a disk file can never name something outside the image ('..').
export const DISK_FILE: ValueRule<string> = patterned({
  pattern: /^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$/,
  must: 'a plain file name inside the appliance image (letters, digits, . _ -, no "/" and not starting with ".")',
  example: 'sys.img',
  xsdName: null,
  description: 'an image file inside the appliance',
});

const DISK_TYPES = ['system', 'swap', 'user'] as const;
export const DISK_TYPE: ValueRule<(typeof DISK_TYPES)[number]> = {
  xsdName: null,
  xsd: { base: 'xs:token', enumeration: DISK_TYPES },
  jsonDef: null,
  json: { enum: [...DISK_TYPES] },
  check(text, w) {
    const t = DISK_TYPES.find((d) => d === text);
    if (t) return ok(t);
    const guess = closest(text, DISK_TYPES);
    return no(`${w.subject} must be one of ${DISK_TYPES.join(', ')}${guess ? ` (did you mean ${guess}?)` : ''}; got ${quote(text)}`);
  },
  write: itself,
};

const unanchored = (re: RegExp): string => re.source.replace(/^\^/, '').replace(/\$$/, '');

/** `name[:version]`: an appliance depended on, any version or one exactly. */
export const DEPENDENCY: ValueRule<Dependency> = {
  xsdName: 'dependencyType',
  xsd: { base: 'xs:token', pattern: new RegExp(`^${unanchored(NAME_PATTERN)}(:${unanchored(VERSION_PATTERN)})?$`) },
  jsonDef: null,
  json: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'version'],
    properties: {
      name: { $ref: '#/$defs/name' },
      version: { anyOf: [{ $ref: '#/$defs/version' }, { type: 'null' }], description: 'null: any version' },
    },
  },
  check(text, w) {
    const colon = text.indexOf(':');
    const name = colon === -1 ? text : text.slice(0, colon);
    const version = colon === -1 ? null : text.slice(colon + 1);
    const nameOk = NAME_PATTERN.test(name);
    if (nameOk && (version === null || VERSION_PATTERN.test(version))) return ok({ name, version });
    const which = /\s/.test(text)
      ? "separate name and version with ':', not a space"
      : !nameOk
        ? `the name ${quote(name)} is not an appliance name (lowercase letters, digits, hyphens)`
        : `the version ${quote(version ?? '')} is not a version (letters, digits, . _ + ~ -)`;
    return no(`${w.subject} must be name[:version], e.g. emailserv:1.0.0-0 or firewall; ${which}; got ${quote(text)}`);
  },
  write: (d) => (d.version === null ? d.name : `${d.name}:${d.version}`),
};

/** Every value rule, so the XSD and the JSON Schema can declare the shared ones once. */
export const VALUE_RULES: readonly ValueRule<unknown>[] = [NAME, VERSION, DEPENDENCY, SHA256, HTTP_URL, WEBPANEL, OSTYPE, COUNT, TEXT, DISK_NAME, DISK_FILE, DISK_TYPE, FREE_TEXT];

// ---------------------------------------------------------------------------------------------
// Element rules.

/** 'one': exactly once; 'optional': at most once; 'many': zero or more. */
export type Occurs = 'one' | 'optional' | 'many';

/** Siblings that must differ: provides, disk names, the appliances depended on. */
export interface UniqueRule<T> {
  /** The attribute whose value must differ; absent: the element's own value. */
  readonly attribute?: string;
  /** The part of the value that must differ (a dependency's name); absent: all of it. XSD cannot say this. */
  key?(value: T): string;
  /** The problem, given the repeated key and " (first at line N)" (or ""). */
  say(key: string, first: string): string;
}

interface ElementCommon {
  readonly name: string;
  readonly occurs: Occurs;
  /** Where its value lands, relative to the parent's object; dots make nested objects ("image.url"). */
  readonly field: string;
  /** What it means: the JSON Schema's and the XSD's documentation. */
  readonly description: string;
  /** For an element that must be there: what to add. */
  readonly missing?: string;
  /** For a repeated element: at most this many (a bound on what one definition can make storm do). */
  readonly max?: number;
  /** What to do about too many, after "at most N are allowed; ". */
  readonly tooMany?: string;
}

/** An element holding text only. */
export interface TextElement<T> extends ElementCommon {
  readonly content: 'text';
  readonly value: ValueRule<T>;
  readonly wording: Wording;
  /** Said when it is blank: what to give, and an example. */
  readonly ifEmpty: { readonly what: string; readonly example: string };
  readonly unique?: UniqueRule<T>;
  /** A problem with the value given the rest of the appliance (a dependency on itself), or null. */
  refuse?(value: T, appliance: Readonly<Record<string, unknown>>): string | null;
}

export interface AttributeRule<T> {
  readonly name: string;
  readonly field: string;
  readonly value: ValueRule<T>;
  readonly wording: Wording;
  readonly description: string;
  /**
   * Said when the attribute is missing or blank. With `absent` also set, the attribute is
   * optional but may not be blank; without `ifEmpty`, a blank value is the value rule's to judge.
   */
  readonly ifEmpty?: string;
  /** The value when the attribute is left out; absent: the attribute is required. */
  readonly absent?: null | '';
}

/** Attributes checked together: all are looked up first, then their values judged. */
export interface AttributeGroup {
  readonly attributes: readonly AttributeRule<unknown>[];
  /** Exactly one of the attributes is given: what to say when both or neither are. */
  readonly exactlyOne?: { readonly both: string; readonly neither: string };
}

/** An empty element carrying attributes. */
export interface AttributesElement extends ElementCommon {
  readonly content: 'attributes';
  readonly groups: readonly AttributeGroup[];
  /** Descriptions of the nested objects its dotted fields make ("kernel.url" → kernel). */
  readonly objects?: Readonly<Record<string, string>>;
  readonly unique?: UniqueRule<Record<string, unknown>>;
  /** A problem with the value given its earlier siblings (a second system disk), or null. XSD cannot say this. */
  refuse?(value: Record<string, unknown>, earlier: readonly Record<string, unknown>[]): string | null;
}

/** An element holding other elements. */
export interface ElementsElement extends ElementCommon {
  readonly content: 'elements';
  readonly children: readonly ElementRule[];
  readonly objects?: Readonly<Record<string, string>>;
}

// Method syntax in TextElement and ValueRule keeps a TextElement<Dependency> assignable here.
export type ElementRule = TextElement<unknown> | AttributesElement | ElementsElement;

/** The root: its format version decides whether anything else is read. */
export interface RootElement {
  readonly name: string;
  readonly description: string;
  readonly formatVersion: { readonly attribute: string; readonly field: string; readonly value: string };
  /** Attributes allowed and ignored: pointing an editor at the XSD. */
  readonly tolerated: readonly string[];
  readonly children: readonly ElementRule[];
  readonly objects: Readonly<Record<string, string>>;
}

const text = <T>(rule: Omit<TextElement<T>, 'content'>): TextElement<unknown> => ({ content: 'text', ...rule }) as TextElement<unknown>;
const attribute = <T>(rule: AttributeRule<T>): AttributeRule<unknown> => rule as AttributeRule<unknown>;

const SIG_IF_EMPTY = 'give the URL of the detached signature, or leave the attribute out';

/** One half of <boot>: an image's URL, checksum and optional signature. */
function bootImage(part: 'kernel' | 'initrd', file: string): AttributeGroup {
  return {
    attributes: [
      attribute({
        name: part,
        field: `${part}.url`,
        value: HTTP_URL,
        wording: { subject: `the ${part} url`, example: `https://images.example/${file}` },
        description: `URL of the ${part}`,
        ifEmpty: `give the absolute http(s) URL of the ${part}, e.g. ${part}='https://images.example/vmlinuz'`,
      }),
      attribute({
        name: `${part}-sha256`,
        field: `${part}.sha256`,
        value: SHA256,
        wording: { subject: `${part}-sha256` },
        description: `SHA-256 of the ${part}`,
        ifEmpty: `give the SHA-256 of the ${part} (64 lowercase hex digits)`,
      }),
      attribute({
        name: `${part}-sig`,
        field: `${part}.sig`,
        value: HTTP_URL,
        wording: { subject: `${part}-sig`, example: `https://images.example/${part}.sig` },
        description: `URL of the ${part}'s detached signature`,
        ifEmpty: SIG_IF_EMPTY,
        absent: null,
      }),
    ],
  };
}

const HARDWARE: ElementsElement = {
  content: 'elements',
  name: 'hardware',
  occurs: 'one',
  field: 'hardware',
  description: 'what the appliance needs of its host',
  missing: 'add <hardware> with <cpus>, <memory> (KiB) and <ostype>, e.g. <hardware><cpus>1</cpus><memory>524288</memory><ostype>linux</ostype></hardware>',
  children: [
    text({
      name: 'cpus',
      occurs: 'one',
      field: 'cpus',
      value: COUNT,
      description: 'virtual CPUs',
      wording: { subject: 'cpus', must: 'a whole number of virtual CPUs, at least 1', example: '1' },
      ifEmpty: { what: 'give the number of virtual CPUs', example: '1' },
      missing: 'add the number of virtual CPUs, e.g. <cpus>1</cpus>',
    }),
    text({
      name: 'memory',
      occurs: 'one',
      field: 'memoryKib',
      value: COUNT,
      description: "KiB, the paper's unit (524288 = 512 MiB)",
      wording: { subject: 'memory', must: "a whole number of KiB (the paper's unit)", example: '524288 for 512 MiB', unit: 'KiB' },
      ifEmpty: { what: "give the memory in KiB (the paper's unit)", example: '524288' },
      missing: "add the memory in KiB (the paper's unit), e.g. <memory>524288</memory> for 512 MiB",
    }),
    text({
      name: 'ostype',
      occurs: 'one',
      field: 'ostype',
      value: OSTYPE,
      description: 'the guest OS type, e.g. linux',
      wording: { subject: 'ostype' },
      ifEmpty: { what: 'give the guest OS type', example: 'linux' },
      missing: 'add the guest OS type, e.g. <ostype>linux</ostype>',
    }),
    {
      content: 'attributes',
      name: 'disk',
      occurs: 'many',
      field: 'disks',
      description: 'a disk of the appliance: an image file inside it, or a new empty disk',
      max: MAX_DISKS,
      tooMany: 'an appliance with more disks than that is a mistake; remove the rest',
      groups: [
        {
          attributes: [
            attribute({
              name: 'name',
              field: 'name',
              value: DISK_NAME,
              wording: { subject: 'disk name' },
              description: 'device name, e.g. hda1',
              ifEmpty: "give the disk's device name, e.g. name='hda1'",
            }),
            attribute({
              name: 'type',
              field: 'type',
              value: DISK_TYPE,
              wording: { subject: 'disk type' },
              description: 'system, swap or user',
              ifEmpty: "give the disk's type: type='system', 'swap' or 'user'",
            }),
          ],
        },
        {
          exactlyOne: {
            both: 'a disk takes either file (an image file inside the appliance) or size (a new empty disk, in MiB), not both',
            neither: "a disk needs file='…' (an image file inside the appliance, e.g. file='sys.img') or size='…' (a new empty disk in MiB, e.g. size='128')",
          },
          attributes: [
            attribute({ name: 'file', field: 'file', value: DISK_FILE, wording: { subject: 'disk file' }, description: 'an image file inside the appliance', absent: null }),
            attribute({
              name: 'size',
              field: 'sizeMib',
              value: COUNT,
              wording: { subject: 'disk size', must: 'a whole number of MiB, at least 1', example: '128', unit: 'MiB' },
              description: 'a new empty disk, MiB',
              absent: null,
            }),
          ],
        },
      ],
      unique: { attribute: 'name', say: (key, first) => `duplicate disk name ${quote(key)}${first}; give each disk its own name` },
      // What each type becomes (the system disk the image, swap and user disks new volumes of
      // their size on every instance) decides which of file and size it takes.
      refuse(disk, earlier) {
        const name = quote(String(disk['name']));
        if (disk['type'] === 'system') {
          if (disk['file'] === null) return `disk ${name} is the system disk, which is the appliance's image: name its file (file='sys.img'), not a size`;
          if (earlier.some((d) => d['type'] === 'system')) return `disk ${name} is a second system disk; an appliance has one (its image): make this one a user disk with a size, or remove it`;
        } else if (disk['sizeMib'] === null) {
          return `disk ${name} is a ${String(disk['type'])} disk, a new empty volume on every instance: give its size in MiB (size='128'), not a file`;
        }
        return null;
      },
    },
  ],
};

export const APPLIANCE: RootElement = {
  name: 'appliance',
  description: "storm appliance definition: the STORM paper's Figure 2 as written, plus storm's optional name, sha256, base and boot",
  formatVersion: { attribute: 'version', field: 'formatVersion', value: DEFINITION_FORMAT_VERSION },
  tolerated: ['xmlns:xsi', 'xsi:noNamespaceSchemaLocation'],
  objects: { image: 'the appliance layer (a qcow2 overlay on the base): <url>, <sha256>, <sig>' },
  children: [
    text({
      name: 'name',
      occurs: 'optional',
      field: 'name',
      value: NAME,
      description: 'the id used in HCL; left out: derived from the folder the channel site finds the definition in, else from the label ("Simple Web Server" → simple-web-server)',
      wording: { subject: 'name' },
      ifEmpty: { what: "give the appliance's id as used in HCL, or leave <name> out to derive it", example: 'webserv' },
    }),
    text({
      name: 'label',
      occurs: 'one',
      field: 'label',
      value: TEXT,
      description: 'a short human title',
      wording: { subject: 'label' },
      ifEmpty: { what: 'give a short human title', example: 'Simple Web Server' },
      missing: 'add a short human title, e.g. <label>Simple Web Server</label>',
    }),
    text({
      name: 'description',
      occurs: 'one',
      field: 'description',
      value: TEXT,
      description: 'what the appliance does',
      wording: { subject: 'description' },
      ifEmpty: { what: 'say what the appliance does', example: 'A very simple and efficient test web server.' },
      missing: 'add a sentence or two on what the appliance does, e.g. <description>A very simple and efficient test web server.</description>',
    }),
    text({
      name: 'version',
      occurs: 'one',
      field: 'version',
      value: VERSION,
      description: "the appliance's version",
      wording: { subject: 'version' },
      ifEmpty: { what: "give the appliance's version", example: '1.0.0-0' },
      missing: "add the appliance's version, e.g. <version>1.0.0-0</version>",
      refuse: (v: string, appliance) =>
        RESERVED_VERSIONS.includes(v.toLowerCase())
          ? `version ${quote(v)} is reserved: the channel site publishes appliances/${typeof appliance['name'] === 'string' ? appliance['name'] : 'NAME'}/${v.toLowerCase()} itself, and a version folder of that name would collide with it; choose another, e.g. 1.0.0-0`
          : null,
    }),
    text({
      name: 'size',
      occurs: 'one',
      field: 'sizeMib',
      value: COUNT,
      description: "the appliance's disk in MiB",
      wording: { subject: 'size', must: "a whole number of MiB (the appliance's disk)", example: '1024 for 1 GiB', unit: 'MiB' },
      ifEmpty: { what: "give the appliance's disk size in MiB", example: '1024' },
      missing: "add the appliance's disk size in MiB, e.g. <size>1024</size>",
    }),
    text({
      name: 'url',
      occurs: 'one',
      field: 'image.url',
      value: HTTP_URL,
      description: "URL of the appliance's qcow2 image",
      wording: { subject: 'url', example: 'https://images.example/webserv-1.0.0-0.qcow2' },
      ifEmpty: { what: "give the URL of the appliance's image", example: 'https://images.example/webserv-1.0.0-0.qcow2' },
      missing: "add the absolute http(s) URL of the appliance's qcow2 image, e.g. <url>https://images.example/webserv-1.0.0-0.qcow2</url>",
    }),
    text({
      name: 'sha256',
      occurs: 'optional',
      field: 'image.sha256',
      value: SHA256,
      description: 'SHA-256 of the image at <url>; downloads that do not match are refused. Left out: the channel site computes it from the image file it publishes beside the definition',
      wording: { subject: 'sha256' },
      ifEmpty: { what: 'give the SHA-256 of the image (as printed by sha256sum), or leave <sha256> out for the site to compute', example: EXAMPLE_SHA256 },
    }),
    text({
      name: 'sig',
      occurs: 'optional',
      field: 'image.sig',
      value: HTTP_URL,
      description: "URL of the image's detached signature (storm's Ed25519 format)",
      wording: { subject: 'sig', example: 'https://images.example/webserv-1.0.0-0.qcow2.sig' },
      ifEmpty: { what: 'give the URL of the detached signature, or leave <sig> out', example: 'https://images.example/webserv-1.0.0-0.qcow2.sig' },
    }),
    {
      content: 'attributes',
      name: 'base',
      occurs: 'optional',
      field: 'base',
      description: 'the base-OS layer the appliance stands on; left out: a single-layer appliance, its image its own base',
      groups: [
        {
          attributes: [
            attribute({
              name: 'name',
              field: 'name',
              value: NAME,
              wording: { subject: 'the base name' },
              description: "the base layer's name, shared by every appliance on a host that names it",
              ifEmpty: "give the base layer's name, e.g. name='debian-12'",
            }),
            attribute({
              name: 'url',
              field: 'url',
              value: HTTP_URL,
              wording: { subject: 'the base url', example: 'https://images.example/debian-12.qcow2' },
              description: 'URL of the base image',
              ifEmpty: "give the absolute http(s) URL of the base image, e.g. url='https://images.example/debian-12.qcow2'",
            }),
            attribute({
              name: 'sha256',
              field: 'sha256',
              value: SHA256,
              wording: { subject: 'the base sha256' },
              description: 'SHA-256 of the base image',
              ifEmpty: 'give the SHA-256 of the base image (64 lowercase hex digits, as printed by sha256sum)',
            }),
            attribute({
              name: 'sig',
              field: 'sig',
              value: HTTP_URL,
              wording: { subject: 'the base sig', example: 'https://images.example/debian-12.qcow2.sig' },
              description: "URL of the base image's detached signature",
              ifEmpty: SIG_IF_EMPTY,
              absent: null,
            }),
          ],
        },
      ],
    },
    {
      content: 'attributes',
      name: 'boot',
      occurs: 'optional',
      field: 'boot',
      description: 'direct kernel boot; without it the appliance boots from its disk',
      objects: { kernel: 'the kernel image', initrd: 'the initial ramdisk' },
      groups: [
        bootImage('kernel', 'vmlinuz'),
        bootImage('initrd', 'initrd.img'),
        { attributes: [attribute({ name: 'cmdline', field: 'cmdline', value: FREE_TEXT, wording: { subject: 'cmdline' }, description: 'the kernel command line', absent: '' })] },
      ],
    },
    text({
      name: 'provides',
      occurs: 'many',
      field: 'provides',
      value: NAME,
      description: 'a service the appliance provides',
      wording: { subject: 'provides' },
      ifEmpty: { what: 'name the service this appliance provides', example: 'webserv' },
      max: MAX_PROVIDES,
      tooMany: 'list the services users look for',
      unique: { say: (key, first) => `duplicate <provides>${key}</provides>${first}; list each service once` },
    }),
    text({
      name: 'webpanel',
      occurs: 'optional',
      field: 'webpanel',
      value: WEBPANEL,
      description: "the path of the appliance's web panel",
      wording: { subject: 'webpanel' },
      ifEmpty: { what: "give the path of the appliance's web panel, or leave <webpanel> out", example: '/upload.php' },
    }),
    HARDWARE,
    text<Dependency>({
      name: 'dependency',
      occurs: 'many',
      field: 'dependencies',
      value: DEPENDENCY,
      description: 'another appliance this one needs, as name[:version]; each name at most once, never the appliance itself',
      wording: { subject: 'dependency' },
      ifEmpty: { what: 'name the appliance depended on as name[:version]', example: 'emailserv:1.0.0-0' },
      max: MAX_DEPENDENCIES,
      tooMany: 'depend on fewer appliances (one that gathers the others, say)',
      unique: { key: (d) => d.name, say: (key, first) => `duplicate dependency on ${key}${first}; list each appliance once` },
      refuse: (d, appliance) =>
        d.name === appliance['name'] ? `an appliance cannot depend on itself; remove <dependency>${DEPENDENCY.write(d)}</dependency>` : null,
    }),
  ],
};
