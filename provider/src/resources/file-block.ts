// The `file` block deployments and instances share: a template written into the instance.
import type { NestedBlockSpec } from '../schema/model.ts';
import { absolutePath, fileModeValidator } from '../schema/validators.ts';

export function fileBlock(description: string, forceNew = false): NestedBlockSpec {
  return {
    nesting: 'list',
    forceNew,
    description,
    block: {
      attributes: {
        path: { type: 'string', mode: 'required', validators: [absolutePath()], description: 'Absolute path in the instance.' },
        content: { type: 'string', mode: 'required', description: 'Template text; `${name}` is an instance variable.' },
        permissions: { type: 'string', mode: 'optional', default: '0644', validators: [fileModeValidator], description: 'File mode.' },
      },
    },
  };
}
