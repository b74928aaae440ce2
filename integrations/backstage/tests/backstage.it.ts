/**
 * The modules against a real Gangway stack, started by
 * tests/integration/test_backstage.py (which sets GANGWAY_IT and the rest of
 * the environment; without it this suite skips).
 *
 * Backstage's own auth service needs a whole backend with a database to
 * mint plugin tokens; `BackstageStyleAuth` below mints the same tokens
 * (ES256; a `vnd.backstage.plugin` token with sub = scaffolder, aud =
 * gangway and the user's `vnd.backstage.limited-user` token in `obo`) with
 * keys whose JWKS the broker was configured with, so Gangway's verification
 * of them is the real one.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { mockCredentials, mockServices } from '@backstage/backend-test-utils';
import { AuthService, BackstageCredentials, BackstagePrincipalTypes } from '@backstage/backend-plugin-api';
import { EntityProviderMutation } from '@backstage/plugin-catalog-node';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { ConfigReader } from '@backstage/config';
import { JsonObject } from '@backstage/types';
import { GangwayClient, Run } from '@gangway/backstage-common';
import { createGangwayRunAction, readGangwayConfig } from '../packages/scaffolder-backend-module-gangway/src';
import { GangwayEntityProvider } from '../packages/catalog-backend-module-gangway/src';

const env = process.env;
const it_ = env.GANGWAY_IT ? it : it.skip;
jest.setTimeout(120_000);

const b64 = (v: string | Buffer) => Buffer.from(v).toString('base64url');

function sign(pem: string /* a PEM file */, kid: string, typ: string, claims: object): string {
  const input = `${b64(JSON.stringify({ alg: 'ES256', typ, kid }))}.${b64(JSON.stringify(claims))}`;
  const sig = crypto.sign('sha256', Buffer.from(input), {
    key: crypto.createPrivateKey(fs.readFileSync(pem)),
    dsaEncoding: 'ieee-p1363',
  });
  return `${input}.${b64(sig)}`;
}

class BackstageStyleAuth {
  readonly minted: Array<{ sub: string; aud: string; obo: string }> = [];
  private readonly mock = mockServices.auth();

  isPrincipal<T extends keyof BackstagePrincipalTypes>(
    c: BackstageCredentials,
    type: T,
  ): c is BackstageCredentials<BackstagePrincipalTypes[T]> {
    return this.mock.isPrincipal(c, type);
  }

  async getPluginRequestToken(o: { onBehalfOf: BackstageCredentials; targetPluginId: string }) {
    if (!this.isPrincipal(o.onBehalfOf, 'user')) throw new Error('only users in this test');
    const now = Math.floor(Date.now() / 1000);
    const user = o.onBehalfOf.principal.userEntityRef;
    const obo = sign(env.GANGWAY_AUTH_KEY!, env.GANGWAY_AUTH_KID!, 'vnd.backstage.limited-user', {
      sub: user,
      iat: now,
      exp: now + 3600,
    });
    this.minted.push({ sub: 'scaffolder', aud: o.targetPluginId, obo: user });
    return {
      token: sign(env.GANGWAY_PLUGIN_KEY!, env.GANGWAY_PLUGIN_KID!, 'vnd.backstage.plugin', {
        sub: 'scaffolder',
        aud: o.targetPluginId,
        iat: now,
        exp: now + 600,
        obo,
      }),
    };
  }
}

