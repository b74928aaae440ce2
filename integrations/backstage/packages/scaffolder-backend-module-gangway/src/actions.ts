import { createTemplateAction, TemplateAction } from '@backstage/plugin-scaffolder-node';
import { ActionSummary, Action } from '@gangway/backstage-common';
import { JsonObject } from '@backstage/types';
import { GangwayStepContext, GangwayStepDeps, GangwayStepInput, runGangwayStep } from './run';

const OUTPUT_DOCS = {
  runId: 'The Gangway run id (empty in a dry run)',
  status: "The run's final status (succeeded), or its status at submit when wait is false",
  outputs: 'What the run reported (outputs of the action)',
  resource: 'The resource the run created or updated (id, kind, name, owner, expires_at, outputs...), when any',
  url: "The run's page in Gangway's console",
};

/** `gangway:run`: any Gangway action by id. */
export function createGangwayRunAction(deps: GangwayStepDeps) {
  return createTemplateAction({
    id: 'gangway:run',
    description:
      'Runs a Gangway action as the user who started the task: submits it, streams its log, waits for approvals and for the end; fails with Gangway\'s reason.',
    supportsDryRun: true,
    examples: [
      {
        description: 'A dev environment for five days',
        example: [
          'steps:',
          '  - id: devenv',
          '    name: Dev environment',
          '    action: gangway:run',
          '    input:',
          '      action: devenv',
          '      inputs: { name: ${{ parameters.name }} }',
          '      ttlSeconds: 432000',
        ].join('\n'),
      },
    ],
    schema: {
      input: {
        action: z => z.string().min(1).describe('The Gangway action id (GET /v1/actions)'),
        inputs: z =>
          z.record(z.unknown()).optional().describe("The action's inputs, checked against its input schema"),
        ttlSeconds: z =>
          z.number().int().positive().optional().describe('For actions with a TTL: the resource lifetime in seconds'),
        idempotencyKey: z =>
          z
            .string()
            .min(1)
            .max(255)
            .regex(/^[ -~]+$/)
            .optional()
            .describe('Default: backstage:<task id>:<step id>, so a recovered task does not submit twice'),
        wait: z =>
          z.boolean().optional().describe('Wait for the run to end (default true); false: submit and go on'),
        justification: z =>
          z.string().max(1000).optional().describe('Why: shown to approvers and kept in the audit log (blank: none)'),
      },
      output: {
        runId: z => z.string().describe(OUTPUT_DOCS.runId),
        status: z => z.string().describe(OUTPUT_DOCS.status),
        outputs: z => z.record(z.unknown()).describe(OUTPUT_DOCS.outputs),
        resource: z => z.record(z.unknown()).optional().describe(OUTPUT_DOCS.resource),
        url: z => z.string().describe(OUTPUT_DOCS.url),
      },
    },
    async handler(ctx) {
      await runGangwayStep(ctx as unknown as GangwayStepContext, deps, ctx.input as GangwayStepInput);
    },
  });
}

/**
 * `gangway:<id>` for one Gangway action: the step's `inputs` carry the
 * action's own input schema, so the template editor shows its fields and
 * the scaffolder checks them before the step runs.
 */
export function createGangwayActionFor(deps: GangwayStepDeps, action: Action | ActionSummary): TemplateAction {
  const inputs = 'inputs' in action ? (action.inputs as JsonObject) : { type: 'object' };
  const input = {
    type: 'object',
    required: ['inputs'],
    properties: {
      inputs: inputs,
      ttlSeconds: { type: 'integer', minimum: 1, description: 'For actions with a TTL: lifetime in seconds' },
      idempotencyKey: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[ -~]+$' },
      wait: { type: 'boolean', description: 'Wait for the run to end (default true)' },
      justification: { type: 'string', maxLength: 1000 },
    },
    additionalProperties: false,
  };
  const output = {
    type: 'object',
    properties: Object.fromEntries(
      Object.entries(OUTPUT_DOCS).map(([k, d]) => [
        k,
        { type: k === 'outputs' || k === 'resource' ? 'object' : 'string', description: d },
      ]),
    ),
  };
  return {
    id: `gangway:${action.id}`,
    description: `${action.title}${action.description ? `: ${action.description}` : ''} (Gangway action ${action.id}, run as the user who started the task)`,
    supportsDryRun: true,
    schema: { input: input as never, output: output as never },
    async handler(ctx) {
      const i = ctx.input as Omit<GangwayStepInput, 'action'>;
      await runGangwayStep(ctx as unknown as GangwayStepContext, deps, { ...i, action: action.id });
    },
  };
}
