import type { RJSFSchema, ValidatorType } from '@rjsf/utils';
import { customizeValidator } from '@rjsf/validator-ajv8';

// rjsf's AJV validator compiles each schema to a function with `new Function`.
// The broker serves the console with a Content-Security-Policy without
// 'unsafe-eval' (docs/console.md), so in the browser that compile is refused.
// Then the form is checked by the broker alone: its 422 errors are put on the
// right field through `extraErrors` (see Request.tsx). Where eval is allowed
// (tests, `npm run dev`) the same AJV validator checks as you type.
function evalAllowed(): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    return new Function('return 1')() === 1;
  } catch {
    return false;
  }
}

const ajv = customizeValidator();

const serverOnly: ValidatorType = {
  validateFormData: () => ({ errors: [], errorSchema: {} }),
  toErrorList: () => [],
  isValid: (schema: RJSFSchema, formData: unknown) => {
    // Used by rjsf to pick a oneOf/anyOf branch: compare consts/enums only.
    if (!schema || typeof schema !== 'object') return true;
    if ('const' in schema) return JSON.stringify(schema.const) === JSON.stringify(formData);
    if (Array.isArray(schema.enum)) return schema.enum.some((v: unknown) => JSON.stringify(v) === JSON.stringify(formData));
    return true;
  },
  rawValidation: () => ({ errors: [], validationError: undefined }),
  reset: () => {},
} as unknown as ValidatorType;

export const clientValidates = evalAllowed();
const validator: ValidatorType = clientValidates ? ajv : serverOnly;
export default validator;

/** The action's schema as rjsf takes it: AJV (draft-07) does not know the
 *  2020-12 meta-schema URI, and the broker validates with its own validator
 *  anyway, so `$schema`/`$id` are dropped. */
export function formSchema(inputs: Record<string, unknown>): RJSFSchema {
  const { $schema: _s, $id: _i, ...rest } = inputs;
  void _s;
  void _i;
  return rest as RJSFSchema;
}
