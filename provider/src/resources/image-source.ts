// The `url` + `sha256` pair every image block has (base, appliance, deployment layers).
import { imageUrlValidator, sha256Validator } from '../schema/validators.ts';

export function imageSourceAttributes(what: string) {
  return {
    url: { type: 'string', mode: 'required', forceNew: true, validators: [imageUrlValidator], description: `Where the ${what} image is: an http(s) URL, a file:/// URL or an absolute path.` },
    sha256: { type: 'string', mode: 'required', forceNew: true, validators: [sha256Validator], description: `SHA-256 of the ${what} image; storm refuses an image that does not match.` },
  } as const;
}
