import type { Validator } from './model.ts';

export function oneOf(...allowed: string[]): Validator {
  return (v) => (allowed.includes(String(v)) ? undefined : `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, not "${v}".`);
}

export function matches(pattern: RegExp, what: string): Validator {
  return (v) => (pattern.test(String(v)) ? undefined : `"${v}" is not ${what}.`);
}

export function between(min: number, max: number): Validator {
  return (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
      ? undefined
      : `must be a whole number from ${min} to ${max}, not ${v}.`;
}

export function absolutePath(): Validator {
  return (v) => {
    const s = String(v);
    if (!s.startsWith('/')) return `"${s}" is not an absolute path; write it from the root, e.g. "/var/lib/libvirt/storm".`;
    if (s.split('/').includes('..')) return `"${s}" contains "..": name the directory directly.`;
    return undefined;
  };
}

/** A resource name that is also safe inside libvirt object names and file names. */
export const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const nameValidator: Validator = matches(
  NAME_PATTERN,
  'a valid name: use 1–63 lowercase letters, digits and "-", starting and ending with a letter or digit (e.g. "blade-1")',
);

export const sha256Validator: Validator = matches(/^[0-9a-f]{64}$/, "a sha256: write the 64 lowercase hex digits of the image's SHA-256 (sha256sum prints it)");
export const imageUrlValidator: Validator = matches(/^(https?:\/\/\S+|file:\/\/\/\S+|\/\S+)$/, 'an image source: use an http(s):// URL, a file:/// URL or an absolute path');
export const fileModeValidator: Validator = matches(/^0?[0-7]{3}$/, 'an octal mode like "0644"');
