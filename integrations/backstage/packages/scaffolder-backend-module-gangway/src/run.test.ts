import { mockCredentials, mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { scaffolderActionsExtensionPoint, TemplateAction } from '@backstage/plugin-scaffolder-node';
import { ConfigReader } from '@backstage/config';
import { JsonObject } from '@backstage/types';
import { GangwayClient } from '@gangway/backstage-common';
import { FakeGangway, problem, reply, sse, sseHead } from '../../common/src/testing';
import { createGangwayRunAction } from './actions';
import { readGangwayConfig } from './config';
import { defaultIdempotencyKey } from './run';
import gangwayModule from './index';

type Ctx = Parameters<ReturnType<typeof createGangwayRunAction>['handler']>[0];
const RUN = '11111111-2222-4333-8444-555555555555';

function run(status: string, extra: object = {}) {
  return {
    id: RUN,
    action: { id: 'hello' },
    status,
    attempt: 1,
    inputs: {},
    requested_by: { subject: 'user:default/mock' },
    created_at: '2026-12-06T08:00:00Z',
    ...extra,
  };
}

describe('gangway:run', () => {
  let gw: FakeGangway;
  let statuses: string[];
  let runExtra: object;
  const auth = mockServices.auth();

  function action(over: Record<string, unknown> = {}) {
    const config = readGangwayConfig(
      new ConfigReader({ gangway: { baseUrl: gw.url, timeouts: { pollSeconds: 0.05 }, ...over } }),
    );
    return createGangwayRunAction({ client: new GangwayClient({ baseUrl: gw.url }), auth, config });
  }

  /* createMockActionContext takes input, task, logger...; step, signal,
   * isDryRun and the credentials are set on what it returns. */
  function context(input: Record<string, unknown>, over: object = {}) {
    const ctx = createMockActionContext({ input: input as JsonObject, task: { id: 'task-1' } });
    return Object.assign(ctx, { step: { id: 'deploy' } }, over) as unknown as Ctx;
  }

  beforeEach(async () => {
    statuses = ['queued', 'running', 'succeeded'];
    runExtra = { outputs: { url: 'https://alpha.dev' } };
    gw = await new FakeGangway().start();
    gw.on('POST', /^\/v1\/actions\/hello\/runs$/, (_req, res) =>
      reply(res, 202, run('accepted'), { Location: `/v1/runs/${RUN}` }),
    );
    gw.on('GET', new RegExp(`^/v1/runs/${RUN}$`), (_req, res) => {
      const s = statuses.length > 1 ? statuses.shift()! : statuses[0];
      reply(res, 200, run(s, runExtra));
    });
    gw.on('GET', new RegExp(`^/v1/runs/${RUN}/logs\\?follow=true$`), (_req, res) => {
      sseHead(res);
      sse(res, 'end', { status: statuses[statuses.length - 1] });
      res.end();
    });
  });

  afterEach(() => gw.close());

  it('is registered by the module on the scaffolder extension point', async () => {
    const added: TemplateAction[] = [];
    const backend = await startTestBackend({
      extensionPoints: [[scaffolderActionsExtensionPoint, { addActions: (...a: TemplateAction[]) => added.push(...a) }]],
      features: [gangwayModule, mockServices.rootConfig.factory({ data: { gangway: { baseUrl: gw.url } } })],
    });
    expect(added.map(a => a.id)).toEqual(['gangway:run']);
    expect(added[0].supportsDryRun).toBe(true);
    await backend.stop();
  });

  it('registers gangway:<id> per Gangway action with its input schema when asked to', async () => {
    const schema = { type: 'object', required: ['name'], properties: { name: { type: 'string' } } };
    gw.on('GET', /^\/v1\/actions$/, (_req, res) =>
      reply(res, 200, { items: [{ id: 'hello', version: 'v', title: 'Hello', worker_type: 'exec' }] }),
    );
    gw.on('GET', /^\/v1\/actions\/hello$/, (_req, res) =>
      reply(res, 200, { id: 'hello', version: 'v', title: 'Hello', worker_type: 'exec', inputs: schema }),
    );
    const added: TemplateAction[] = [];
    const backend = await startTestBackend({
      extensionPoints: [[scaffolderActionsExtensionPoint, { addActions: (...a: TemplateAction[]) => added.push(...a) }]],
      features: [
        gangwayModule,
        mockServices.rootConfig.factory({
          data: { gangway: { baseUrl: gw.url, token: 'gwt_lister', generateActions: true } },
        }),
      ],
    });
    expect(added.map(a => a.id)).toEqual(['gangway:run', 'gangway:hello']);
    expect((added[1].schema?.input as { properties: { inputs: unknown } }).properties.inputs).toEqual(schema);
    expect(gw.calls('GET', /^\/v1\/actions$/)[0].headers.authorization).toBe('Bearer gwt_lister');
    await backend.stop();

    /* The generated action submits that action with the step's inputs. */
    const ctx = context({ inputs: { name: 'ana' } });
    await added[1].handler(ctx as never);
    expect(JSON.parse(gw.calls('POST', /\/v1\/actions\/hello\/runs$/)[0].body)).toEqual({ inputs: { name: 'ana' } });
  });

  it("submits with a plugin token on behalf of the task's user, keyed by the task", async () => {
    const ctx = context({ action: 'hello', inputs: { message: 'hi' }, ttlSeconds: 60 });
    await action().handler(ctx);
    const [submit] = gw.calls('POST', /\/runs$/);
    expect(submit.headers.authorization).toBe(
      `Bearer ${mockCredentials.service.token({ onBehalfOf: mockCredentials.user(), targetPluginId: 'gangway' })}`,
    );
    expect(submit.headers['idempotency-key']).toBe('backstage:task-1:deploy');
    expect(JSON.parse(submit.body)).toEqual({ inputs: { message: 'hi' }, ttl_seconds: 60 });
    expect(ctx.output).toHaveBeenCalledWith('runId', RUN);
    expect(ctx.output).toHaveBeenCalledWith('status', 'succeeded');
    expect(ctx.output).toHaveBeenCalledWith('outputs', { url: 'https://alpha.dev' });
    expect(ctx.output).toHaveBeenCalledWith('url', `${gw.url}/ui/runs/${RUN}`);
  });

  it('uses the configured service token only when credentials is service', async () => {
    await action({ credentials: 'service', token: 'gwt_service' }).handler(context({ action: 'hello' }));
    expect(gw.calls('POST', /\/runs$/)[0].headers.authorization).toBe('Bearer gwt_service');
    expect(() => readGangwayConfig(new ConfigReader({ gangway: { baseUrl: gw.url, credentials: 'service' } }))).toThrow(
      /gangway.token is not set/,
    );
  });

  it('sends the user as Gangway-On-Behalf-Of with a service token when onBehalfOf is set', async () => {
    const ctx = context(
      { action: 'hello' },
      { user: { ref: 'user:default/mock', entity: { spec: { memberOf: ['group:default/payments', 'group:ops/sre'] } } } },
    );
    await action({ credentials: 'service', token: 'gwt_bridge', onBehalfOf: true }).handler(ctx);
    const [submit] = gw.calls('POST', /\/runs$/);
    expect(submit.headers.authorization).toBe('Bearer gwt_bridge');
    expect(submit.headers['gangway-on-behalf-of']).toBe('user:default/mock');
    expect(submit.headers['gangway-on-behalf-of-teams']).toBe('payments,ops/sre');
    /* Every later call (status, logs) carries it too. */
    expect(gw.calls('GET', /\/v1\/runs\//).every(r => r.headers['gangway-on-behalf-of'] === 'user:default/mock')).toBe(true);
    expect(() =>
      readGangwayConfig(new ConfigReader({ gangway: { baseUrl: gw.url, onBehalfOf: true } })),
    ).toThrow(/onBehalfOf applies to credentials 'service' only/);
  });

  it('refuses a task not started by a user instead of submitting as someone else', async () => {
    const ctx = context({ action: 'hello' }, { getInitiatorCredentials: async () => mockCredentials.service() });
    await expect(action().handler(ctx)).rejects.toThrow(/not started by a user/);
    expect(gw.calls('POST', /\/runs$/)).toHaveLength(0);
  });

  it("fails with Gangway's problem detail when the submit is refused", async () => {
    gw.on('POST', /^\/v1\/actions\/hello\/runs$/, (_req, res) =>
      problem(res, 422, 'validation_failed', "the inputs do not match the input schema of action 'hello'", {
        errors: [{ pointer: '/inputs/message', message: 'must be at most 10 characters' }],
      }),
    );
    await expect(action().handler(context({ action: 'hello', inputs: { message: 'x'.repeat(20) } }))).rejects.toThrow(
      /422 validation_failed: the inputs do not match.*\/inputs\/message: must be at most 10 characters/,
    );
  });

  it("fails the step with the run's error when the run fails", async () => {
    statuses = ['running', 'failed'];
    runExtra = { reason: 'exit_code', error: { code: 'exit_code', message: 'exit status 3' } };
    const ctx = context({ action: 'hello' });
    await expect(action().handler(ctx)).rejects.toThrow(/ended failed: exit_code: exit status 3/);
    expect(ctx.output).toHaveBeenCalledWith('status', 'failed');
  });

  it('streams log lines into the step log and resumes with Last-Event-ID after a drop', async () => {
    let connections = 0;
    let resumedAfter: string | string[] | undefined;
    statuses = ['running', 'running', 'running', 'running', 'running', 'running', 'succeeded'];
    gw.on('GET', new RegExp(`^/v1/runs/${RUN}/logs\\?follow=true$`), (req, res) => {
      connections++;
      sseHead(res);
      if (connections === 1) {
        sse(res, 'log', { line: 'one', stream: 'stdout' }, 1);
        sse(res, 'log', { line: 'two', stream: 'stderr' }, 2);
        setTimeout(() => res.socket?.destroy(), 50); /* the connection drops */
        return;
      }
      resumedAfter = req.headers['last-event-id'];
      sse(res, 'log', { line: 'three', stream: 'stdout' }, 3);
      sse(res, 'end', { status: 'succeeded' });
      res.end();
    });
    const ctx = context({ action: 'hello' });
    const info = jest.spyOn(ctx.logger, 'info');
    const warn = jest.spyOn(ctx.logger, 'warn');
    await action().handler(ctx);
    expect(connections).toBe(2);
    expect(resumedAfter).toBe('2');
    const lines = info.mock.calls.map(c => c[0]);
    expect(lines).toEqual(expect.arrayContaining(['one', 'three']));
    expect(warn.mock.calls.map(c => c[0])).toContain('two');
    expect(lines.indexOf('one')).toBeLessThan(lines.indexOf('three'));
  });

  it('waits for an approval, naming who must approve, then goes on', async () => {
    const approval = { required: 1, remaining: 1, from_teams: ['sre'], expires_at: '2026-12-06T09:00:00Z' };
    statuses = ['pending_approval', 'pending_approval', 'queued', 'succeeded'];
    runExtra = { approval };
    const ctx = context({ action: 'hello' });
    const info = jest.spyOn(ctx.logger, 'info');
    await action().handler(ctx);
    const said = info.mock.calls.map(c => String(c[0])).filter(l => l.includes('waiting for'));
    expect(said).toEqual([
      `Gangway run ${RUN} is waiting for 1 more approval from team sre, by 2026-12-06T09:00:00Z: ${gw.url}/ui/runs/${RUN}`,
    ]);
  });

  it('fails with the rejection and its reason', async () => {
    statuses = ['pending_approval', 'rejected'];
    runExtra = {
      approval: { required: 1, remaining: 1, decisions: [{ approver: 'bob', decision: 'reject', comment: 'not today' }] },
    };
    await expect(action().handler(context({ action: 'hello' }))).rejects.toThrow(/rejected by bob: not today/);
  });

  it('fails when the approval expires, saying what was still missing', async () => {
    statuses = ['pending_approval', 'expired'];
    runExtra = { approval: { required: 2, remaining: 1, from_roles: ['dba'], expires_at: '2026-12-06T09:00:00Z' } };
    await expect(action().handler(context({ action: 'hello' }))).rejects.toThrow(
      /ended expired: the approval expired at 2026-12-06T09:00:00Z still waiting for 1 more approval from role dba/,
    );
  });

  it('cancels the run when the task is cancelled', async () => {
    statuses = ['running'];
    const cancelled = new Promise<void>(resolve =>
      gw.on('POST', new RegExp(`^/v1/runs/${RUN}/cancel$`), (_req, res) => {
        reply(res, 202, run('running'));
        resolve();
      }),
    );
    const abort = new AbortController();
    const ctx = context({ action: 'hello' }, { signal: abort.signal });
    const done = action().handler(ctx);
    setTimeout(() => abort.abort(), 200);
    await expect(done).rejects.toThrow(/Task cancelled/);
    await cancelled;
    expect(JSON.parse(gw.calls('POST', /\/cancel$/)[0].body).reason).toBe('Backstage task task-1 was cancelled');
  });

  it('validates without submitting in a dry run', async () => {
    gw.on('POST', /^\/v1\/actions\/hello\/validate$/, (_req, res) =>
      reply(res, 200, {
        valid: true,
        action: 'hello',
        version: 'abcdef0123456789',
        inputs: { message: 'hi' },
        approval: { approvals: 2, from_teams: ['sre'] },
      }),
    );
    const ctx = context({ action: 'hello', inputs: {} }, { isDryRun: true });
    const info = jest.spyOn(ctx.logger, 'info');
    await action().handler(ctx);
    expect(gw.calls('POST', /\/runs$/)).toHaveLength(0);
    expect(gw.calls('POST', /\/validate$/)).toHaveLength(1);
    expect(ctx.output).toHaveBeenCalledWith('status', 'validated');
    expect(String(info.mock.calls[0][0])).toMatch(/would wait for 2 more approvals from team sre/);
  });

  it('keys each item of an each: loop apart, the same way every time', () => {
    const a = defaultIdempotencyKey('t', 's', { key: 0, value: 'x' });
    expect(a).toMatch(/^backstage:t:s:[0-9a-f]{16}$/);
    expect(defaultIdempotencyKey('t', 's', { key: 0, value: 'x' })).toBe(a);
    expect(defaultIdempotencyKey('t', 's', { key: 1, value: 'y' })).not.toBe(a);
    expect(defaultIdempotencyKey('t', 'é')).toBe('backstage:t:_');
  });

  it('does not wait with wait: false', async () => {
    const ctx = context({ action: 'hello', wait: false });
    await action().handler(ctx);
    expect(ctx.output).toHaveBeenCalledWith('status', 'accepted');
    expect(gw.calls('GET', /\/runs\//)).toHaveLength(0);
  });
});
