import {
  ANNOTATION_LOCATION,
  ANNOTATION_ORIGIN_LOCATION,
  Entity,
  KubernetesValidatorFunctions,
} from '@backstage/catalog-model';
import { Resource } from '@gangway/backstage-common';

export const ANNOTATION_RESOURCE_ID = 'gangway.dev/resource-id';
export const ANNOTATION_RUN = 'gangway.dev/run';
export const ANNOTATION_ACTION = 'gangway.dev/action';
export const ANNOTATION_EXPIRES_AT = 'gangway.dev/expires-at';
export const ANNOTATION_STATUS = 'gangway.dev/status';
export const ANNOTATION_TEARDOWN_RUN = 'gangway.dev/teardown-run';

export interface EntityOptions {
  baseUrl: string;
  consoleUrl: string;
  namespace: string;
  ownerNamespace: string;
}

const NAME_MAX = 63;

/** An entity name out of Gangway's kind and name: [a-z0-9A-Z-_.], 63 at most, alphanumeric ends. */
export function entityName(r: Resource): string {
  const raw = `${r.kind}-${r.name}`
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/[-_.]{2,}/g, '-')
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  if (raw.length <= NAME_MAX && KubernetesValidatorFunctions.isValidObjectName(raw)) return raw;
  return `gangway-${r.id.replace(/-/g, '').slice(0, 24)}`;
}

/**
 * The owner: the resource's first team as a group (`group:<ns>/payments`;
 * a team written `ops/sre` is `group:ops/sre`); with no team, the person
 * (a canonical `user:default/ana` as is, a bare `ana` as `user:<ns>/ana`).
 */
export function ownerRef(r: Resource, ownerNamespace: string): string {
  const team = r.owner?.teams?.[0];
  if (team) return team.includes('/') ? `group:${team}` : `group:${ownerNamespace}/${team}`;
  const subject = r.owner?.subject ?? 'unknown';
  if (/^[a-z]+:/.test(subject)) return subject;
  return `user:${ownerNamespace}/${subject}`;
}

/** The Resource entity of a live Gangway resource. */
export function resourceEntity(r: Resource, o: EntityOptions): Entity {
  const location = `url:${o.baseUrl}/v1/resources/${r.id}`;
  const annotations: Record<string, string> = {
    [ANNOTATION_LOCATION]: location,
    [ANNOTATION_ORIGIN_LOCATION]: location,
    [ANNOTATION_RESOURCE_ID]: r.id,
    [ANNOTATION_ACTION]: r.action,
    [ANNOTATION_STATUS]: r.status,
  };
  if (r.created_by_run) annotations[ANNOTATION_RUN] = r.created_by_run;
  if (r.expires_at) annotations[ANNOTATION_EXPIRES_AT] = r.expires_at;
  if (r.teardown_run) annotations[ANNOTATION_TEARDOWN_RUN] = r.teardown_run;
  const links: Array<{ url: string; title: string }> = [];
  if (r.created_by_run) {
    links.push({ url: `${o.consoleUrl}/ui/runs/${r.created_by_run}`, title: 'Gangway run that created it' });
  }
  for (const [k, v] of Object.entries(r.outputs ?? {})) {
    if (typeof v === 'string' && /^https?:\/\//.test(v)) links.push({ url: v, title: k });
  }
  const tags = [r.kind, r.needs_attention ? 'needs-attention' : '']
    .map(t => t.toLowerCase().replace(/[^a-z0-9+#-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63))
    .filter(Boolean);
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Resource',
    metadata: {
      name: entityName(r),
      namespace: o.namespace,
      title: r.name,
      description: `${r.kind} ${r.name}, created by Gangway action ${r.action}${r.expires_at ? `; expires at ${r.expires_at}` : ''}`,
      annotations,
      links,
      tags,
    },
    spec: {
      type: r.kind,
      owner: ownerRef(r, o.ownerNamespace),
      lifecycle: r.status === 'active' ? 'production' : r.status,
    },
  };
}
