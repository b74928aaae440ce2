import http from 'node:http';
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { catalogProcessingExtensionPoint, EntityProvider, EntityProviderMutation } from '@backstage/plugin-catalog-node';
import { GangwayClient, Resource } from '@gangway/backstage-common';
import { FakeGangway, reply, sse, sseHead } from '../../common/src/testing';
import { entityName, ownerRef, resourceEntity } from './entity';
import { GangwayEntityProvider } from './provider';
import gangwayModule from './index';

const opts = { baseUrl: 'http://gw', consoleUrl: 'http://console', namespace: 'default', ownerNamespace: 'default' };

function resource(over: Partial<Resource> = {}): Resource {
  return {
    id: '0b6f3c1e-4d2a-4e8b-9a51-3f0c2d7e9b10',
    action: 'devenv',
    kind: 'devenv',
    name: 'alpha',
    owner: { subject: 'user:default/ana', teams: ['payments'] },
    created_by_run: '9e0b0000-0000-4000-8000-000000000001',
    outputs: { url: 'https://alpha.dev.example' },
    status: 'active',
    expires_at: '2026-12-11T08:01:02.300Z',
    updated_at: '2026-12-06T08:01:02.300Z',
    ...over,
  };
}

describe('Resource entities', () => {
  it('maps a resource with its team as owner and run, action, expiry annotations', () => {
    const e = resourceEntity(resource(), opts);
    expect(e.kind).toBe('Resource');
    expect(e.metadata.name).toBe('devenv-alpha');
    expect(e.spec).toMatchObject({ type: 'devenv', owner: 'group:default/payments' });
    expect(e.metadata.annotations).toMatchObject({
      'gangway.dev/run': '9e0b0000-0000-4000-8000-000000000001',
      'gangway.dev/action': 'devenv',
      'gangway.dev/expires-at': '2026-12-11T08:01:02.300Z',
      'backstage.io/managed-by-location': 'url:http://gw/v1/resources/0b6f3c1e-4d2a-4e8b-9a51-3f0c2d7e9b10',
    });
    expect(e.metadata.links).toContainEqual({ url: 'https://alpha.dev.example', title: 'url' });
  });

  it('falls back to the person, and to an id-based name when the name cannot be an entity name', () => {
    expect(ownerRef(resource({ owner: { subject: 'user:default/ana', teams: [] } }), 'default')).toBe('user:default/ana');
    expect(ownerRef(resource({ owner: { subject: 'ana' } }), 'corp')).toBe('user:corp/ana');
    expect(ownerRef(resource({ owner: { teams: ['ops/sre'] } }), 'default')).toBe('group:ops/sre');
    expect(entityName(resource({ name: 'x'.repeat(80) }))).toBe('gangway-0b6f3c1e4d2a4e8b9a513f0c');
    expect(entityName(resource({ name: 'Été 2026!' }))).toBe('devenv-t-2026');
  });
});

describe('GangwayEntityProvider', () => {
  let gw: FakeGangway;
  let listed: Resource[];
  let stream: http.ServerResponse | undefined;
  let streamOpened: Promise<void>;
  const mutations: EntityProviderMutation[] = [];

  beforeEach(async () => {
    mutations.length = 0;
    listed = [resource(), resource({ id: 'dead', name: 'gone', status: 'deleted' })];
    gw = await new FakeGangway().start();
    gw.on('GET', /^\/v1\/resources\?/, (_req, res) => reply(res, 200, { items: listed, next_cursor: null }));
    streamOpened = new Promise(resolve =>
      gw.on('GET', /^\/v1\/events$/, (_req, res) => {
        sseHead(res);
        stream = res;
        resolve();
      }),
    );
  });

  afterEach(() => gw.close());

  async function until(pred: () => boolean) {
    for (let i = 0; i < 200 && !pred(); i++) await new Promise(r => setTimeout(r, 25));
    expect(pred()).toBe(true);
  }

  it('resyncs at start, then adds and removes resources as events come', async () => {
    const provider = new GangwayEntityProvider({
      ...opts,
      client: new GangwayClient({ baseUrl: gw.url }),
      token: async () => 'gwt_catalog',
      logger: mockServices.logger.mock(),
    });
    await provider.connect({ applyMutation: async m => void mutations.push(m), refresh: async () => undefined });
    await streamOpened;
    await until(() => mutations.length === 1);
    expect(mutations[0].type).toBe('full');
    const full = mutations[0] as Extract<EntityProviderMutation, { type: 'full' }>;
    expect(full.entities.map(e => e.entity.metadata.name)).toEqual(['devenv-alpha']);
    expect(gw.calls('GET', /^\/v1\/resources/)[0].headers.authorization).toBe('Bearer gwt_catalog');

    const beta = resource({ id: 'b', name: 'beta', updated_at: '2026-12-06T08:05:00Z' });
    sse(stream!, 'run', { id: 1, run_id: 'x', from: 'queued', to: 'running' }, 1);
    sse(stream!, 'resource', beta);
    await until(() => mutations.length === 2);
    expect(mutations[1]).toMatchObject({ type: 'delta', removed: [] });
    expect((mutations[1] as { added: Array<{ entity: { metadata: { name: string } } }> }).added[0].entity.metadata.name).toBe(
      'devenv-beta',
    );

    /* An older copy (at-least-once delivery) changes nothing. */
    sse(stream!, 'resource', { ...beta, status: 'deleted', updated_at: '2026-12-06T08:00:00Z' });
    sse(stream!, 'resource', { ...beta, status: 'deleted', updated_at: '2026-12-06T08:09:00Z' });
    await until(() => mutations.length === 3);
    expect(mutations[2]).toEqual({
      type: 'delta',
      added: [],
      removed: [{ entityRef: 'resource:default/devenv-beta', locationKey: provider.getProviderName() }],
    });
    await provider.stop();
  });

  it('is added to the catalog by the module', async () => {
    const providers: EntityProvider[] = [];
    const backend = await startTestBackend({
      extensionPoints: [
        [
          catalogProcessingExtensionPoint,
          {
            addEntityProvider: (...p: Array<EntityProvider | EntityProvider[]>) => providers.push(...p.flat()),
            addProcessor: () => undefined,
            addPlaceholderResolver: () => undefined,
            setOnProcessingErrorHandler: () => undefined,
          } as never,
        ],
      ],
      features: [
        gangwayModule,
        mockServices.rootConfig.factory({ data: { gangway: { baseUrl: gw.url, token: 't', catalog: { resyncSeconds: 0 } } } }),
      ],
    });
    expect(providers.map(p => p.getProviderName())).toEqual([`gangway:${gw.url}`]);
    await backend.stop();
  });
});
