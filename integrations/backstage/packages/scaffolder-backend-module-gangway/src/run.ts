/**
 * What `gangway:run` (and each generated `gangway:<id>`) does in a step:
 * submit as the task's user, follow, set the outputs, fail with Gangway's
 * reason. docs/integrations/backstage.md describes it for template authors.
 */
import { createHash } from 'node:crypto';
import { AuthService, BackstageCredentials } from '@backstage/backend-plugin-api';
import { GangwayClient, GangwayError, Resource, Run, RunRequest } from '@gangway/backstage-common';
import { JsonObject, JsonValue } from '@backstage/types';
import { GangwayScaffolderConfig } from './config';
import { callerFor } from './credentials';
import { describeApproval, describeFailure, followRun, StepLogger } from './follow';

export interface GangwayStepInput {
  action: string;
  inputs?: Record<string, unknown>;
  ttlSeconds?: number;
  idempotencyKey?: string;
  wait?: boolean;
  justification?: string;
}

/** The part of the scaffolder's ActionContext used here. */
export interface GangwayStepContext {
  logger: StepLogger;
  output(name: string, value: JsonValue): void;
  getInitiatorCredentials(): Promise<BackstageCredentials>;
  task: { id: string };
  step?: { id?: string; name?: string };
  isDryRun?: boolean;
  signal?: AbortSignal;
  each?: unknown;
  user?: { ref?: string; entity?: { spec?: { memberOf?: unknown } } };
}

export interface GangwayStepDeps {
  client: GangwayClient;
  auth: AuthService;
  config: GangwayScaffolderConfig;
}

/**
 * The default Idempotency-Key: the task and the step. A task the scaffolder
 * recovers (scaffolder.taskRecovery) runs its step again with the same task
 * id, so Gangway answers with the run it already has instead of a second
 * one. Printable ASCII only, at most 255 characters (Gangway's rule).
 */
export function defaultIdempotencyKey(taskId: string, stepId: string | undefined, each?: unknown): string {
  /* A step with `each:` runs once per item under one step id: the item
   * tells the runs apart (and stays the same when the task is recovered). */
  const item =
    each === undefined ? '' : `:${createHash('sha256').update(JSON.stringify(each)).digest('hex').slice(0, 16)}`;
  const key = `backstage:${taskId}:${stepId ?? 'gangway'}${item}`;
  return key.replace(/[^ -~]/g, '_').slice(0, 255);
}

function requestOf(input: GangwayStepInput): RunRequest {
  const req: RunRequest = { inputs: input.inputs ?? {} };
  if (input.ttlSeconds !== undefined) req.ttl_seconds = input.ttlSeconds;
  /* A template renders an empty parameter as "": no justification, rather
   * than Gangway's 422 for a blank one. */
  if (input.justification?.trim()) req.justification = input.justification;
  return req;
}

const json = (v: unknown): JsonValue => JSON.parse(JSON.stringify(v ?? null)) as JsonValue;

export async function runGangwayStep(
  ctx: GangwayStepContext,
  deps: GangwayStepDeps,
  input: GangwayStepInput,
): Promise<void> {
  const { client, config } = deps;
  const caller = await callerFor(config, deps.auth, () => ctx.getInitiatorCredentials(), ctx.user);
  const req = requestOf(input);

  if (ctx.isDryRun) {
    /* Gangway has no plan-only run mode: a dry run checks the request the
     * way a submit would (POST /v1/actions/{id}/validate) and runs nothing. */
    let v;
    try {
      v = await client.validateRun(await caller.token(), input.action, req);
    } catch (e) {
      throw new Error(e instanceof Error ? e.message : String(e));
    }
    const approval = v.approval
      ? `it would wait for ${describeApproval({
          remaining: v.approval.approvals,
          from_teams: v.approval.from_teams,
          from_roles: v.approval.from_roles,
        })}`
      : 'it needs no approval';
    ctx.logger.info(
      `Dry run: Gangway accepts action ${v.action} (version ${v.version.slice(0, 12)}) from ${caller.describe}; ${approval}. Nothing was submitted.`,
    );
    ctx.output('runId', '');
    ctx.output('status', 'validated');
    ctx.output('outputs', {});
    ctx.output('inputs', json(v.inputs));
    ctx.output('url', `${client.baseUrl}/v1/actions/${encodeURIComponent(v.action)}`);
    return;
  }

  if (ctx.signal?.aborted) throw new Error('Task cancelled before the Gangway run was submitted');
  const key = input.idempotencyKey ?? defaultIdempotencyKey(ctx.task.id, ctx.step?.id, ctx.each);
  let run: Run;
  let replayed: boolean;
  try {
    ({ run, replayed } = await client.submitRun(await caller.token(), input.action, req, key));
  } catch (e) {
    if (e instanceof GangwayError && e.problem?.code === 'idempotency_key_reused') {
      throw new Error(
        `${e.message}. The Idempotency-Key '${key}' was used for a different request; ` +
          'give each gangway step its own idempotencyKey (or its own step id).',
      );
    }
    throw new Error(e instanceof Error ? e.message : String(e));
  }
  const url = client.runUrl(run.id, config.consoleUrl);
  ctx.output('runId', run.id);
  ctx.output('url', url);
  ctx.logger.info(
    replayed
      ? `Gangway run ${run.id} of ${input.action} was already submitted for this task (Idempotency-Key ${key}); following it: ${url}`
      : `Submitted Gangway run ${run.id} of ${input.action} as ${run.requested_by?.subject ?? caller.describe}: ${url}`,
  );
  for (const w of run.warnings ?? []) ctx.logger.warn(`Gangway: ${w.code}: ${w.message}`);

  if (input.wait === false) {
    ctx.output('status', run.status);
    ctx.output('outputs', json(run.outputs ?? {}));
    return;
  }

  const final = await followRun({
    client,
    token: caller.token,
    runId: run.id,
    logger: ctx.logger,
    signal: ctx.signal,
    cancelReason: `Backstage task ${ctx.task.id} was cancelled`,
    runUrl: url,
    pollIntervalMs: config.pollIntervalMs,
    runTimeoutMs: config.runTimeoutMs,
  });
  ctx.output('status', final.status);
  ctx.output('outputs', json(final.outputs ?? {}));
  if (final.status !== 'succeeded') throw new Error(`${describeFailure(final)} (${url})`);
  if (final.resource) {
    let resource: Resource | { id: string } = { id: final.resource };
    try {
      resource = await client.getResource(await caller.token(), final.resource);
    } catch (e) {
      ctx.logger.warn(`Could not read resource ${final.resource}: ${String(e)}`);
    }
    ctx.output('resource', json(resource) as JsonObject);
  }
  ctx.logger.info(`Gangway run ${final.id} succeeded`);
}
