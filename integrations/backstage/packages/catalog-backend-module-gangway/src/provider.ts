/**
 * Gangway's live resources as catalog entities. A full mutation at start
 * (GET /v1/resources, every page), then the `resource` events of
 * /v1/events applied as deltas as they come; a dropped stream is reopened
 * and followed by a full resync, since resource events carry no id to
 * resume from (docs/decisions/0060).
 */
import { LoggerService } from '@backstage/backend-plugin-api';
import { EntityProvider, EntityProviderConnection } from '@backstage/plugin-catalog-node';
import { GangwayClient, GangwayError, Resource } from '@gangway/backstage-common';
import { EntityOptions, resourceEntity } from './entity';

export interface GangwayEntityProviderOptions extends EntityOptions {
  client: GangwayClient;
  /** A token for each request. */
  token: () => Promise<string>;
  logger: LoggerService;
  /** Reconnect delays (default 1 s doubling to 30 s). */
  retryDelayMs?: number;
  /** No byte (not even the 15 s keepalive) for this long: reconnect (default 45 s). */
  idleTimeoutMs?: number;
}

/** Statuses shown in the catalog: the resource still exists. */
const LIVE = new Set<Resource['status']>(['active', 'tearing_down', 'teardown_failed']);

export class GangwayEntityProvider implements EntityProvider {
  private connection?: EntityProviderConnection;
  private readonly stopper = new AbortController();
  /** What the catalog holds: resource id → updated_at and entity ref. */
  private readonly held = new Map<string, { updatedAt: string; ref: string }>();
  private loop?: Promise<void>;

  constructor(private readonly o: GangwayEntityProviderOptions) {}

  getProviderName(): string {
    return `gangway:${this.o.client.baseUrl}`;
  }

  private locationKey(): string {
    return this.getProviderName();
  }

  async connect(connection: EntityProviderConnection): Promise<void> {
    this.connection = connection;
    this.loop = this.follow();
  }

  /** Stops following (the backend's shutdown). */
  async stop(): Promise<void> {
    this.stopper.abort();
    await this.loop;
  }

  /** Replaces every entity of this provider with Gangway's live resources now. */
  async resync(): Promise<number> {
    if (!this.connection) throw new Error('GangwayEntityProvider.resync before connect');
    const all = await this.o.client.listResources(await this.o.token());
    const live = all.filter(r => LIVE.has(r.status));
    const entities = live.map(r => resourceEntity(r, this.o));
    await this.connection.applyMutation({
      type: 'full',
      entities: entities.map(entity => ({ entity, locationKey: this.locationKey() })),
    });
    this.held.clear();
    live.forEach((r, i) => this.held.set(r.id, { updatedAt: r.updated_at ?? '', ref: refOf(entities[i]) }));
    this.o.logger.info(`Gangway: ${live.length} live resources in the catalog`);
    return live.length;
  }

  /** Applies one resource as a `resource` event carries it. */
  async apply(r: Resource): Promise<void> {
    if (!this.connection || !r?.id) return;
    const had = this.held.get(r.id);
    /* Never go back in time (docs/catalog-events.md: updated_at only grows). */
    if (had && r.updated_at && had.updatedAt && r.updated_at < had.updatedAt) return;
    if (LIVE.has(r.status)) {
      const entity = resourceEntity(r, this.o);
      const ref = refOf(entity);
      const removed = had && had.ref !== ref ? [{ entityRef: had.ref, locationKey: this.locationKey() }] : [];
      await this.connection.applyMutation({
        type: 'delta',
        added: [{ entity, locationKey: this.locationKey() }],
        removed,
      });
      this.held.set(r.id, { updatedAt: r.updated_at ?? '', ref });
    } else if (had) {
      await this.connection.applyMutation({
        type: 'delta',
        added: [],
        removed: [{ entityRef: had.ref, locationKey: this.locationKey() }],
      });
      this.held.delete(r.id);
    }
  }

  private async follow(): Promise<void> {
    const signal = this.stopper.signal;
    let delay = this.o.retryDelayMs ?? 1000;
    while (!signal.aborted) {
      let opened = false;
      /* This connection only: aborted when the iteration ends, whatever ends it. */
      const conn = new AbortController();
      const onStop = () => conn.abort();
      signal.addEventListener('abort', onStop, { once: true });
      let failed: Promise<unknown> = Promise.resolve();
      try {
        /* Events that happen during the resync are delivered after it (the
         * stream starts at the present once connected), and a resource
         * older than what the resync put in is skipped by apply(). */
        const queue: Resource[] = [];
        let synced = false;
        let chain = Promise.resolve();
        const onEvent = (r: Resource) => {
          if (!synced) queue.push(r);
          else chain = chain.then(() => this.apply(r)).catch(e => this.o.logger.warn(`Gangway: ${String(e)}`));
        };
        const streaming = this.o.client.stream(
          '/v1/events',
          await this.o.token(),
          e => {
            opened = true;
            if (e.event !== 'resource') return;
            try {
              onEvent(JSON.parse(e.data) as Resource);
            } catch {
              this.o.logger.warn(`Gangway: a resource event that is not JSON: ${e.data.slice(0, 200)}`);
            }
          },
          { signal: conn.signal, idleTimeoutMs: this.o.idleTimeoutMs ?? 45_000 },
        );
        /* Resync while the stream is open, then apply what came meanwhile. */
        failed = streaming.then(
          () => undefined,
          (e: unknown) => e,
        );
        await this.resync();
        opened = true;
        synced = true;
        for (const r of queue.splice(0)) chain = chain.then(() => this.apply(r));
        await chain;
        delay = this.o.retryDelayMs ?? 1000;
        const err = await failed;
        await chain;
        if (err) throw err;
        if (signal.aborted) return;
        this.o.logger.info('Gangway: event stream closed; reconnecting');
      } catch (e) {
        if (signal.aborted) return;
        const refused = e instanceof GangwayError && (e.status === 401 || e.status === 403);
        this.o.logger.warn(`Gangway: following resources failed${refused ? ' (check gangway.token)' : ''}: ${String(e)}`);
        if (!opened) delay = Math.min(delay * 2, 30_000);
      } finally {
        conn.abort();
        signal.removeEventListener('abort', onStop);
        await failed;
      }
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, delay);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

function refOf(e: { kind: string; metadata: { name: string; namespace?: string } }): string {
  return `${e.kind.toLowerCase()}:${e.metadata.namespace ?? 'default'}/${e.metadata.name}`;
}
