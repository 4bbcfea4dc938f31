// The `file` block deployments and instances share: a template written into the instance.
import { absolutePath, fileModeValidator } from '../schema/validators.ts';

const block = {
  attributes: {
    path: { type: 'string', mode: 'required', validators: [absolutePath()], description: 'Absolute path in the instance.' },
    content: { type: 'string', mode: 'required', description: 'Template text; `${name}` is an instance variable.' },
    permissions: { type: 'string', mode: 'optional', default: '0644', validators: [fileModeValidator], description: 'File mode.' },
  },
} as const;

export function fileBlock<const F extends boolean = false>(description: string, forceNew?: F) {
  return { nesting: 'list', forceNew: (forceNew ?? false) as F, description, block } as const;
}