describe('against a real Gangway', () => {
  const url = env.GANGWAY_URL ?? 'http://127.0.0.1:9';
  const admin = env.GANGWAY_ADMIN_TOKEN ?? '';
  const client = new GangwayClient({ baseUrl: url });
  const auth = new BackstageStyleAuth();
  const carol = mockCredentials.user('user:default/carol');

  function action() {
    const config = readGangwayConfig(new ConfigReader({ gangway: { baseUrl: url, timeouts: { pollSeconds: 0.2 } } }));
    return createGangwayRunAction({ client, auth: auth as unknown as AuthService, config });
  }

  type Ctx = Parameters<ReturnType<typeof createGangwayRunAction>['handler']>[0];
  function context(input: JsonObject, over: object = {}, taskId = crypto.randomUUID()) {
    const ctx = createMockActionContext({ input, task: { id: taskId } });
    const lines: string[] = [];
    for (const level of ['info', 'warn', 'error'] as const) {
      jest.spyOn(ctx.logger, level).mockImplementation(((m: unknown) => {
        lines.push(String(m));
        return ctx.logger;
      }) as never);
    }
    const outputs: Record<string, unknown> = {};
    (ctx.output as jest.Mock).mockImplementation((k: string, v: unknown) => {
      outputs[k] = v;
    });
    const c = Object.assign(ctx, { step: { id: 'gangway' }, getInitiatorCredentials: async () => carol }, over);
    return { ctx: c as unknown as Ctx, lines, outputs };
  }

  const getRun = (id: string) => client.getRun(admin, id);

  it_('submits as the user, streams the log and sets the outputs', async () => {
    const { ctx, lines, outputs } = context({ action: 'bs-hello', inputs: { name: 'ana' } });
    await action().handler(ctx);
    expect(lines).toEqual(expect.arrayContaining(['line 0 for ana', 'line 1 for ana', 'line 2 for ana']));
    expect(lines.indexOf('line 0 for ana')).toBeLessThan(lines.indexOf('line 2 for ana'));
    expect(outputs.status).toBe('succeeded');
    expect(outputs.outputs).toEqual({ greeting: 'hello ana' });
    expect(outputs.url).toBe(`${url}/ui/runs/${outputs.runId}`);
    const run = await getRun(outputs.runId as string);
    /* Gangway saw the person, not the scaffolder. */
    expect(run.requested_by.subject).toBe('user:default/carol');
    expect(run.requested_by.teams).toEqual(['payments']);
    expect(run.idempotency_key).toMatch(/^backstage:[0-9a-f-]+:gangway$/);
    expect(auth.minted.at(-1)).toEqual({ sub: 'scaffolder', aud: 'gangway', obo: 'user:default/carol' });
  });

  it_('with a service token and onBehalfOf, the run is still the user\'s', async () => {
    const config = readGangwayConfig(
      new ConfigReader({
        gangway: { baseUrl: url, credentials: 'service', token: env.GANGWAY_OBO_TOKEN, onBehalfOf: true, timeouts: { pollSeconds: 0.2 } },
      }),
    );
    const viaService = createGangwayRunAction({ client, auth: auth as unknown as AuthService, config });
    const { ctx, outputs } = context(
      { action: 'bs-hello', inputs: { name: 'gi' } },
      { user: { ref: 'user:default/carol', entity: { spec: { memberOf: ['group:default/payments'] } } } },
    );
    await viaService.handler(ctx);
    expect(outputs.status).toBe('succeeded');
    const run = await getRun(outputs.runId as string);
    expect(run.requested_by).toEqual({ subject: 'user:default/carol', teams: ['payments'] });
  });

  it_("fails the step with the run's reason", async () => {
    const { ctx, lines, outputs } = context({ action: 'bs-hello', inputs: { name: 'bo', fail: true } });
    await expect(action().handler(ctx)).rejects.toThrow(/ended failed/);
    expect(lines).toContain('about to fail');
    expect(outputs.status).toBe('failed');
  });

  it_("fails with Gangway's problem detail for inputs the schema refuses", async () => {
    const { ctx } = context({ action: 'bs-hello', inputs: { name: 'x'.repeat(30) } });
    await expect(action().handler(ctx)).rejects.toThrow(/422 validation_failed.*\/inputs\/name/);
  });

  it_('cancels the run when the task is cancelled', async () => {
    const abort = new AbortController();
    const { ctx, lines, outputs } = context({ action: 'bs-hello', inputs: { name: 'cy', sleep: 60 } }, { signal: abort.signal });
    const done = action().handler(ctx);
    for (let i = 0; i < 300 && !lines.includes('line 2 for cy'); i++) await new Promise(r => setTimeout(r, 100));
    abort.abort();
    await expect(done).rejects.toThrow(/Task cancelled/);
    let run: Run | undefined;
    for (let i = 0; i < 300; i++) {
      run = await getRun(outputs.runId as string);
      if (run.status === 'cancelled') break;
      await new Promise(r => setTimeout(r, 100));
    }
    expect(run?.status).toBe('cancelled');
    expect(run?.reason ?? run?.cancel_reason).toMatch(/Backstage task .* was cancelled/);
  });

  it_('waits for an approval, saying who must approve, then finishes', async () => {
    const { ctx, lines, outputs } = context({ action: 'bs-approve', inputs: { name: 'di' } });
    const done = action().handler(ctx);
    let waiting: string | undefined;
    for (let i = 0; i < 300 && !waiting; i++) {
      waiting = lines.find(l => l.includes('is waiting for'));
      if (!waiting) await new Promise(r => setTimeout(r, 100));
    }
    expect(waiting).toMatch(/waiting for 1 more approval from team sre.*\/ui\/runs\//);
    const res = await fetch(`${url}/v1/runs/${outputs.runId}/decisions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${env.GANGWAY_APPROVER_TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ decision: 'approve', comment: 'ok' }),
    });
    expect(res.status).toBeLessThan(300);
    await done;
    expect(outputs.status).toBe('succeeded');
    expect(outputs.outputs).toEqual({ greeting: 'hello di' });
  });

  it_('submits once when the scaffolder retries a recovered task', async () => {
    const task = crypto.randomUUID();
    const first = context({ action: 'bs-hello', inputs: { name: 'ed' } }, {}, task);
    await action().handler(first.ctx);
    const again = context({ action: 'bs-hello', inputs: { name: 'ed' } }, {}, task);
    await action().handler(again.ctx);
    expect(again.outputs.runId).toBe(first.outputs.runId);
    expect(again.lines.join('\n')).toMatch(/already submitted for this task/);
    const runs = (await (
      await fetch(`${url}/v1/runs?limit=100`, { headers: { Authorization: `Bearer ${admin}` } })
    ).json()) as { items: Run[] };
    expect(runs.items.filter(r => r.idempotency_key === `backstage:${task}:gangway`)).toHaveLength(1);
  });

  it_('validates without submitting in a dry run', async () => {
    const before = (await (await fetch(`${url}/v1/runs?limit=500`, { headers: { Authorization: `Bearer ${admin}` } })).json()) as {
      items: Run[];
    };
    const { ctx, lines, outputs } = context({ action: 'bs-approve', inputs: { name: 'fi' } }, { isDryRun: true });
    await action().handler(ctx);
    expect(outputs.status).toBe('validated');
    expect(lines.join('\n')).toMatch(/Dry run: Gangway accepts action bs-approve .* would wait for 1 more approval from team sre/);
    const after = (await (await fetch(`${url}/v1/runs?limit=500`, { headers: { Authorization: `Bearer ${admin}` } })).json()) as {
      items: Run[];
    };
    expect(after.items.length).toBe(before.items.length);
    const bad = context({ action: 'bs-hello', inputs: { name: 'x'.repeat(30) } }, { isDryRun: true });
    await expect(action().handler(bad.ctx)).rejects.toThrow(/422 validation_failed.*\/inputs\/name/);
  });

  it_('keeps the catalog in step: a resource appears, then goes when torn down', async () => {
    const mutations: EntityProviderMutation[] = [];
    const provider = new GangwayEntityProvider({
      client,
      token: async () => admin,
      logger: mockServices.logger.mock(),
      baseUrl: url,
      consoleUrl: url,
      namespace: 'default',
      ownerNamespace: 'default',
    });
    await provider.connect({ applyMutation: async m => void mutations.push(m), refresh: async () => undefined });
    const until = async (what: string, pred: () => boolean) => {
      for (let i = 0; i < 600 && !pred(); i++) await new Promise(r => setTimeout(r, 100));
      if (!pred()) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(mutations)}`);
    };
    try {
      await until('the full resync', () => mutations.some(m => m.type === 'full'));
      const { ctx, outputs } = context({ action: 'bs-env', inputs: { name: 'gamma' }, ttlSeconds: 7200 });
      await action().handler(ctx);
      const resource = outputs.resource as { id: string; kind: string; name: string };
      expect(resource).toMatchObject({ kind: 'devenv', name: 'gamma' });
      const added = () =>
        mutations.flatMap(m => (m.type === 'delta' ? m.added : [])).find(d => d.entity.metadata.name === 'devenv-gamma');
      await until('the resource entity', () => added() !== undefined);
      const e = added()!.entity;
      expect(e.kind).toBe('Resource');
      expect(e.spec).toMatchObject({ type: 'devenv', owner: 'group:default/payments' });
      expect(e.metadata.annotations).toMatchObject({
        'gangway.dev/run': outputs.runId,
        'gangway.dev/action': 'bs-env',
        'gangway.dev/resource-id': resource.id,
      });
      expect(e.metadata.annotations?.['gangway.dev/expires-at']).toMatch(/^\d{4}-\d\d-\d\dT/);

      const del = await fetch(`${url}/v1/resources/${resource.id}`, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${admin}` },
      });
      expect(del.status).toBe(202);
      await until('the removal', () =>
        mutations.some(
          m => m.type === 'delta' && m.removed.some(r => 'entityRef' in r && r.entityRef === 'resource:default/devenv-gamma'),
        ),
      );
    } finally {
      await provider.stop();
    }

    /* A provider started later finds a live resource in its full resync. */
    const { ctx } = context({ action: 'bs-env', inputs: { name: 'delta' } });
    await action().handler(ctx);
    const later: EntityProviderMutation[] = [];
    const second = new GangwayEntityProvider({
      client,
      token: async () => admin,
      logger: mockServices.logger.mock(),
      baseUrl: url,
      consoleUrl: url,
      namespace: 'default',
      ownerNamespace: 'default',
    });
    await second.connect({ applyMutation: async m => void later.push(m), refresh: async () => undefined });
    try {
      for (let i = 0; i < 300 && !later.some(m => m.type === 'full'); i++) await new Promise(r => setTimeout(r, 100));
      const full = later.find(m => m.type === 'full') as Extract<EntityProviderMutation, { type: 'full' }>;
      const names = full.entities.map(e => e.entity.metadata.name);
      expect(names).toContain('devenv-delta');
      expect(names).not.toContain('devenv-gamma');
    } finally {
      await second.stop();
    }
  });
});
